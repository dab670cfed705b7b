import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decode as cbor2Decode, encode as cbor2Encode } from 'cbor2';
import fc from 'fast-check';
import { type CborValue, decode, defaultLimits, encode } from '../../src/protocol/cbor.ts';
import { ProtocolError, type ProtocolErrorCode } from '../../src/protocol/errors.ts';
import { cborValueArb } from './support/arbitraries.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const map = (entries: Record<string, CborValue>): CborValue => Object.assign(Object.create(null), entries);

function rejects(
  bytes: Uint8Array | string,
  code: ProtocolErrorCode,
  limits?: Parameters<typeof decode>[1],
): void {
  const input = typeof bytes === 'string' ? unhex(bytes) : bytes;
  assert.throws(
    () => decode(input, limits),
    (err: unknown) => {
      assert.ok(err instanceof ProtocolError, `expected a ProtocolError, got ${String(err)}`);
      assert.equal(err.code, code, err.message);
      assert.match(err.message, /^Cannot decode CBOR: [^A-Z]/);
      assert.doesNotMatch(err.message, /\.$/);
      return true;
    },
  );
}

// RFC 8949 Appendix A, the vectors that fall inside the profile (no floats, tags, undefined or
// indefinite lengths). Every one of them is in deterministic form, so both directions must match.
const rfc8949: [CborValue, string][] = [
  [0, '00'],
  [1, '01'],
  [10, '0a'],
  [23, '17'],
  [24, '1818'],
  [25, '1819'],
  [100, '1864'],
  [1000, '1903e8'],
  [1000000, '1a000f4240'],
  [1000000000000, '1b000000e8d4a51000'],
  [18446744073709551615n, '1bffffffffffffffff'],
  [-18446744073709551616n, '3bffffffffffffffff'],
  [-1, '20'],
  [-10, '29'],
  [-100, '3863'],
  [-1000, '3903e7'],
  [false, 'f4'],
  [true, 'f5'],
  [null, 'f6'],
  [new Uint8Array(0), '40'],
  [Uint8Array.of(1, 2, 3, 4), '4401020304'],
  ['', '60'],
  ['a', '6161'],
  ['IETF', '6449455446'],
  ['"\\', '62225c'],
  ['\u00fc', '62c3bc'],
  ['\u6c34', '63e6b0b4'],
  ['\u{10151}', '64f0908591'],
  [[], '80'],
  [[1, 2, 3], '83010203'],
  [[1, [2, 3], [4, 5]], '8301820203820405'],
  [Array.from({ length: 25 }, (_, i) => i + 1), '98190102030405060708090a0b0c0d0e0f101112131415161718181819'],
  [map({}), 'a0'],
  [map({ a: 1, b: [2, 3] }), 'a26161016162820203'],
  [['a', map({ b: 'c' })], '826161a161626163'],
  [map({ a: 'A', b: 'B', c: 'C', d: 'D', e: 'E' }), 'a56161614161626142616361436164614461656145'],
];

