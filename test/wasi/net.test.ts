// The socket bridge between the caller's thread and the worker: both ends on one thread here (a MessagePort
// can be read synchronously from the thread that owns it), then the real thing with the echo example.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { Duplex, PassThrough } from 'node:stream';
import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { startWasi } from '../../src/wasi/index.ts';
import { CallerNet, Doorbell, RX_WINDOW, TX_WINDOW, WorkerNet } from '../../src/wasi/net.ts';
import { example } from '../helpers.ts';

const workerUrl = new URL('./fixtures/worker.mjs', import.meta.url);

/** A stream whose far end the test holds: what the test writes to `far` arrives on `near`. */
function pair(): { near: Duplex; far: { input: PassThrough; output: PassThrough } } {
  const input = new PassThrough();
  const output = new PassThrough();
  const near = Duplex.from({ readable: input, writable: output });
  return { near, far: { input, output } };
}

function bridge(connected: Duplex[] = []) {
  const channel = new MessageChannel();
  const bell = new Doorbell();
  const caller = new CallerNet(channel.port1, bell);
  const ids = connected.map((s) => caller.register(s));
  const worker = new WorkerNet(channel.port2, bell, ids);
  return { caller, worker, ids, bell, close: () => caller.close() };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('CallerNet and WorkerNet carry bytes both ways and ring the doorbell for each arrival', async () => {
  const { near, far } = pair();
  const { worker, ids, bell, close } = bridge([near]);
  const id = ids[0]!;
  const before = bell.seq();
  far.input.write('hello');
  await tick();
  assert.ok(bell.seq() > before);
  const dst = new Uint8Array(16);
  assert.equal(worker.recv(id, dst, true), 5, 'peek');
  assert.equal(worker.recv(id, dst, false), 5);
  assert.equal(Buffer.from(dst.subarray(0, 5)).toString(), 'hello');
  assert.equal(worker.state(id).available, 0);
  assert.equal(worker.send(id, Buffer.from('world')), 5);
  const out: Buffer[] = [];
  far.output.on('data', (c: Buffer) => out.push(c));
  await tick();
  await tick();
  assert.equal(Buffer.concat(out).toString(), 'world');
  far.input.end();
  await tick();
  assert.equal(worker.state(id).ended, true);
  close();
});

test('the caller stops reading a connection past the receive window until the worker consumes', async () => {
  const { near, far } = pair();
  const { worker, ids, close } = bridge([near]);
  const id = ids[0]!;
  const chunk = Buffer.alloc(64 * 1024, 1);
  let written = 0;
  while (written < RX_WINDOW * 3) {
    far.input.write(chunk);
    written += chunk.length;
  }
  await tick();
  await tick();
  const available = worker.state(id).available;
  assert.ok(available > RX_WINDOW, `${available}`);
  assert.ok(available < written, 'the caller paused before taking everything');
  const dst = new Uint8Array(RX_WINDOW);
  let total = 0;
  for (let i = 0; i < 50 && total < written; i++) {
    total += worker.recv(id, dst, false);
    await tick();
  }
  assert.equal(total, written, 'everything arrived once the worker read');
  close();
});

test('the worker may hand over at most the send window until the caller has written it out', async () => {
  const { near, far } = pair();
  const { worker, ids, close } = bridge([near]);
  const id = ids[0]!;
  const big = new Uint8Array(TX_WINDOW * 2);
  assert.equal(worker.send(id, big), TX_WINDOW);
  assert.equal(worker.send(id, big), 0);
  await tick();
  await tick();
  assert.equal(worker.state(id).sendRoom, 0, 'nothing was written out while nobody read');
  far.output.resume();
  await tick();
  await tick();
  assert.ok(worker.state(id).sendRoom > 0, 'the caller returned credit after writing');
  close();
});

test('written bytes are returned to the worker in quarters of the send window, ringing only then', async () => {
  const { near, far } = pair();
  const { worker, ids, bell, close } = bridge([near]);
  const id = ids[0]!;
  far.output.resume();
  const seq = bell.seq();
  for (let i = 0; i < 10; i++) assert.equal(worker.send(id, new Uint8Array(64)), 64);
  await tick();
  await tick();
  assert.equal(bell.seq(), seq, 'small writes written out do not wake the worker');
  assert.equal(worker.state(id).sendRoom, TX_WINDOW - 640, 'their room comes back with a later report');
  // The rest of the window: once a quarter of it is written out, the worker has room again and is woken.
  assert.equal(worker.send(id, new Uint8Array(TX_WINDOW)), TX_WINDOW - 640);
  assert.equal(worker.state(id).sendRoom, 0);
  for (let i = 0; i < 10 && bell.seq() === seq; i++) await tick();
  assert.ok(bell.seq() > seq, 'the doorbell rang');
  assert.ok(worker.state(id).sendRoom >= TX_WINDOW / 4);
  close();
});

test('a reset arrives as reset, and a connection the worker closes is ended', async () => {
  const a = pair();
  const b = pair();
  const { worker, ids, close } = bridge([a.near, b.near]);
  a.near.destroy();
  await tick();
  assert.equal(worker.state(ids[0]!).reset, true);
  assert.equal(worker.state(ids[0]!).sendRoom, 0);
  let ended = false;
  b.far.output.on('end', () => {
    ended = true;
  });
  b.far.output.resume();
  worker.close(ids[1]!);
  await tick();
  await tick();
  assert.equal(ended, true);
  close();
});

test('offer() queues connections for a listener until it is closed, then refuses them', async () => {
  const { caller, worker, close } = bridge();
  assert.equal(caller.offer(3, pair().near), true);
  assert.equal(worker.pending(3), 1);
  const id = worker.accept(3);
  assert.notEqual(id, undefined);
  assert.equal(worker.accept(3), undefined);
  worker.closeListener(3);
  await tick();
  assert.equal(caller.offer(3, pair().near), false);
  close();
  assert.equal(caller.offer(4, pair().near), false, 'nothing is taken after the run');
});

function echoClient(port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c: Socket = connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    c.on('data', (d: Buffer) => got.push(d));
    c.on('error', reject);
    c.on('close', () => resolve(Buffer.concat(got)));
    c.end(payload);
  });
}

test('startWasi() serves a listen file: the echo example echoes two clients at once, 2 MB each', async () => {
  const run = await startWasi({
    module: new Uint8Array(readFileSync(example('echo'))),
    args: ['echo'],
    env: { FD_COUNT: '4', FD_NAMES: 'null:stdout:stderr:echo' },
    stdin: 'null',
    onStdout() {},
    onStderr() {},
    files: [{ kind: 'null' }, { kind: 'stdout' }, { kind: 'stderr' }, { kind: 'listen' }],
    workerUrl,
  });
  // allowHalfOpen: a client that ends its side still reads the rest of its echo.
  const server = createServer({ allowHalfOpen: true }, (s) => {
    if (!run.offer(3, s)) s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  try {
    const a = Buffer.alloc(2_000_000, 'a');
    const b = Buffer.alloc(2_000_000, 'b');
    const [ea, eb] = await Promise.all([echoClient(port, a), echoClient(port, b)]);
    assert.ok(ea.equals(a));
    assert.ok(eb.equals(b));
    assert.throws(() => run.offer(0, new PassThrough()), RangeError);
  } finally {
    run.kill();
    server.close();
  }
  assert.deepEqual(await run.result, { kind: 'killed' });
});
