import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { decode, encode } from '../../src/protocol/cbor.ts';
import { ProtocolError, type ProtocolErrorCode } from '../../src/protocol/errors.ts';
import {
  decodeMessage,
  decodeMessageAs,
  decodeMessageBytes,
  encodeMessage,
  type Message,
  messageSchemas,
  messageTypes,
} from '../../src/protocol/messages.ts';
import { anyMessageArb, cborValueArb, messageArb } from './support/arbitraries.ts';
import { samples } from './support/samples.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

// {"v": 1, "code": 3, "type": "exit"}: keys sorted by their encodings, so "v" comes first.
const EXIT_3 = 'a3617601' + '64636f6465' + '03' + '6474797065' + '6465786974';

function isCode(code: ProtocolErrorCode, pattern?: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof ProtocolError, `expected a ProtocolError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, /^Cannot (decode|encode) [^:]*: [^A-Z]/);
    assert.doesNotMatch(err.message, /\.$/);
    if (pattern !== undefined) assert.match(err.message, pattern);
    return true;
  };
}

// A valid message as a mutable plain object, to be broken one way at a time.
function valid(): Record<string, unknown> {
  return {
    v: 1,
    type: 'create-keep',
    backend: 'sim',
    limits: { memoryBytes: 1024 },
  };
}

function rejects(value: unknown, code: ProtocolErrorCode, pattern?: RegExp): void {
  assert.throws(() => decodeMessage(value), isCode(code, pattern));
  // The sender refuses the same message with the same code.
  assert.throws(() => encodeMessage(value as Message), isCode(code, pattern));
}

describe('round trips', () => {
  for (const type of messageTypes) {
    test(`encodeMessage() and decodeMessageBytes() round-trip the ${type} samples`, () => {
      const list = samples[type];
      assert.ok(list.length > 0);
      for (const m of list) {
        const bytes = encodeMessage(m);
        assert.deepStrictEqual(decodeMessageBytes(bytes), m);
        assert.deepStrictEqual(decodeMessageAs(decode(bytes), type), m);
        // Deterministic: re-encoding the decoded message gives the same bytes.
        assert.equal(hex(encodeMessage(decodeMessageBytes(bytes))), hex(bytes));
      }
    });

    test(`decodeMessageBytes() inverts encodeMessage() on generated ${type} messages`, () => {
      fc.assert(
        fc.property(messageArb(type), (m) => {
          assert.deepStrictEqual(decodeMessageBytes(encodeMessage(m)), m);
        }),
        { numRuns: 100 },
      );
    });
  }

  test('messageTypes lists every schema once', () => {
    assert.deepStrictEqual([...messageTypes].sort(), Object.keys(messageSchemas).sort());
    assert.equal(new Set(messageTypes).size, messageTypes.length);
    assert.equal(messageTypes.length, 29);
  });

  test('encodeMessage() produces the documented bytes for a small message', () => {
    // {"v": 1, "code": 3, "type": "exit"}: keys sorted as "v", "code", "type" by encoded length.
    assert.equal(hex(encodeMessage({ v: 1, type: 'exit', code: 3 })), EXIT_3);
  });

  test('decodeMessage() keeps an environment key named __proto__ as an ordinary key', () => {
    const env = Object.defineProperty({ PATH: '/bin' }, '__proto__', { value: 'x', enumerable: true });
    const bytes = encode({
      v: 1,
      type: 'deploy',
      wasm: new Uint8Array(0),
      digest: new Uint8Array(32),
      args: [],
      env,
      stdin: false,
      owner: new Uint8Array(32),
    });
    const m = decodeMessageBytes(bytes);
    assert.equal(m.type, 'deploy');
    if (m.type !== 'deploy') return;
    assert.equal(Object.getPrototypeOf(m.env), Object.prototype);
    assert.deepStrictEqual(Object.keys(m.env), ['PATH', '__proto__']);
    assert.equal(Object.getOwnPropertyDescriptor(m.env, '__proto__')?.value, 'x');
    assert.equal(hex(encodeMessage(m)), hex(bytes));
  });

  test('decodeMessage() returns a fresh object, not the one it was given', () => {
    const input = {
      v: 1,
      type: 'keep-list',
      keeps: [{ v: 1, type: 'keep', id: 'a', backend: 'sim', state: 'ready', createdAt: 1 }],
    };
    const out = decodeMessage(input);
    assert.notEqual(out, input);
    assert.ok(out.type === 'keep-list');
    assert.notEqual(out.keeps, input.keeps);
    assert.notEqual(out.keeps[0], input.keeps[0]);
    assert.deepStrictEqual(out, input);
  });

  test('encodeMessage() encodes what it checked, not what a getter returns later', () => {
    let reads = 0;
    const m = { v: 1, type: 'exit' } as Record<string, unknown>;
    Object.defineProperty(m, 'code', {
      enumerable: true,
      get: () => (reads++ === 0 ? 0 : 'later'),
    });
    assert.throws(() => encodeMessage(m as Message), isCode('ERR_MESSAGE_INVALID', /accessor/));
  });
});

describe('rejections', () => {
  test('decodeMessage() rejects a value that is not a map', () => {
    for (const v of [null, 1, 'create-keep', [], new Uint8Array(2), new Map([['v', 1]]), new Date(0)]) {
      rejects(v, 'ERR_MESSAGE_INVALID', /not a map/);
    }
  });

  test('decodeMessage() rejects an unknown key', () => {
    rejects({ ...valid(), extra: 1 }, 'ERR_MESSAGE_INVALID', /unknown key "extra"/);
  });

  test('decodeMessage() rejects an unknown key inside a nested map', () => {
    rejects(
      { ...valid(), limits: { memoryBytes: 1, cpus: 2 } },
      'ERR_MESSAGE_INVALID',
      /limits has the unknown key "cpus"/,
    );
  });

  test('decodeMessage() rejects a missing key', () => {
    const m = valid();
    delete m['backend'];
    rejects(m, 'ERR_MESSAGE_INVALID', /backend is missing/);
  });

  test('decodeMessage() rejects a field of the wrong type', () => {
    rejects({ ...valid(), backend: 1 }, 'ERR_MESSAGE_INVALID', /backend must be one of/);
    rejects({ ...valid(), backend: 'sgx' }, 'ERR_MESSAGE_INVALID', /backend must be one of/);
    rejects(
      { v: 1, type: 'channel-hello', nonce: 'x'.repeat(32) },
      'ERR_MESSAGE_INVALID',
      /nonce must be a byte string/,
    );
    rejects({ ...valid(), limits: { memoryBytes: -1 } }, 'ERR_MESSAGE_INVALID', /limits\.memoryBytes/);
    rejects({ ...valid(), limits: { memoryBytes: 1.5 } }, 'ERR_MESSAGE_INVALID', /limits\.memoryBytes/);
    rejects({ ...valid(), limits: { memoryBytes: 2n ** 53n } }, 'ERR_MESSAGE_INVALID', /limits\.memoryBytes/);
    rejects({ ...valid(), limits: [] }, 'ERR_MESSAGE_INVALID', /limits is not a map/);
    rejects({ v: 1, type: 'exit', code: -1 }, 'ERR_MESSAGE_INVALID', /code must be an unsigned integer/);
    rejects({ v: 1, type: 'exit', code: true }, 'ERR_MESSAGE_INVALID');
    rejects(
      { v: 1, type: 'keep-event', event: 'ready', code: 2 ** 53 },
      'ERR_MESSAGE_INVALID',
      /code must be an integer/,
    );
    rejects(
      { v: 1, type: 'trap', message: new Uint8Array(1) },
      'ERR_MESSAGE_INVALID',
      /message must be a text string/,
    );
    rejects(
      {
        v: 1,
        type: 'deploy',
        wasm: new Uint8Array(0),
        digest: new Uint8Array(32),
        args: ['a', 1],
        env: {},
        stdin: false,
        owner: new Uint8Array(32),
      },
      'ERR_MESSAGE_INVALID',
      /args\[1\] must be a text string/,
    );
    rejects(
      {
        v: 1,
        type: 'deploy',
        wasm: new Uint8Array(0),
        digest: new Uint8Array(32),
        args: [],
        env: { A: 1 },
        stdin: false,
        owner: new Uint8Array(32),
      },
      'ERR_MESSAGE_INVALID',
      /env\.A must be a text string/,
    );
    rejects(
      {
        v: 1,
        type: 'deploy',
        wasm: new Uint8Array(0),
        digest: new Uint8Array(32),
        args: [],
        env: {},
        stdin: 0,
        owner: new Uint8Array(32),
      },
      'ERR_MESSAGE_INVALID',
      /stdin must be true or false/,
    );
  });

  test('decodeMessage() rejects a byte string of the wrong .size', () => {
    rejects(
      { v: 1, type: 'channel-hello', nonce: new Uint8Array(31) },
      'ERR_MESSAGE_INVALID',
      /nonce must be 32 bytes long, not 31/,
    );
    rejects(
      { v: 1, type: 'channel-hello', nonce: new Uint8Array(33) },
      'ERR_MESSAGE_INVALID',
      /nonce must be 32 bytes long/,
    );
    rejects(
      { v: 1, type: 'evidence-request', reportData: new Uint8Array(32) },
      'ERR_MESSAGE_INVALID',
      /reportData/,
    );
    rejects(
      {
        v: 1,
        type: 'deploy',
        wasm: new Uint8Array(0),
        digest: new Uint8Array(20),
        args: [],
        env: {},
        stdin: false,
        owner: new Uint8Array(32),
      },
      'ERR_MESSAGE_INVALID',
      /digest/,
    );
  });

  test('decodeMessage() rejects an optional field present as null or undefined', () => {
    rejects({ ...valid(), limits: null }, 'ERR_MESSAGE_INVALID', /absent rather than null/);
    rejects({ ...valid(), limits: undefined }, 'ERR_MESSAGE_INVALID', /absent rather than null/);
  });

  test('decodeMessage() rejects a message whose version is not 1 with ERR_MESSAGE_VERSION', () => {
    rejects({ ...valid(), v: 2 }, 'ERR_MESSAGE_VERSION', /version 2 is not supported/);
    rejects({ ...valid(), v: 0 }, 'ERR_MESSAGE_VERSION');
    rejects({ v: 2, type: 'from-the-future' }, 'ERR_MESSAGE_VERSION');
  });

  test('decodeMessage() rejects a missing or non-integer version as invalid', () => {
    const m = valid();
    delete m['v'];
    rejects(m, 'ERR_MESSAGE_INVALID', /v must be 1/);
    rejects({ ...valid(), v: '1' }, 'ERR_MESSAGE_INVALID');
    rejects({ ...valid(), v: 1.5 }, 'ERR_MESSAGE_INVALID');
  });

  test('decodeMessage() rejects a missing, non-text or unknown type', () => {
    const m = valid();
    delete m['type'];
    rejects(m, 'ERR_MESSAGE_INVALID', /type must be a text string/);
    rejects({ ...valid(), type: 7 }, 'ERR_MESSAGE_INVALID');
    rejects({ v: 1, type: 'create-kep' }, 'ERR_MESSAGE_UNKNOWN_TYPE', /"create-kep" is unknown/);
    rejects({ v: 1, type: '__proto__' }, 'ERR_MESSAGE_UNKNOWN_TYPE');
    rejects({ v: 1, type: 'toString' }, 'ERR_MESSAGE_UNKNOWN_TYPE');
  });

  test('decodeMessage() rejects an invalid keep inside a keep-list', () => {
    const keep = { v: 1, type: 'keep', id: 'a', backend: 'sim', state: 'ready', createdAt: 1 };
    rejects(
      { v: 1, type: 'keep-list', keeps: [keep, { ...keep, state: 'gone' }] },
      'ERR_MESSAGE_INVALID',
      /keeps\[1\]\.state/,
    );
    rejects(
      { v: 1, type: 'keep-list', keeps: [{ ...keep, v: 2 }] },
      'ERR_MESSAGE_INVALID',
      /keeps\[0\]\.v must be 1/,
    );
    rejects(
      { v: 1, type: 'keep-list', keeps: [{ ...keep, type: 'error' }] },
      'ERR_MESSAGE_INVALID',
      /keeps\[0\]\.type/,
    );
    rejects(
      { v: 1, type: 'keep-list', keeps: [{ ...keep, extra: 1 }] },
      'ERR_MESSAGE_INVALID',
      /keeps\[0\] has the unknown key/,
    );
    // A sparse array has a hole where an element should be.
    const holey: unknown[] = new Array(3);
    holey[0] = keep;
    holey[2] = keep;
    rejects({ v: 1, type: 'keep-list', keeps: holey }, 'ERR_MESSAGE_INVALID', /keeps\[1\] is missing/);
  });

  test('decodeMessage() rejects a message object that is a class instance', () => {
    class Exit {
      v = 1;
      type = 'exit';
      code = 0;
    }
    rejects(new Exit(), 'ERR_MESSAGE_INVALID', /not a map/);
  });

  test('decodeMessageAs() rejects a valid message of another type', () => {
    const bytes = encodeMessage({ v: 1, type: 'error', code: 'ERR_X', message: 'no' });
    assert.throws(
      () => decodeMessageAs(decode(bytes), 'keep'),
      isCode('ERR_MESSAGE_UNEXPECTED_TYPE', /expected "keep", received "error"/),
    );
    assert.equal(decodeMessageAs(decode(bytes), 'error').code, 'ERR_X');
  });

  test('decodeMessageBytes() rejects a duplicate key', () => {
    // {"v": 1, "v": 1, "type": "started"}
    const bytes = unhex('a3 6176 01 6176 01 6474797065 67 73746172746564');
    assert.throws(() => decodeMessageBytes(bytes), isCode('ERR_CBOR_DUPLICATE_KEY'));
  });

  test('decodeMessageBytes() rejects a non-canonical integer and a non-canonical length', () => {
    assert.deepStrictEqual(decodeMessageBytes(unhex(EXIT_3)), { v: 1, type: 'exit', code: 3 });
    // The same message with the 3 in one extra byte, the key "code" with a one-byte length, and the map
    // count with a one-byte length.
    for (const bytes of [
      'a3 6176 01 64636f6465 1803 6474797065 6465786974',
      'a3 6176 01 7804636f6465 03 6474797065 6465786974',
      'b803 6176 01 64636f6465 03 6474797065 6465786974',
    ]) {
      assert.throws(() => decodeMessageBytes(unhex(bytes)), isCode('ERR_CBOR_NONCANONICAL'));
    }
  });

  test('decodeMessageBytes() rejects indefinite lengths and trailing bytes', () => {
    assert.throws(
      () => decodeMessageBytes(unhex('bf 6176 01 6474797065 67 73746172746564 ff')),
      isCode('ERR_CBOR_NONCANONICAL'),
    );
    const good = encodeMessage({ v: 1, type: 'started' });
    assert.throws(() => decodeMessageBytes(Uint8Array.of(...good, 0)), isCode('ERR_CBOR_MALFORMED'));
  });

  test('decodeMessageBytes() applies the limits it is given', () => {
    const bytes = encodeMessage(samples['keep-list'][1]!);
    assert.throws(() => decodeMessageBytes(bytes, { maxDepth: 2 }), isCode('ERR_CBOR_LIMIT'));
    assert.throws(() => decodeMessageBytes(bytes, { maxItems: 1 }), isCode('ERR_CBOR_LIMIT'));
    assert.throws(() => decodeMessageBytes(bytes, { maxBytes: bytes.length - 1 }), isCode('ERR_CBOR_LIMIT'));
    assert.equal(decodeMessageBytes(bytes, { maxDepth: 3, maxBytes: bytes.length }).type, 'keep-list');
  });
});

describe('properties', () => {
  test('decodeMessage() on arbitrary CBOR values throws only ProtocolError', () => {
    fc.assert(
      fc.property(cborValueArb, (value) => {
        try {
          decodeMessage(value);
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('decodeMessageBytes() on random bytes throws only ProtocolError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        try {
          decodeMessageBytes(bytes);
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
        }
      }),
      { numRuns: 3000 },
    );
  });

  test('decodeMessageBytes() on mutated messages throws only ProtocolError, or returns a valid message', () => {
    fc.assert(
      fc.property(anyMessageArb, fc.nat(), fc.integer({ min: 0, max: 255 }), (m, at, byte) => {
        const bytes = encodeMessage(m);
        bytes[at % bytes.length] = byte;
        try {
          const out = decodeMessageBytes(bytes);
          // Whatever decodes is valid and canonical: it re-encodes to the same bytes.
          assert.equal(hex(encodeMessage(out)), hex(bytes));
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
        }
      }),
      { numRuns: 3000 },
    );
  });

  test('decodeMessage() on messages with a field replaced throws only ProtocolError', () => {
    fc.assert(
      fc.property(anyMessageArb, fc.nat(), cborValueArb, (m, pick, replacement) => {
        const keys = Object.keys(m);
        const key = keys[pick % keys.length]!;
        const broken = { ...m, [key]: replacement };
        try {
          decodeMessage(broken);
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
        }
      }),
      { numRuns: 2000 },
    );
  });
});
