import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  concat,
  equalBytes,
  isZero,
  reversed,
  toBase64,
  toHex,
  tryFromBase64,
  tryFromHex,
} from '../../src/attestation/bytes.ts';

test('toHex() and tryFromHex() round-trip and reject odd or non-hex input', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (b) => assert.deepEqual(tryFromHex(toHex(b)), b)),
    { numRuns: 200 },
  );
  assert.deepEqual(tryFromHex('ABcd'), Uint8Array.of(0xab, 0xcd));
  assert.equal(tryFromHex('abc'), undefined);
  assert.equal(tryFromHex('zz'), undefined);
});

test('tryFromBase64() accepts only canonical padded base64', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (b) => assert.deepEqual(tryFromBase64(toBase64(b)), b)),
    { numRuns: 200 },
  );
  assert.equal(tryFromBase64('QQ'), undefined); // unpadded
  assert.equal(tryFromBase64('QR=='), undefined); // non-zero padding bits
  assert.equal(tryFromBase64('QQ==\n'), undefined);
  assert.equal(tryFromBase64('Q-=='), undefined);
});

test('equalBytes(), isZero(), concat() and reversed() behave on edge cases', () => {
  assert.ok(equalBytes(new Uint8Array(0), new Uint8Array(0)));
  assert.ok(!equalBytes(Uint8Array.of(1), Uint8Array.of(1, 0)));
  assert.ok(!equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 3)));
  assert.ok(isZero(Uint8Array.of(1, 0, 0), 1));
  assert.ok(!isZero(Uint8Array.of(0, 0, 1)));
  assert.deepEqual(concat(Uint8Array.of(1), new Uint8Array(0), Uint8Array.of(2, 3)), Uint8Array.of(1, 2, 3));
  assert.deepEqual(reversed(Uint8Array.of(1, 2, 3)), Uint8Array.of(3, 2, 1));
});
