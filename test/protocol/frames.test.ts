import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { encode } from '../../src/protocol/cbor.ts';
import { ProtocolError, type ProtocolErrorCode } from '../../src/protocol/errors.ts';
import {
  defaultMaxFrameBytes,
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameReader,
} from '../../src/protocol/frames.ts';
import { encodeMessage, type Message } from '../../src/protocol/messages.ts';
import { anyMessageArb } from './support/arbitraries.ts';
import { samples } from './support/samples.ts';

const isCode =
  (code: ProtocolErrorCode) =>
  (err: unknown): boolean => {
    assert.ok(err instanceof ProtocolError, `expected a ProtocolError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, /^Cannot [^:]+: [^A-Z]/);
    return true;
  };

const concat = (parts: readonly Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

const header = (n: number): Uint8Array => {
  const h = new Uint8Array(4);
  new DataView(h.buffer).setUint32(0, n);
  return h;
};

// A stream of several frames, one of them empty-bodied messages, one of them large enough to need a
// two-byte length inside its CBOR.
const stream: Message[] = [
  { v: 1, type: 'ldr-channel' },
  samples.deploy[0]!,
  { v: 1, type: 'stdout', data: new Uint8Array(300).fill(7) },
  { v: 1, type: 'exit', code: 0 },
];
const streamBytes = concat(stream.map((m) => encodeFrame(m)));

function readAll(reader: FrameReader, chunks: readonly Uint8Array[]): Message[] {
  const out: Message[] = [];
  for (const c of chunks) out.push(...reader.push(c));
  reader.end();
  return out;
}

describe('encodeFrame()', () => {
  test('encodeFrame() writes a 4-byte big-endian length and then the message', () => {
    const m: Message = { v: 1, type: 'exit', code: 3 };
    const body = encodeMessage(m);
    const frame = encodeFrame(m);
    assert.equal(frame.length, FRAME_HEADER_BYTES + body.length);
    assert.deepStrictEqual(frame.subarray(0, 4), Uint8Array.of(0, 0, 0, body.length));
    assert.deepStrictEqual(frame.subarray(4), body);
  });

  test('encodeFrame() writes lengths above 255 big-endian', () => {
    const frame = encodeFrame({ v: 1, type: 'stdout', data: new Uint8Array(70_000) });
    const length = new DataView(frame.buffer).getUint32(0);
    assert.equal(length, frame.length - 4);
    assert.equal(frame[1], length >>> 16);
  });

  test('encodeFrame() refuses a message larger than maxFrameBytes', () => {
    const m: Message = { v: 1, type: 'stdout', data: new Uint8Array(100) };
    assert.throws(() => encodeFrame(m, { maxFrameBytes: 100 }), isCode('ERR_FRAME_TOO_LARGE'));
    assert.equal(
      encodeFrame(m, { maxFrameBytes: encodeMessage(m).length }).length,
      4 + encodeMessage(m).length,
    );
  });

  test('encodeFrame() refuses an invalid message', () => {
    assert.throws(
      () => encodeFrame({ v: 1, type: 'exit' } as unknown as Message),
      isCode('ERR_MESSAGE_INVALID'),
    );
  });

  test('encodeFrame() checks maxFrameBytes as an argument', () => {
    const m: Message = { v: 1, type: 'started' };
    assert.throws(() => encodeFrame(m, { maxFrameBytes: -1 }), RangeError);
    assert.throws(() => encodeFrame(m, { maxFrameBytes: 2 ** 32 }), RangeError);
    assert.equal(defaultMaxFrameBytes, 64 * 1024 * 1024);
  });
});

describe('FrameReader', () => {
  test('FrameReader reads a stream pushed in one chunk', () => {
    assert.deepStrictEqual(readAll(new FrameReader(), [streamBytes]), stream);
  });

  test('FrameReader reads a stream split at every byte boundary', () => {
    for (let i = 0; i <= streamBytes.length; i++) {
      const parts = [streamBytes.subarray(0, i), streamBytes.subarray(i)];
      assert.deepStrictEqual(readAll(new FrameReader(), parts), stream, `split at ${i}`);
    }
  });

  test('FrameReader reads a stream pushed one byte at a time', () => {
    const reader = new FrameReader();
    const out: Message[] = [];
    const completedAt: number[] = [];
    for (let i = 0; i < streamBytes.length; i++) {
      const got = reader.push(streamBytes.subarray(i, i + 1));
      if (got.length > 0) completedAt.push(i + 1);
      out.push(...got);
    }
    reader.end();
    assert.deepStrictEqual(out, stream);
    // Each message comes out exactly when its last byte arrives.
    let end = 0;
    assert.deepStrictEqual(
      completedAt,
      stream.map((m) => (end += encodeFrame(m).length)),
    );
  });

  test('FrameReader reads a stream split at any three points', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(streamBytes.length), { minLength: 3, maxLength: 3 }), (cuts) => {
        const [a, b, c] = [...cuts].sort((x, y) => x - y) as [number, number, number];
        const parts = [0, a, b, c].map((start, i, all) =>
          streamBytes.subarray(start, all[i + 1] ?? streamBytes.length),
        );
        assert.deepStrictEqual(readAll(new FrameReader(), parts), stream);
      }),
      { numRuns: 300 },
    );
  });

  test('FrameReader reads generated messages in random chunkings', () => {
    fc.assert(
      fc.property(
        fc.array(anyMessageArb, { maxLength: 6 }),
        fc.array(fc.nat(40), { maxLength: 10 }),
        (ms, sizes) => {
          const bytes = concat(ms.map((m) => encodeFrame(m)));
          const parts: Uint8Array[] = [];
          let at = 0;
          for (const s of sizes) {
            parts.push(bytes.subarray(at, at + s));
            at += s;
          }
          parts.push(bytes.subarray(at));
          assert.deepStrictEqual(readAll(new FrameReader(), parts), ms);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('FrameReader does not depend on the caller keeping its chunk intact', () => {
    const reader = new FrameReader();
    const frame = encodeFrame({ v: 1, type: 'stdin', data: Uint8Array.of(1, 2, 3) });
    const scratch = new Uint8Array(frame.length);
    const cut = 7;
    scratch.set(frame.subarray(0, cut));
    assert.deepStrictEqual(reader.push(scratch.subarray(0, cut)), []);
    scratch.fill(0xee); // the caller reuses its buffer
    scratch.set(frame.subarray(cut), 0);
    assert.deepStrictEqual(reader.push(scratch.subarray(0, frame.length - cut)), [
      { v: 1, type: 'stdin', data: Uint8Array.of(1, 2, 3) },
    ]);
    reader.end();
  });

  test('FrameReader refuses an oversized length prefix before buffering the body', () => {
    const reader = new FrameReader({ maxFrameBytes: 1000 });
    assert.deepStrictEqual(reader.push(header(1001).subarray(0, 3)), []);
    assert.throws(() => reader.push(header(1001).subarray(3)), isCode('ERR_FRAME_TOO_LARGE'));
    assert.equal(reader.bufferedBytes, 0);
  });

  test('FrameReader refuses a 4 GiB length prefix under the default limit at once', () => {
    const reader = new FrameReader();
    assert.throws(() => reader.push(header(0xffffffff)), isCode('ERR_FRAME_TOO_LARGE'));
  });

  test('FrameReader accepts a frame of exactly maxFrameBytes', () => {
    const m: Message = { v: 1, type: 'stdout', data: new Uint8Array(50) };
    const size = encodeMessage(m).length;
    assert.deepStrictEqual(readAll(new FrameReader({ maxFrameBytes: size }), [encodeFrame(m)]), [m]);
    assert.throws(
      () => new FrameReader({ maxFrameBytes: size - 1 }).push(encodeFrame(m)),
      isCode('ERR_FRAME_TOO_LARGE'),
    );
  });

  test('FrameReader rejects an empty frame body as malformed CBOR', () => {
    assert.throws(() => new FrameReader().push(header(0)), isCode('ERR_CBOR_MALFORMED'));
  });

  test('FrameReader rejects a body with bytes after its message', () => {
    const body = encodeMessage({ v: 1, type: 'started' });
    const frame = concat([header(body.length + 1), body, Uint8Array.of(0)]);
    assert.throws(() => new FrameReader().push(frame), isCode('ERR_CBOR_MALFORMED'));
  });

  test('FrameReader rejects a body that is valid CBOR but not a message', () => {
    const body = encode({ v: 1, type: 'started', extra: true });
    assert.throws(
      () => new FrameReader().push(concat([header(body.length), body])),
      isCode('ERR_MESSAGE_INVALID'),
    );
  });

  test('FrameReader passes its decode limits to each body', () => {
    const frame = encodeFrame(samples['keep-list'][1]!);
    assert.throws(() => new FrameReader({ limits: { maxDepth: 2 } }).push(frame), isCode('ERR_CBOR_LIMIT'));
  });

  test('FrameReader.end() rejects a partial length prefix', () => {
    const reader = new FrameReader();
    reader.push(Uint8Array.of(0, 0));
    assert.throws(() => reader.end(), isCode('ERR_FRAME_TRUNCATED'));
  });

  test('FrameReader.end() rejects a partial frame body', () => {
    const reader = new FrameReader();
    const frame = encodeFrame({ v: 1, type: 'started' });
    reader.push(frame.subarray(0, frame.length - 1));
    assert.throws(() => reader.end(), isCode('ERR_FRAME_TRUNCATED'));
  });

  test('FrameReader.end() accepts a stream that stops between frames, including an empty one', () => {
    new FrameReader().end();
    const reader = new FrameReader();
    reader.push(encodeFrame({ v: 1, type: 'started' }));
    reader.end();
  });

  test('FrameReader is closed after an error', () => {
    const reader = new FrameReader({ maxFrameBytes: 10 });
    assert.throws(() => reader.push(header(11)), isCode('ERR_FRAME_TOO_LARGE'));
    assert.throws(
      () => reader.push(encodeFrame({ v: 1, type: 'started' })),
      (err: unknown) =>
        isCode('ERR_FRAME_READER_CLOSED')(err) &&
        err instanceof ProtocolError &&
        (err.cause as ProtocolError).code === 'ERR_FRAME_TOO_LARGE',
    );
    assert.throws(() => reader.end(), isCode('ERR_FRAME_READER_CLOSED'));
  });

  test('FrameReader is closed after end()', () => {
    const reader = new FrameReader();
    reader.end();
    assert.throws(
      () => reader.push(encodeFrame({ v: 1, type: 'started' })),
      isCode('ERR_FRAME_READER_CLOSED'),
    );
  });

  test('FrameReader checks its arguments', () => {
    assert.throws(() => new FrameReader({ maxFrameBytes: 1.5 }), RangeError);
    assert.throws(() => new FrameReader({ maxFrameBytes: 2 ** 32 }), RangeError);
    assert.throws(() => new FrameReader().push('x' as unknown as Uint8Array), TypeError);
  });

  test('FrameReader on random bytes throws only ProtocolError', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 24 }), { maxLength: 6 }), (chunks) => {
        const reader = new FrameReader({ maxFrameBytes: 4096 });
        try {
          for (const c of chunks) reader.push(c);
          reader.end();
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
        }
      }),
      { numRuns: 3000 },
    );
  });

  test('FrameReader on corrupted frame streams throws only ProtocolError', () => {
    fc.assert(
      fc.property(
        fc.array(anyMessageArb, { minLength: 1, maxLength: 3 }),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        fc.nat(50),
        (ms, at, byte, cut) => {
          const bytes = concat(ms.map((m) => encodeFrame(m)));
          bytes[at % bytes.length] = byte;
          const reader = new FrameReader({ maxFrameBytes: 1 << 20 });
          try {
            reader.push(bytes.subarray(0, cut));
            reader.push(bytes.subarray(cut));
            reader.end();
          } catch (err) {
            if (!(err instanceof ProtocolError)) throw err;
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
