import assert from 'node:assert/strict';
import { Duplex, PassThrough } from 'node:stream';
import { test } from 'node:test';
import fc from 'fast-check';
import { ProtocolError } from '../../src/protocol/errors.ts';
import {
  encodeMuxFrame,
  MUX_ACCEPT,
  MUX_BOUND,
  MUX_DATA,
  MUX_KEEP_ID_BIT,
  MUX_LISTEN,
  MUX_MAX_PAYLOAD,
  MUX_OPEN,
  MUX_WINDOW_BYTES,
  type MuxIncoming,
  MuxReader,
  MuxSession,
  type MuxStream,
} from '../../src/protocol/mux.ts';

/** Two sessions joined by a pipe pair: the host's end and the Keep's end. */
function sessions() {
  const toKeep = new PassThrough();
  const toHost = new PassThrough();
  const hostPipe = Duplex.from({ readable: toHost, writable: toKeep });
  const keepPipe = Duplex.from({ readable: toKeep, writable: toHost });
  const atHost: MuxIncoming[] = [];
  const atKeep: MuxIncoming[] = [];
  const errors: { host: ProtocolError[]; keep: ProtocolError[] } = { host: [], keep: [] };
  const host = new MuxSession(hostPipe, {
    side: 'host',
    onStream: (i) => atHost.push(i),
    onError: (e) => errors.host.push(e),
  });
  const keep = new MuxSession(keepPipe, {
    side: 'keep',
    onStream: (i) => atKeep.push(i),
    onError: (e) => errors.keep.push(e),
  });
  return { host, keep, atHost, atKeep, errors, toKeep, toHost };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await tick();
}

function collect(stream: MuxStream): () => Buffer {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return () => Buffer.concat(chunks);
}

test('MuxReader decodes frames split at any byte', () => {
  const frames = Buffer.concat([
    encodeMuxFrame(MUX_OPEN, 1),
    encodeMuxFrame(MUX_DATA, 1, Buffer.from('hello')),
    encodeMuxFrame(MUX_BOUND, 2, Uint8Array.of(0x1f, 0x90)),
  ]);
  for (let cut = 0; cut <= frames.length; cut++) {
    const r = new MuxReader();
    const got = [...r.push(frames.subarray(0, cut)), ...r.push(frames.subarray(cut))];
    assert.deepEqual(
      got.map((f) => [f.kind, f.id, Buffer.from(f.payload).toString('hex')]),
      [
        [MUX_OPEN, 1, ''],
        [MUX_DATA, 1, Buffer.from('hello').toString('hex')],
        [MUX_BOUND, 2, '1f90'],
      ],
    );
  }
});

test('MuxReader refuses an unknown kind and an oversized payload', () => {
  assert.throws(() => new MuxReader().push(encodeMuxFrame(MUX_DATA, 1).fill(10, 0, 1)), ProtocolError);
  const big = Buffer.alloc(9);
  big.writeUInt8(MUX_DATA, 0);
  big.writeUInt32BE(MUX_MAX_PAYLOAD + 1, 5);
  assert.throws(
    () => new MuxReader().push(big),
    (e: unknown) => e instanceof ProtocolError && e.code === 'ERR_FRAME_TOO_LARGE',
  );
});

test('MuxReader lets only ProtocolError escape, whatever the bytes', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
      const r = new MuxReader();
      try {
        for (const c of chunks) r.push(c);
      } catch (error) {
        assert.ok(error instanceof ProtocolError, String(error));
      }
    }),
    { numRuns: 500 },
  );
});

test('MuxSession carries a stream both ways, with half-close', async () => {
  const { host, atKeep } = sessions();
  const a = host.open(MUX_OPEN);
  const fromKeep = collect(a);
  await settle();
  assert.equal(atKeep.length, 1);
  const b = atKeep[0]!.stream;
  assert.equal(atKeep[0]!.kind, MUX_OPEN);
  const fromHost = collect(b);
  let keepSawEnd = false;
  b.on('end', () => {
    keepSawEnd = true;
  });
  a.end('request');
  await settle();
  assert.equal(fromHost().toString(), 'request');
  assert.equal(keepSawEnd, true);
  b.end('answer after the peer ended');
  await settle();
  assert.equal(fromKeep().toString(), 'answer after the peer ended');
});

