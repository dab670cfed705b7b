import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  bitString,
  boolean,
  contextTag,
  explicit,
  ia5String,
  integer,
  isPrintable,
  nullValue,
  octetString,
  oid,
  printableString,
  sequence,
  set,
  TAG,
  time,
  tlv,
  utf8String,
} from '../../src/lib/der.ts';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

/** The value of an INTEGER's contents in two's complement, read apart from the writer. */
function twosComplement(contents: Uint8Array): bigint {
  let n = 0n;
  for (const b of contents) n = (n << 8n) | BigInt(b);
  return contents[0]! & 0x80 ? n - (1n << BigInt(contents.length * 8)) : n;
}

describe('DER writing', () => {
  test('integer() writes the X.690 examples byte for byte', () => {
    const cases: [number | bigint, string][] = [
      [0, '020100'],
      [127, '02017f'],
      [128, '02020080'],
      [256, '02020100'],
      [-1, '0201ff'],
      [-128, '020180'],
      [-129, '0202ff7f'],
      [2n ** 64n, '0209010000000000000000'],
    ];
    for (const [value, expected] of cases) assert.equal(hex(integer(value)), expected, String(value));
  });

  test('integer() is minimal and reads back as the same value for any bigint', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 200n), max: 2n ** 200n }), (n) => {
        const bytes = integer(n);
        assert.equal(bytes[0], TAG.INTEGER);
        const contents = bytes.subarray(2);
        assert.equal(bytes[1], contents.length);
        assert.equal(twosComplement(contents), n);
        if (contents.length > 1) {
          // The first nine bits are never all zero or all one: no byte could be dropped.
          const nine = (contents[0]! << 1) | (contents[1]! >> 7);
          assert.ok(nine !== 0 && nine !== 0x1ff, `${n} is not minimal`);
        }
      }),
      { numRuns: 500 },
    );
  });

  test('tlv() writes short lengths below 128 and minimal long lengths from 128', () => {
    for (const [length, header] of [
      [0, '0400'],
      [127, '047f'],
      [128, '048180'],
      [255, '0481ff'],
      [256, '04820100'],
      [65536, '0483010000'],
    ] as const) {
      const bytes = octetString(new Uint8Array(length));
      assert.equal(hex(bytes.subarray(0, header.length / 2)), header, String(length));
      assert.equal(bytes.byteLength, header.length / 2 + length);
    }
    assert.equal(hex(tlv(0x30, Uint8Array.of(1), Uint8Array.of(2, 3))), '3003010203');
  });

  test('oid() encodes arcs in base 128 and refuses what is not a dotted OID', () => {
    assert.equal(hex(oid('1.2.840.113549')), '06062a864886f70d');
    assert.equal(hex(oid('2.5.29.17')), '0603551d11');
    assert.equal(hex(oid('1.3.6.1.5.5.7.1.35')), '06082b06010505070123');
    for (const bad of ['', '1', '1.x', '1.-2', '1.2.3.1e3x']) assert.throws(() => oid(bad), RangeError, bad);
  });

  test('time() writes UTCTime through 2049 and GeneralizedTime from 2050, in whole seconds', () => {
    assert.equal(
      Buffer.from(time(new Date('2049-12-31T23:59:59.999Z'))).toString('latin1'),
      '\x17\x0d491231235959Z',
    );
    assert.equal(
      Buffer.from(time(new Date('2050-01-01T00:00:00Z'))).toString('latin1'),
      '\x18\x0f20500101000000Z',
    );
    assert.equal(
      Buffer.from(time(new Date('1950-01-01T00:00:00Z'))).toString('latin1'),
      '\x17\x0d500101000000Z',
    );
    assert.throws(() => time(new Date('1949-12-31T23:59:59Z')), RangeError);
  });

  test('the string writers keep to their alphabets', () => {
    assert.equal(hex(utf8String('é')), '0c02c3a9');
    assert.equal(hex(printableString('A b')), '1303412062');
    assert.throws(() => printableString('a@b'), RangeError);
    assert.equal(isPrintable("A-z 0'()+,./:=?"), true);
    assert.equal(isPrintable('*'), false);
    assert.equal(hex(ia5String('a@b')), '1603614062');
    assert.throws(() => ia5String('é'), RangeError);
  });

  test('the fixed forms: BOOLEAN, NULL, BIT STRING, SET and EXPLICIT tags', () => {
    assert.equal(hex(boolean(true)), '0101ff');
    assert.equal(hex(boolean(false)), '010100');
    assert.equal(hex(nullValue()), '0500');
    assert.equal(hex(bitString(Uint8Array.of(0xab))), '030200ab');
    assert.equal(hex(set(nullValue())), '31020500');
    assert.equal(hex(sequence()), '3000');
    assert.equal(contextTag(3), 0xa3);
    assert.equal(hex(explicit(0, integer(2))), 'a003020102');
  });
});
