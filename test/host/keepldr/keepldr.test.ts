// The Keep Loader in this process, with a fake Keep runtime the test plays (fake-keep.ts): its lifecycle along
// the table, its graceful stop, the Keep's requests checked against their schemas, and the unix socket it
// serves and removes.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import {
  KeepLoader,
  type KeepLoaderConfig,
  type KeepLoaderHooks,
} from '../../../src/host/keepldr/keepldr.ts';
import { encode } from '../../../src/protocol/cbor.ts';
import { encodeFrame } from '../../../src/protocol/frames.ts';
import type { MessageOf } from '../../../src/protocol/messages.ts';
import { MUX_CONNECT, MUX_LISTEN, type MuxStream } from '../../../src/protocol/mux.ts';
import { readFirstFrame, readFrames } from '../../../src/protocol/stream.ts';
import { freePort } from '../../helpers.ts';
import { FakeKeep, type FakeKeepOptions } from './fake-keep.ts';

type LdrEvent = MessageOf<'ldr-event'>;

interface Harness {
  loader: KeepLoader;
  keep: FakeKeep;
  config: KeepLoaderConfig;
  logs: string[];
  /** Resolves with the exit status the Keep Loader ended with. */
  exited: Promise<number>;
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function setup(
  options: FakeKeepOptions = {},
  hooks: Omit<KeepLoaderHooks, 'exit' | 'log'> = {},
  config: Partial<KeepLoaderConfig> = {},
): Harness {
  const keep = new FakeKeep(options);
  const logs: string[] = [];
  let exit!: (code: number) => void;
  const exited = new Promise<number>((resolve) => {
    exit = resolve;
  });
  const full: KeepLoaderConfig = {
    id: 'k1',
    backend: 'nil',
    socketPath: join(keep.dir, 'ldr.sock'),
    runtimePath: keep.runtimePath,
    limits: { memoryBytes: 64 << 20 },
    ...config,
  };
  const loader = new KeepLoader(full, { ...hooks, exit, log: (line) => logs.push(line) });
  cleanups.push(() => {
    loader.stop();
    keep.close();
  });
  return { loader, keep, config: full, logs, exited };
}

/** Watches the Keep Loader as the Keep Manager does; `until` resolves with the first event matching. */
function watch(socketPath: string): { events: LdrEvent[]; until(state: string): Promise<LdrEvent> } {
  const events: LdrEvent[] = [];
  const waiting: { state: string; resolve: (e: LdrEvent) => void }[] = [];
  const socket = connect(socketPath);
  socket.on('error', () => {});
  socket.write(encodeFrame({ v: 1, type: 'ldr-watch' }));
  readFrames(
    socket,
    (m) => {
      if (m.type !== 'ldr-event') return;
      events.push(m);
      for (const w of waiting.filter((x) => x.state === m.state)) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(m);
      }
    },
    { onError: () => {} },
  );
  cleanups.push(() => socket.destroy());
  return {
    events,
    until: (state) => {
      const seen = events.find((e) => e.state === state);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiting.push({ state, resolve }));
    },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves once `check` holds; fails the test after a while. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`never: ${what}`);
}

/** Opens a stream of the Keep's and resolves with why the Keep Loader reset it (or 'bound'). */
function answer(stream: MuxStream): Promise<string> {
  return new Promise((resolve) => {
    stream.on('error', () => {});
    stream.once('bound', () => resolve('bound'));
    stream.once('close', () => resolve(stream.resetReason ?? 'closed'));
  });
}

