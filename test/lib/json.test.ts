import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isRecord, missingKey, unknownKey } from '../../src/lib/json.ts';
import { decode } from '../../src/protocol/cbor.ts';

test('isRecord() accepts what JSON, CBOR and literals make, and nothing else that is an object', () => {
  assert.equal(isRecord(JSON.parse('{"a":1}')), true);
  assert.equal(isRecord({}), true);
  assert.equal(isRecord(Object.create(null)), true);
  // The CBOR reader makes maps without a prototype, so a decoded map is a record.
  assert.equal(isRecord(decode(Uint8Array.of(0xa1, 0x61, 0x61, 0x01))), true);
  for (const v of [
    null,
    undefined,
    1,
    'x',
    true,
    [],
    new Uint8Array(1),
    new Date(0),
    new Map(),
    new (class {})(),
  ]) {
    assert.equal(isRecord(v), false, String(v));
  }
});

test('unknownKey() and missingKey() name the first offending key, and only own keys count', () => {
  assert.equal(unknownKey({ a: 1, b: 2 }, ['a', 'b', 'c']), undefined);
  assert.equal(unknownKey({ a: 1, x: 2, y: 3 }, ['a']), 'x');
  assert.equal(missingKey({ a: 1 }, ['a']), undefined);
  assert.equal(missingKey({ a: 1 }, ['a', 'b', 'c']), 'b');
  // A key inherited from Object.prototype is not present: `'toString' in {}` would have said it was.
  assert.equal(missingKey({}, ['toString']), 'toString');
  assert.equal(missingKey(JSON.parse('{"__proto__":1}'), ['__proto__']), undefined);
});