describe('encode()', () => {
  test('encode() matches the RFC 8949 Appendix A vectors', () => {
    for (const [value, expected] of rfc8949) assert.equal(hex(encode(value)), expected);
  });

  test('encode() sorts map keys by their encoded bytes, so shorter keys come first', () => {
    assert.equal(hex(encode({ b: 1, aa: 2, a: 3, '': 4 })), 'a46004616103616201626161' + '02');
  });

  test('encode() gives the same bytes whatever the insertion order of keys', () => {
    assert.deepEqual(encode({ x: 1, y: { p: 1, q: 2 } }), encode({ y: { q: 2, p: 1 }, x: 1 }));
  });

  test('encode() uses the shortest head at every boundary', () => {
    const cases: [number | bigint, string][] = [
      [23, '17'],
      [24, '1818'],
      [255, '18ff'],
      [256, '190100'],
      [65535, '19ffff'],
      [65536, '1a00010000'],
      [2 ** 32 - 1, '1affffffff'],
      [2 ** 32, '1b0000000100000000'],
      [Number.MAX_SAFE_INTEGER, '1b001fffffffffffff'],
      [-24, '37'],
      [-25, '3818'],
      [-(2 ** 32), '3affffffff'],
      [-(2 ** 32) - 1, '3b0000000100000000'],
      [2n ** 32n, '1b0000000100000000'],
      [5n, '05'],
    ];
    for (const [value, expected] of cases) assert.equal(hex(encode(value)), expected, String(value));
  });

  test('encode() keeps a key named __proto__ as an ordinary key', () => {
    const value = Object.defineProperty({}, '__proto__', { value: 1, enumerable: true });
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
    assert.equal(hex(encode(value)), 'a1695f5f70726f746f5f5f01');
  });

  test('encode() refuses values outside the data model with TypeError or RangeError', () => {
    assert.throws(() => encode(1.5), TypeError);
    assert.throws(() => encode(Number.NaN), TypeError);
    assert.throws(() => encode(Number.POSITIVE_INFINITY), TypeError);
    assert.throws(() => encode(2 ** 53), RangeError);
    assert.throws(() => encode(1n << 64n), RangeError);
    assert.throws(() => encode(-(1n << 64n) - 1n), RangeError);
    assert.throws(() => encode(undefined), TypeError);
    assert.throws(() => encode({ a: undefined }), TypeError);
    assert.throws(() => encode([undefined]), TypeError);
    assert.throws(() => encode(new Map()), TypeError);
    assert.throws(() => encode(new Date(0)), TypeError);
    assert.throws(() => encode(Symbol('x')), TypeError);
    assert.throws(() => encode(() => 1), TypeError);
    assert.throws(() => encode({ [Symbol('k')]: 1 }), TypeError);
    assert.throws(() => encode('\ud800'), TypeError);
    assert.throws(() => encode(new Uint16Array(2)), TypeError);
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    assert.throws(() => encode(cyclic), /cyclic/);
  });

  test('encode() gives the same bytes for keys seen often, rarely, and past what it remembers of keys', () => {
    const many = Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`key${i}`, i]));
    const first = encode(many);
    assert.deepEqual(encode(many), first);
    assert.deepEqual({ ...(decode(first, { maxItems: 10_000 }) as object) }, many);
    assert.equal(hex(encode({ key2999: 0, b: 1 })), 'a2616201676b65793239393900');
    // A key that cannot be encoded is refused each time, not remembered.
    assert.throws(() => encode({ '\ud800': 1 }), /lone surrogate/);
    assert.throws(() => encode({ '\ud800': 1 }), /lone surrogate/);
  });

  test('encode() accepts a value shared by two branches that is not a cycle', () => {
    const shared = [1];
    assert.equal(hex(encode([shared, shared])), '82810181' + '01');
  });
});