describe('KeepLoader lifecycle', () => {
  test('the Keep starts with the configuration the Keep Loader encodes with keepConfigSchema', async () => {
    const h = setup({}, {}, { maxWasmBytes: 1024 });
    await h.loader.start();
    await h.keep.control;
    assert.deepEqual(JSON.parse(h.keep.startedWith()), {
      limits: { memoryBytes: 64 << 20 },
      maxWasmBytes: 1024,
    });
  });

  test('a Keep that says deployed before ready, or ready twice: the step is logged on stderr and refused', async () => {
    const h = setup();
    await h.loader.start();
    const w = watch(h.config.socketPath);
    await w.until('creating');
    await h.keep.event('deployed');
    await h.keep.event('ready');
    await h.keep.event('ready');
    await h.keep.event('deployed');
    await w.until('running');
    assert.deepEqual(
      w.events.map((e) => e.state),
      ['creating', 'ready', 'running'],
    );
    assert.equal(h.logs.length, 2, h.logs.join('\n'));
    assert.match(h.logs[0]!, /^keepldr k1: refused the step creating → running/);
    assert.match(h.logs[1]!, /^keepldr k1: refused the Keep's event 'ready': the Keep is ready already/);
  });

  test('a Keep that exits 0 after its workload: exited 0; the socket is removed and the Keep Loader ends', async () => {
    const h = setup();
    await h.loader.start();
    const w = watch(h.config.socketPath);
    await h.keep.event('ready');
    await h.keep.event('deployed');
    await w.until('running');
    await h.keep.event('exited');
    (await h.keep.control).destroy();
    const last = await w.until('exited');
    assert.equal(last.exitCode, 0);
    assert.equal(await h.exited, 0);
    assert.equal(existsSync(h.config.socketPath), false);
  });

  test('a Keep that exits 0 without a workload ends failed: the table has no step ready → exited', async () => {
    const h = setup();
    await h.loader.start();
    const w = watch(h.config.socketPath);
    await h.keep.event('ready');
    await w.until('ready');
    (await h.keep.control).destroy();
    const last = await w.until('failed');
    assert.equal(last.error, 'the Keep exited before a workload was deployed');
    assert.match(h.logs.join('\n'), /refused the step ready → exited/);
    assert.equal(await h.exited, 0);
  });
});

describe('KeepLoader stop', () => {
  test('stop asks the Keep to end with SIGTERM, kills it after killAfter when it does not, and reports stopped', async () => {
    const h = setup({ ignoreTerm: true }, { timeouts: { killAfter: 300 } });
    await h.loader.start();
    const w = watch(h.config.socketPath);
    await h.keep.event('ready');
    await w.until('ready');
    h.loader.stop();
    const last = await w.until('stopped');
    assert.equal(h.keep.sawSigterm, true, 'the Keep was asked to end first');
    assert.equal(last.exitCode, undefined);
    assert.equal(await h.exited, 0);
    assert.equal(existsSync(h.config.socketPath), false);
  });

  test('a Keep that ends on SIGTERM is stopped without waiting for the kill', async () => {
    // killAfter longer than the test's own timeout: only SIGTERM can end this Keep in time.
    const h = setup({}, { timeouts: { killAfter: 600_000 } });
    await h.loader.start();
    const w = watch(h.config.socketPath);
    await h.keep.event('ready');
    await w.until('ready');
    h.loader.stop();
    await w.until('stopped');
    assert.equal(await h.exited, 0);
  });

  test('ldr-stop on the socket stops the Keep', async () => {
    const h = setup();
    await h.loader.start();
    const w = watch(h.config.socketPath);
    await w.until('creating');
    connect(h.config.socketPath).end(encodeFrame({ v: 1, type: 'ldr-stop' }));
    await w.until('stopped');
  });
});

describe('KeepLoader requests from the Keep', () => {
  const listen = (v: unknown): [typeof MUX_LISTEN, Uint8Array] => [MUX_LISTEN, encode(v)];
  const conn = (v: unknown): [typeof MUX_CONNECT, Uint8Array] => [MUX_CONNECT, encode(v)];
  const cases: [string, [typeof MUX_LISTEN | typeof MUX_CONNECT, Uint8Array], RegExp][] = [
    [
      'LISTEN with a port out of range',
      listen({ name: 'a', port: 70000, addr: '127.0.0.1' }),
      /LISTEN request/,
    ],
    ['LISTEN with the port as text', listen({ name: 'a', port: '80', addr: '127.0.0.1' }), /LISTEN request/],
    ['LISTEN without an address', listen({ name: 'a', port: 0 }), /LISTEN request/],
    [
      'LISTEN with a key not declared',
      listen({ name: 'a', port: 0, addr: '127.0.0.1', x: 1 }),
      /LISTEN request/,
    ],
    ['LISTEN that is not CBOR', [MUX_LISTEN, new Uint8Array([0xff, 0x00])], /LISTEN request/],
    ['CONNECT to port 0', conn({ host: '127.0.0.1', port: 0 }), /CONNECT request/],
    ['CONNECT to no host', conn({ host: '', port: 80 }), /CONNECT request/],
    ['CONNECT with a key not declared', conn({ host: '127.0.0.1', port: 9, via: 'x' }), /CONNECT request/],
    ['CONNECT that is a list', conn(['127.0.0.1', 80]), /CONNECT request/],
  ];

  test('a LISTEN or CONNECT request of the wrong shape is reset', async () => {
    const h = setup();
    await h.loader.start();
    const mux = await h.keep.mux;
    for (const [what, [kind, payload], reason] of cases) {
      assert.match(await answer(mux.open(kind, payload)), reason, what);
    }
  });

  test('a well-formed LISTEN is bound and reported in the Keep Loader’s events', async () => {
    const h = setup({}, {}, { listenAddress: '127.0.0.1' });
    await h.loader.start();
    const w = watch(h.config.socketPath);
    const mux = await h.keep.mux;
    assert.equal(await answer(mux.open(MUX_LISTEN, encode({ name: 'web', port: 0, addr: '::' }))), 'bound');
    await h.keep.event('ready');
    const e = await w.until('ready');
    assert.equal(e.ports?.[0]?.name, 'web');
  });

  /** Asks the Keep Loader for `name`'s host port (the file names `port`); resolves to the port it bound. */
  async function bindOne(h: Harness, name: string, port: number): Promise<number | string> {
    const mux = await h.keep.mux;
    const w = watch(h.config.socketPath);
    const outcome = await answer(mux.open(MUX_LISTEN, encode({ name, port, addr: '127.0.0.1' })));
    if (outcome !== 'bound') return outcome;
    await h.keep.event('ready');
    const e = await w.until('ready');
    return e.ports!.find((p) => p.name === name)!.port;
  }

  test('a listen file gets the port it names when that is free on the host, as Enarx binds it', async () => {
    const port = await freePort();
    const h = setup();
    await h.loader.start();
    assert.equal(await bindOne(h, 'web', port), port);
  });

  test('a listen file whose port is taken gets a free one instead, unless the host says same', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => taken.close());
    const port = (taken.address() as { port: number }).port;
    const h = setup();
    await h.loader.start();
    const bound = await bindOne(h, 'web', port);
    assert.equal(typeof bound, 'number');
    assert.notEqual(bound, port);
    const strict = setup({}, {}, { hostPorts: 'same' });
    await strict.loader.start();
    assert.match(String(await bindOne(strict, 'web', port)), /EADDRINUSE/);
  });

  test('--publish NAME=HOSTPORT binds that host port, and a taken one fails rather than land elsewhere', async () => {
    const wanted = await freePort();
    const h = setup({}, {}, { publish: [{ name: 'web', hostPort: wanted }] });
    await h.loader.start();
    assert.equal(await bindOne(h, 'web', 8080), wanted);
    const again = setup({}, {}, { publish: [{ name: 'web', hostPort: wanted }] });
    await again.loader.start();
    assert.match(String(await bindOne(again, 'web', 8080)), /EADDRINUSE/);
    const any = setup({}, {}, { publish: [{ name: 'web', hostPort: 0 }] });
    await any.loader.start();
    const port = await freePort();
    const bound = await bindOne(any, 'web', port);
    assert.equal(typeof bound, 'number');
    assert.notEqual(bound, 0);
  });

  test('a hand-off message of the wrong shape from the Keep is logged and ignored', async () => {
    const h = setup({
      ipc: [
        { t: 'closed', id: 'one' },
        { t: 'opened', id: 1 },
      ],
    });
    await h.loader.start();
    const w = watch(h.config.socketPath);
    await h.keep.event('ready');
    await w.until('ready');
    await new Promise((r) => setTimeout(r, 50));
    const ignored = h.logs.filter((l) => l.includes('ignored a message from the Keep'));
    assert.equal(ignored.length, 2, h.logs.join('\n'));
  });
});

