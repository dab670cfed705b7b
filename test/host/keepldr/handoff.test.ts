// The connections of a workload's listen files, through a real Keep Loader process and its Keep: handed over
// to the Keep process (the default) or relayed over the channel pipe, for tcp and tls files, under the Keep
// Loader's per-listener connection cap.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Policy } from '../../../src/attestation/index.ts';
import { connectService, measureRuntime } from '../../../src/client/index.ts';
import type { KeepLoaderConfig } from '../../../src/host/keepldr/keepldr.ts';
import { loadOrCreateSimRoot } from '../../../src/host/simroot.ts';
import { builtFile } from '../../../src/paths.ts';
import { encodeFrame } from '../../../src/protocol/frames.ts';
import type { Message } from '../../../src/protocol/messages.ts';
import { readFirstFrame } from '../../../src/protocol/stream.ts';
import { testHome } from '../../helpers.ts';
import { deployService, lastWords, open, refused, roundTrip, until, within } from '../../keep/deploy.ts';

interface Loader {
  child: ChildProcess;
  /** The host port of the workload's one listen file. */
  port: number;
  keepPid: number;
  socketPath: string;
}

let simRootPath = '';
let policy: Policy;
const children: ChildProcess[] = [];

before(async () => {
  const root = await loadOrCreateSimRoot(testHome);
  simRootPath = root.path;
  policy = { measurements: [measureRuntime()], trustSimulatedRoots: [root.fingerprint] };
});

after(() => {
  for (const c of children) {
    c.kill('SIGCONT');
    c.kill('SIGTERM');
  }
});

/** Opens a channel on a Keep Loader's socket as the Keep Manager does, once its Keep is ready. */
async function channel(socketPath: string): Promise<{ socket: Socket; event: Message }> {
  await until(() => existsSync(socketPath), 'the Keep Loader’s socket');
  for (let i = 0; i < 400; i++) {
    const socket = connect(socketPath);
    socket.on('error', () => {});
    socket.write(encodeFrame({ v: 1, type: 'ldr-channel' }));
    const first = await readFirstFrame(socket, { timeoutMs: 5000 }).catch(() => undefined);
    if (first?.message.type === 'ldr-event') {
      if (first.rest.length > 0) socket.unshift(first.rest);
      return { socket, event: first.message };
    }
    socket.destroy();
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the Keep never became ready');
}

/** Starts a Keep Loader process (sim backend) and deploys an example service into its Keep. */
async function startService(
  name: 'echo' | 'http',
  options: Pick<KeepLoaderConfig, 'connections' | 'maxConnectionsPerListener'>,
): Promise<Loader> {
  const socketPath = join(mkdtempSync(join(tmpdir(), 'djh-')), 'k.sock');
  const config: KeepLoaderConfig = {
    id: `handoff-${name}`,
    backend: 'sim',
    socketPath,
    runtimePath: builtFile('keep.cjs'),
    simRootPath,
    limits: {},
    listenAddress: '127.0.0.1',
    ...options,
  };
  const child = spawn(process.execPath, [builtFile('keepldr.cjs'), JSON.stringify(config)], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {},
  });
  children.push(child);
  const { socket, event } = await channel(socketPath);
  const ports = await deployService(socket, name, policy);
  assert.equal(ports.length, 1);
  assert.ok(event.type === 'ldr-event' && event.keepPid !== undefined);
  return { child, port: ports[0]!.port, keepPid: event.keepPid, socketPath };
}

/** One HTTP GET over a verified connection to the http example; resolves with the response. */
async function get(port: number, between?: () => void): Promise<string> {
  const { socket } = await connectService({ host: '127.0.0.1', port, policy });
  between?.();
  return new Promise((resolve, reject) => {
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('utf8');
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
    socket.write('GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n');
  });
}