test('MuxSession ids: the host opens below 2^31, the Keep above, and neither may use the other side', async () => {
  const { host, keep, atHost, errors, toKeep } = sessions();
  const h = host.open(MUX_OPEN);
  const k = keep.open(MUX_LISTEN, Uint8Array.of(1));
  assert.ok(h.id < MUX_KEEP_ID_BIT);
  assert.ok(k.id >= MUX_KEEP_ID_BIT);
  await settle();
  assert.equal(atHost[0]!.kind, MUX_LISTEN);
  assert.deepEqual([...atHost[0]!.payload], [1]);
  // The host opening a stream in the Keep's id space, or a kind only the Keep may open, breaks the session.
  toKeep.write(encodeMuxFrame(MUX_ACCEPT, MUX_KEEP_ID_BIT | 5));
  await settle();
  assert.equal(errors.keep.length, 1);
  const fresh = sessions();
  fresh.toKeep.write(encodeMuxFrame(MUX_LISTEN, 7));
  await settle();
  assert.equal(fresh.errors.keep.length, 1, 'LISTEN is not the host’s to open');
});

test('MuxSession answers LISTEN with BOUND, and RESET carries a reason', async () => {
  const { host, keep, atHost } = sessions();
  const listen = keep.open(MUX_LISTEN);
  const bound = new Promise<Uint8Array>((r) => listen.once('bound', r));
  await settle();
  atHost[0]!.stream.sendControl(MUX_BOUND, Uint8Array.of(0x20, 0xfb));
  assert.deepEqual([...(await bound)], [0x20, 0xfb]);
  const refused = keep.open(MUX_LISTEN);
  await settle();
  atHost[1]!.stream.reset('EADDRINUSE binding :: port 443');
  await new Promise((r) => refused.once('close', r));
  assert.equal(refused.resetReason, 'EADDRINUSE binding :: port 443');
  assert.equal(host.size, 1);
});

test('a stream whose reader stalls holds back only itself, within its window', async () => {
  const { host, atKeep } = sessions();
  const slow = host.open(MUX_OPEN);
  const fast = host.open(MUX_OPEN);
  await settle();
  const slowEnd = atKeep[0]!.stream;
  const fastEnd = atKeep[1]!.stream;
  slowEnd.pause();
  const got = collect(fastEnd);
  const big = Buffer.alloc(MUX_WINDOW_BYTES * 3, 7);
  let slowDone = false;
  slow.write(big, () => {
    slowDone = true;
  });
  fast.write(Buffer.from('still flowing'));
  await settle();
  assert.equal(got().toString(), 'still flowing');
  assert.equal(slowDone, false, 'the sender waits for the stalled reader');
  assert.ok(slowEnd.readableLength <= MUX_WINDOW_BYTES, `${slowEnd.readableLength} buffered`);
  const drained = collect(slowEnd);
  slowEnd.resume();
  for (let i = 0; i < 40 && drained().length < big.length; i++) await settle();
  assert.equal(drained().length, big.length);
  assert.equal(slowDone, true);
});

test('a peer that overruns the window gets its stream reset', async () => {
  const { atKeep, toKeep, host } = sessions();
  host.open(MUX_OPEN);
  await settle();
  const stream = atKeep[0]!.stream;
  stream.pause();
  const id = stream.id;
  const chunk = Buffer.alloc(MUX_MAX_PAYLOAD);
  for (let sent = 0; sent <= MUX_WINDOW_BYTES; sent += chunk.length) {
    toKeep.write(encodeMuxFrame(MUX_DATA, id, chunk));
  }
  await settle();
  assert.equal(stream.destroyed, true);
});