describe('KeepLoader socket', () => {
  test('a connection that never sends its opening frame is dropped after the openingFrame timeout', async () => {
    const h = setup({}, { timeouts: { openingFrame: 100 } });
    await h.loader.start();
    const silent: Socket = connect(h.config.socketPath);
    silent.on('error', () => {});
    await new Promise<void>((resolve) => silent.once('close', () => resolve()));
    assert.ok(silent.destroyed);
  });

  test('a start that fails kills the Keep it started', async () => {
    const h = setup();
    const config = { ...h.config, socketPath: join(h.keep.dir, 'missing', 'ldr.sock') };
    const loader = new KeepLoader(config, { log: () => {}, exit: () => {} });
    await assert.rejects(loader.start(), /^Error: listen /);
    const pid = loader.keepPid;
    assert.ok(pid !== undefined);
    await until(() => !alive(pid), 'the Keep killed');
  });

  test('a start that fails before the Keep starts removes a stale socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'djl-'));
    const socketPath = join(dir, 'ldr.sock');
    writeFileSync(socketPath, 'stale');
    const loader = new KeepLoader(
      { id: 'k2', backend: 'sim', socketPath, runtimePath: join(dir, 'keep.mjs'), limits: {} },
      { log: () => {}, exit: () => {} },
    );
    writeFileSync(join(dir, 'keep.mjs'), '');
    await assert.rejects(loader.start(), /Cannot start a sim Keep: no simulated root was given/);
    assert.equal(existsSync(socketPath), false);
  });
});