describe('decode()', () => {
  test('decode() reads the RFC 8949 Appendix A vectors', () => {
    for (const [expected, bytes] of rfc8949) assert.deepStrictEqual(decode(unhex(bytes)), expected, bytes);
  });

  test('decode() gives maps a null prototype and keeps __proto__ as a key', () => {
    // {"__proto__": {"polluted": 1}}
    const m = decode(unhex('a1 695f5f70726f746f5f5f a1 68706f6c6c75746564 01')) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(m), null);
    assert.deepStrictEqual(Object.keys(m), ['__proto__']);
    assert.deepStrictEqual(Object.getOwnPropertyDescriptor(m, '__proto__')?.value, map({ polluted: 1 }));
    assert.equal(Object.hasOwn(Object.prototype, 'polluted'), false);
  });

  test('decode() returns numbers for safe integers and bigints beyond', () => {
    assert.equal(decode(unhex('1b001fffffffffffff')), Number.MAX_SAFE_INTEGER);
    assert.equal(decode(unhex('1b0020000000000000')), 2n ** 53n);
    assert.equal(decode(unhex('3b001ffffffffffffe')), -Number.MAX_SAFE_INTEGER);
    assert.equal(decode(unhex('3b001fffffffffffff')), -(2n ** 53n));
  });

  test('decode() copies byte strings out of the input', () => {
    const input = unhex('43010203');
    const out = decode(input) as Uint8Array;
    input[1] = 9;
    assert.deepStrictEqual(out, Uint8Array.of(1, 2, 3));
  });

  test('decode() reads input that is a view into a larger buffer', () => {
    const backing = unhex('ff ff 83 01 02 03 ff');
    assert.deepStrictEqual(decode(backing.subarray(2, 6)), [1, 2, 3]);
  });

  test('decode() rejects an empty input as malformed', () => rejects('', 'ERR_CBOR_MALFORMED'));
  test('decode() rejects trailing bytes', () => rejects('0100', 'ERR_CBOR_MALFORMED'));
  test('decode() rejects a truncated integer', () => rejects('1a0001', 'ERR_CBOR_MALFORMED'));
  test('decode() rejects a truncated string', () => rejects('646162', 'ERR_CBOR_MALFORMED'));
  test('decode() rejects an array that claims more elements than bytes remain', () =>
    rejects('99ffff01', 'ERR_CBOR_MALFORMED'));
  test('decode() rejects a map that claims more entries than bytes remain', () =>
    rejects('b90100616101', 'ERR_CBOR_MALFORMED'));
  test('decode() rejects reserved additional information 28..30', () => {
    for (const b of ['1c', '3d', '5e', '7c', '9d', 'be', 'fc', 'fd', 'fe']) rejects(b, 'ERR_CBOR_MALFORMED');
  });
  test('decode() rejects a lone break code', () => rejects('ff', 'ERR_CBOR_MALFORMED'));
  test('decode() rejects an integer with indefinite length', () => {
    rejects('1f', 'ERR_CBOR_MALFORMED');
    rejects('3f', 'ERR_CBOR_MALFORMED');
  });
  test('decode() rejects invalid UTF-8 in a text string', () => {
    rejects('62c328', 'ERR_CBOR_MALFORMED');
    rejects('63eda080', 'ERR_CBOR_MALFORMED'); // an encoded surrogate
    rejects('62c0af', 'ERR_CBOR_MALFORMED'); // an overlong form
  });
  test('decode() keeps a byte order mark in a text string', () => {
    assert.equal(decode(unhex('63efbbbf')), '\ufeff');
  });
  test('decode() rejects a two-byte simple value below 32 as malformed', () =>
    rejects('f814', 'ERR_CBOR_MALFORMED'));

  test('decode() rejects non-shortest integers and lengths', () => {
    for (const b of [
      '1817', // 23 in one extra byte
      '1900ff',
      '1a0000ffff',
      '1b00000000ffffffff',
      '3817',
      '5800',
      '780161',
      '9800',
      'b800',
      '5900010a',
    ]) {
      rejects(b, 'ERR_CBOR_NONCANONICAL');
    }
  });
  test('decode() rejects indefinite-length strings, arrays and maps', () => {
    rejects('5f4101ff', 'ERR_CBOR_NONCANONICAL');
    rejects('7f6161ff', 'ERR_CBOR_NONCANONICAL');
    rejects('9f01ff', 'ERR_CBOR_NONCANONICAL');
    rejects('bf616101ff', 'ERR_CBOR_NONCANONICAL');
  });
  test('decode() rejects map keys out of deterministic order', () => {
    rejects('a2616201616101', 'ERR_CBOR_NONCANONICAL'); // "b" before "a"
    rejects('a262616101616102', 'ERR_CBOR_NONCANONICAL'); // "aa" before "b": longer sorts later
  });
  test('decode() rejects a duplicate key', () => {
    rejects('a2616101616102', 'ERR_CBOR_DUPLICATE_KEY');
    rejects('a3616101616202616103', 'ERR_CBOR_DUPLICATE_KEY'); // not adjacent
  });

  test('decode() rejects tags, floats, undefined and simple values', () => {
    for (const b of [
      'c11a514b67b0', // tag 1
      'c249010000000000000000', // bignum
      'd9d9f700', // self-described CBOR
      'f93c00',
      'fa47c35000',
      'fb3ff199999999999a',
      'f7',
      'f0',
      'f820',
      'f8ff',
    ]) {
      rejects(b, 'ERR_CBOR_UNSUPPORTED');
    }
  });
  test('decode() rejects a map key that is not text', () => {
    rejects('a10101', 'ERR_CBOR_UNSUPPORTED');
    rejects('a1410101', 'ERR_CBOR_UNSUPPORTED');
    rejects('a18001', 'ERR_CBOR_UNSUPPORTED');
  });

  test('decode() enforces maxBytes before reading', () => {
    rejects(new Uint8Array(11), 'ERR_CBOR_LIMIT', { maxBytes: 10 });
    assert.equal(decode(unhex('6a30313233343536373839'), { maxBytes: 11 }), '0123456789');
  });
  test('decode() enforces maxDepth on nested arrays and maps', () => {
    const nested = (n: number): Uint8Array => unhex('81'.repeat(n) + '01');
    assert.deepStrictEqual(decode(nested(16)), JSON.parse('['.repeat(16) + '1' + ']'.repeat(16)));
    rejects(nested(17), 'ERR_CBOR_LIMIT');
    rejects(nested(3), 'ERR_CBOR_LIMIT', { maxDepth: 2 });
    rejects('a161618101', 'ERR_CBOR_LIMIT', { maxDepth: 1 });
    assert.equal(decode(unhex('01'), { maxDepth: 0 }), 1);
    rejects('80', 'ERR_CBOR_LIMIT', { maxDepth: 0 });
  });
  test('decode() refuses a deep input without exhausting the stack', () => {
    rejects(new Uint8Array(1_000_000).fill(0x81), 'ERR_CBOR_LIMIT');
  });
  test('decode() enforces maxItems on arrays and maps', () => {
    rejects('83010203', 'ERR_CBOR_LIMIT', { maxItems: 2 });
    rejects('a3616101616202616303', 'ERR_CBOR_LIMIT', { maxItems: 2 });
    assert.deepStrictEqual(decode(unhex('820102'), { maxItems: 2 }), [1, 2]);
  });
  test('decode() enforces maxStringBytes on byte and text strings', () => {
    rejects('43010203', 'ERR_CBOR_LIMIT', { maxStringBytes: 2 });
    rejects('63616263', 'ERR_CBOR_LIMIT', { maxStringBytes: 2 });
    assert.equal(decode(unhex('626162'), { maxStringBytes: 2 }), 'ab');
  });
  test('decode() refuses a length beyond 2^53 as over the limit, not as a crash', () => {
    rejects('5bffffffffffffffff', 'ERR_CBOR_LIMIT');
    rejects('9bffffffffffffffff', 'ERR_CBOR_LIMIT');
  });
  test('decode() checks its limits as arguments', () => {
    assert.throws(() => decode(unhex('01'), { maxDepth: -1 }), RangeError);
    assert.throws(() => decode(unhex('01'), { maxDepth: 1000 }), RangeError);
    assert.throws(() => decode(unhex('01'), { maxItems: 1.5 }), RangeError);
    assert.throws(() => decode(unhex('01'), { maxBytes: Number.NaN }), RangeError);
    assert.throws(() => decode('01' as unknown as Uint8Array), TypeError);
    assert.equal(defaultLimits.maxDepth, 16);
    assert.ok(Object.isFrozen(defaultLimits));
  });
});