for (const connections of ['hand-off', 'relay'] as const) {
  describe(`listen-file connections, ${connections}`, () => {
    let echo: Loader;
    let capped: Loader;
    let http: Loader;

    before(async () => {
      [echo, capped, http] = await Promise.all([
        startService('echo', { connections }),
        startService('echo', { connections, maxConnectionsPerListener: 2 }),
        startService('http', { connections }),
      ]);
    });

    test('a tcp file carries bytes both ways, and each direction ends on its own', async () => {
      const s = await open(echo.port);
      assert.equal(await roundTrip(s, 'ping'), 'ping');
      assert.equal(await roundTrip(s, 'x'.repeat(300_000)), 'x'.repeat(300_000));
      assert.equal(await lastWords(s, 'last words'), 'last words');
    });

    test('a tls file ends TLS in the Keep and serves the verified workload', async () => {
      assert.match(await get(http.port), /^HTTP\/1\.1 200 OK[\s\S]*Hello from examples\/http/);
    });

    test('a listener holds at most its cap of open connections; closing one makes room', async () => {
      const a = await open(capped.port);
      const b = await open(capped.port);
      assert.equal(await roundTrip(a, 'a'), 'a');
      assert.equal(await roundTrip(b, 'b'), 'b');
      assert.ok(await refused(capped.port), 'a third connection is closed on arrival');
      assert.equal(await lastWords(a, 'bye'), 'bye');
      await until(async () => !(await refused(capped.port)), 'room for a new connection');
      assert.equal(await roundTrip(b, 'still here'), 'still here');
      b.destroy();
    });
  });
}

describe('handed-over connections belong to the Keep', () => {
  let echo: Loader;
  let http: Loader;

  before(async () => {
    [echo, http] = await Promise.all([startService('echo', {}), startService('http', {})]);
  });

  test('tcp and tls connections go on while the Keep Loader is stopped', async () => {
    const s = await open(echo.port);
    assert.equal(await roundTrip(s, 'before'), 'before');
    try {
      echo.child.kill('SIGSTOP');
      assert.equal(await within(roundTrip(s, 'while stopped'), 'the echo'), 'while stopped');
      assert.equal(await within(lastWords(s, 'the end'), 'the last echo'), 'the end');
      const page = get(http.port, () => http.child.kill('SIGSTOP'));
      assert.match(await within(page, 'the page'), /Hello from examples\/http/);
    } finally {
      echo.child.kill('SIGCONT');
      http.child.kill('SIGCONT');
    }
  });

  test('they end with their Keep', async () => {
    const s = await open(echo.port);
    assert.equal(await roundTrip(s, 'hello'), 'hello');
    const closed = new Promise((resolve) => s.once('close', resolve));
    s.on('error', () => {});
    echo.child.kill('SIGTERM');
    await closed;
    await until(() => {
      try {
        process.kill(echo.keepPid, 0);
        return false;
      } catch {
        return true;
      }
    }, 'the Keep to exit');
  });
});

/** Sends `ldr-drain` on a Keep Loader's socket; resolves with a promise of the connection's close. */
async function drain(socketPath: string): Promise<{ closed: Promise<void>; isClosed: () => boolean }> {
  const socket = connect(socketPath);
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve));
  let done = false;
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      done = true;
      resolve();
    }),
  );
  socket.resume();
  socket.write(encodeFrame({ v: 1, type: 'ldr-drain' }));
  return { closed, isClosed: () => done };
}

/** Whether a fresh connection to a local port is refused by the kernel (nothing listens there). */
function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

for (const connections of ['hand-off', 'relay'] as const) {
  test(`ldr-drain (${connections}): the port stops accepting, an open connection finishes, then the answer`, async () => {
    const echo = await startService('echo', { connections });
    const s = await open(echo.port);
    assert.equal(await roundTrip(s, 'before'), 'before');
    const d = await drain(echo.socketPath);
    await until(() => connectionRefused(echo.port), 'the port to close');
    assert.equal(d.isClosed(), false, 'the drain waits for the open connection');
    assert.equal(await roundTrip(s, 'during the drain'), 'during the drain');
    assert.equal(await lastWords(s, 'the end'), 'the end');
    await within(d.closed, 'the drain to be answered');
    // The Keep itself runs on until it is stopped.
    process.kill(echo.keepPid, 0);
    echo.child.kill('SIGTERM');
  });
}