describe('KeepLoader channel', () => {
  /** Asks for the Keep's channel as the Keep Manager does, sending `early` right behind the request. */
  async function askChannel(socketPath: string, early: string): Promise<{ socket: Socket; event: LdrEvent }> {
    const socket = connect(socketPath);
    socket.on('error', () => {});
    cleanups.push(() => socket.destroy());
    socket.write(encodeFrame({ v: 1, type: 'ldr-channel' }));
    socket.write(early);
    const { message, rest } = await readFirstFrame(socket, { timeoutMs: 5000 });
    assert.equal(message.type, 'ldr-event');
    if (rest.length > 0) socket.unshift(rest);
    return { socket, event: message as LdrEvent };
  }

  test('a channel asked for while the Keep starts is answered at once and held, unread, until it is ready', async () => {
    const opened: MuxStream[] = [];
    let received = '';
    const h = setup({
      onStream: ({ stream }) => {
        opened.push(stream);
        stream.on('data', (c: Buffer) => {
          received += c.toString();
        });
      },
    });
    await h.loader.start();
    const { socket, event } = await askChannel(h.config.socketPath, 'hello before ready');
    assert.equal(event.state, 'creating');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(opened.length, 0, 'nothing reaches a Keep that is not ready');
    await h.keep.event('ready');
    await until(() => received === 'hello before ready', 'the held bytes reach the Keep once it is ready');
    let back = '';
    socket.on('data', (c: Buffer) => {
      back += c.toString();
    });
    socket.resume();
    opened[0]!.write('from the Keep');
    await until(() => back === 'from the Keep', "the Keep's bytes come back");
    // One channel at a time, held or not.
    const second = connect(h.config.socketPath);
    second.on('error', () => {});
    cleanups.push(() => second.destroy());
    second.write(encodeFrame({ v: 1, type: 'ldr-channel' }));
    const refused = await readFirstFrame(second, { timeoutMs: 5000 });
    assert.equal(refused.message.type, 'error');
    assert.equal((refused.message as MessageOf<'error'>).code, 'ERR_KEEP_CHANNEL_BUSY');
  });

  test('a held channel is closed, and reaches no Keep, when the Keep fails before it is ready', async () => {
    const opened: MuxStream[] = [];
    const h = setup({ onStream: ({ stream }) => opened.push(stream) });
    await h.loader.start();
    const { socket } = await askChannel(h.config.socketPath, 'hello');
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // A Keep that fails says so and ends; its end decides the state.
    await h.keep.event('failed', 'could not make its key');
    h.keep.close();
    await closed;
    assert.equal(opened.length, 0);
  });
});