describe('properties', () => {
  test('decode() on random bytes throws only ProtocolError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          decode(bytes);
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
        }
      }),
      { numRuns: 5000 },
    );
  });

  test('decode() on random bytes under tight limits throws only ProtocolError', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 64 }),
        fc.record({
          maxDepth: fc.nat(4),
          maxItems: fc.nat(4),
          maxStringBytes: fc.nat(8),
          maxBytes: fc.nat(64),
        }),
        (bytes, limits) => {
          try {
            decode(bytes, limits);
          } catch (err) {
            if (!(err instanceof ProtocolError)) throw err;
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('decode() inverts encode() on the data model', () => {
    fc.assert(
      fc.property(cborValueArb, (value) => {
        assert.deepStrictEqual(decode(encode(value)), value);
      }),
      { numRuns: 1000 },
    );
  });

  test('decode() accepts a mutated encoding only if re-encoding gives the same bytes', () => {
    // The profile admits one encoding per value: whatever decode() accepts, encode() reproduces.
    let accepted = 0;
    fc.assert(
      fc.property(cborValueArb, fc.nat(), fc.integer({ min: 0, max: 255 }), (value, at, byte) => {
        const bytes = encode(value);
        bytes[at % bytes.length] = byte;
        let decoded: CborValue;
        try {
          decoded = decode(bytes);
        } catch (err) {
          if (err instanceof ProtocolError) return;
          throw err;
        }
        accepted++;
        assert.equal(hex(encode(decoded)), hex(bytes));
      }),
      { numRuns: 2000 },
    );
    assert.ok(accepted > 100, `only ${accepted} mutations decoded`);
  });

  test('encode() agrees with cbor2 in its core deterministic mode', () => {
    fc.assert(
      fc.property(cborValueArb, (value) => {
        assert.equal(hex(encode(value)), hex(cbor2Encode(value, { cde: true })));
      }),
      { numRuns: 1000 },
    );
  });

  /**
   * cbor2 decodes -2^53 (the one integer below Number.MIN_SAFE_INTEGER that a double holds exactly) as a
   * number, and then encodes that number as a float: an integer outside the safe range is a bigint here, as
   * in our data model, before cbor2 encodes it again.
   */
  function unsafeIntsAsBigInts(value: unknown): unknown {
    if (typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value))
      return BigInt(value);
    if (Array.isArray(value)) return value.map(unsafeIntsAsBigInts);
    if (value instanceof Map) {
      return new Map([...value].map(([k, v]) => [unsafeIntsAsBigInts(k), unsafeIntsAsBigInts(v)]));
    }
    if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unsafeIntsAsBigInts(v)]));
    }
    return value;
  }

  test('-2^53, just below the safe integers, is a bigint both ways and encodes as cbor2 encodes it', () => {
    const bytes = encode([-(2n ** 53n)]);
    assert.equal(hex(bytes), '813b001fffffffffffff');
    assert.deepStrictEqual(decode(bytes), [-(2n ** 53n)]);
    assert.equal(hex(cbor2Encode(unsafeIntsAsBigInts(cbor2Decode(bytes)), { cde: true })), hex(bytes));
  });

  test('decode() agrees with cbor2 on what it accepts', () => {
    // cbor2 in its strictest settings still allows tags and non-text keys, so the comparison runs only
    // where our decoder accepts.
    const strict = {
      cde: true,
      rejectDuplicateKeys: true,
      rejectStreaming: true,
      rejectUndefined: true,
      rejectSimple: true,
      rejectFloats: true,
      requirePreferred: true,
    };
    fc.assert(
      fc.property(cborValueArb, fc.nat(), fc.integer({ min: 0, max: 255 }), (value, at, byte) => {
        const bytes = encode(value);
        bytes[at % bytes.length] = byte;
        let ours: CborValue;
        try {
          ours = decode(bytes);
        } catch {
          return;
        }
        const theirs = unsafeIntsAsBigInts(cbor2Decode(bytes, strict));
        assert.equal(hex(cbor2Encode(theirs, { cde: true })), hex(encode(ours)));
      }),
      { numRuns: 1000 },
    );
  });
});
