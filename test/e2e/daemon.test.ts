import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadOrCreateSimRoot } from '../../src/host/simroot.ts';
import { cliPath, example, freePort, repoRoot, runCli, startDaemon, testHome } from '../helpers.ts';

// The Keep Manager as an operator runs it: `donjon host` in the background, tenants with tokens over HTTPS.

const state = mkdtempSync(join(tmpdir(), 'djs-'));
const clientHome = mkdtempSync(join(tmpdir(), 'donjon-client-'));
let port = 0;
let daemon: ChildProcess | undefined;
let fingerprint = '';
let simFingerprint = '';
let token = '';
let otherToken = '';

function remote(tok = token): string[] {
  return ['--host', `https://127.0.0.1:${port}`, '--token', tok, '--host-fingerprint', fingerprint];
}

const env = (): Record<string, string> => ({ DONJON_HOME: clientHome });

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(check: () => Promise<boolean> | boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function keeps(
  tok = token,
): Promise<{ id: string; state: string; keepPid?: number; keepldrPid?: number }[]> {
  const r = await runCli(['keeps', 'ls', '--json', ...remote(tok)], { env: env() });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

before(async () => {
  // Reuse the test run's simulated root rather than making another (two RSA-4096 keys).
  const root = await loadOrCreateSimRoot(testHome);
  mkdirSync(state, { recursive: true });
  copyFileSync(root.path, join(state, 'sim-root.cbor'));
  port = await freePort();
  const info = await runCli(['host', 'info', '--state', state, '--json']);
  assert.equal(info.code, 0, info.stderr);
  const parsed = JSON.parse(info.stdout) as { fingerprint: string; simRootFingerprint: string };
  fingerprint = parsed.fingerprint;
  simFingerprint = parsed.simRootFingerprint;
  token = (await runCli(['host', 'token', 'create', '--state', state, '--name', 'alice'])).stdout.trim();
  otherToken = (await runCli(['host', 'token', 'create', '--state', state, '--name', 'bob'])).stdout.trim();
  daemon = await startDaemon(port, state);
});

after(async () => {
  for (const k of await keeps().catch(() => [])) {
    if (k.keepldrPid && alive(k.keepldrPid)) process.kill(k.keepldrPid, 'SIGKILL');
    if (k.keepPid && alive(k.keepPid)) process.kill(k.keepPid, 'SIGKILL');
  }
  daemon?.kill('SIGKILL');
});

describe('donjon host (the Keep Manager daemon)', () => {
  test('host info and token create print what tenants need', () => {
    assert.match(fingerprint, /^[0-9a-f]{64}$/);
    assert.match(simFingerprint, /^[0-9a-f]{64}$/);
    assert.match(token, /^djt_[A-Za-z0-9_-]{43}$/);
    assert.notEqual(token, otherToken);
  });

  test('token create --json gives the token with its id and tenant, nothing on stderr', async () => {
    const r = await runCli(['host', 'token', 'create', '--state', state, '--name', 'carol', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const t = JSON.parse(r.stdout) as { id: string; tenant: string; token: string };
    assert.equal(t.tenant, 'carol');
    assert.match(t.token, /^djt_[A-Za-z0-9_-]{43}$/);
    assert.equal(typeof t.id, 'string');
    assert.equal(r.stderr, '');
  });

  test('runs a workload for a tenant over HTTPS with a pinned fingerprint', async () => {
    const r = await runCli(
      ['run', ...remote(), '--trust-sim-root', simFingerprint, example('hello'), '--', 'Bob'],
      {
        env: env(),
      },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Hello, Bob!\n');
  });

  test('refuses a wrong token, a wrong fingerprint, and simulated evidence not opted into', async () => {
    const badToken = await runCli(
      ['run', ...remote('djt_nope'), '--trust-sim-root', simFingerprint, example('hello')],
      {
        env: env(),
      },
    );
    assert.equal(badToken.code, 4);
    assert.match(badToken.stderr, /ERR_API_UNAUTHORIZED/);
    const badPin = await runCli(
      [
        'run',
        '--host',
        `https://127.0.0.1:${port}`,
        '--token',
        token,
        '--host-fingerprint',
        '00'.repeat(32),
        example('hello'),
      ],
      { env: env() },
    );
    assert.equal(badPin.code, 3);
    assert.match(badPin.stderr, /fingerprint/);
    const noSim = await runCli(['run', ...remote(), example('hello')], { env: env() });
    assert.equal(noSim.code, 3);
    assert.match(noSim.stderr, /ERR_SIMULATED_ROOT_NOT_TRUSTED|simulated root/);
  });

  test('keeps ls shows a tenant its own Keeps only', async () => {
    const mine = await keeps();
    assert.ok(mine.length >= 1);
    for (const k of mine) {
      assert.match(k.id, /^[0-9a-f]{16}$/);
      assert.ok(['creating', 'ready', 'running', 'exited', 'failed', 'stopped'].includes(k.state));
    }
    assert.deepEqual(await keeps(otherToken), []);
  });

  test('a Keep survives kill -9 of the Keep Manager; the restarted one lists it running and attach reaches it', async () => {
    // A run whose stdin stays open: wc waits for it.
    const running = spawn(
      process.execPath,
      [cliPath, 'run', ...remote(), '--trust-sim-root', simFingerprint, example('wc')],
      { cwd: repoRoot, env: { PATH: process.env['PATH'] ?? '', ...env() }, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    running.stdin!.write('one two\n');
    let err = '';
    running.stderr!.on('data', (c: Buffer) => {
      err += c.toString('utf8');
    });
    await waitFor(() => err.includes('workload started'), 'the workload to start');
    const id = /Keep ([0-9a-f]{16}) created/.exec(err)![1]!;
    await waitFor(async () => (await keeps()).find((k) => k.id === id)?.state === 'running', 'running');

    daemon!.kill('SIGKILL');
    const runExit = await new Promise<number | null>((r) => running.on('close', r));
    assert.equal(runExit, 4, err);
    assert.match(err, /keeps attach/);

    daemon = await startDaemon(port, state);
    const k = (await keeps()).find((x) => x.id === id);
    assert.equal(k?.state, 'running');

    const attached = await runCli(
      ['keeps', 'attach', id, '-q', ...remote(), '--trust-sim-root', simFingerprint],
      {
        env: env(),
        input: 'three four five\n',
      },
    );
    assert.equal(attached.code, 0, attached.stderr);
    // wc saw the line sent before the crash and the one sent after: 2 lines, 5 words, 24 bytes.
    assert.equal(attached.stdout.trim(), '2 5 24');
    await waitFor(async () => (await keeps()).find((x) => x.id === id)?.state === 'exited', 'exited');
  });

  test('kill -9 of a Keep ends its attached client with an error; the record says failed; nothing is left', async () => {
    const running = spawn(
      process.execPath,
      [cliPath, 'run', ...remote(), '--trust-sim-root', simFingerprint, example('wc')],
      { cwd: repoRoot, env: { PATH: process.env['PATH'] ?? '', ...env() }, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let err = '';
    running.stderr!.on('data', (c: Buffer) => {
      err += c.toString('utf8');
    });
    await waitFor(() => err.includes('workload started'), 'the workload to start');
    const id = /Keep ([0-9a-f]{16}) created/.exec(err)![1]!;
    const inspect = await runCli(['keeps', 'inspect', id, '--json', ...remote()], { env: env() });
    const info = JSON.parse(inspect.stdout) as { keepPid: number; keepldrPid: number; state: string };
    assert.equal(info.state, 'running');
    assert.ok(alive(info.keepPid) && alive(info.keepldrPid));

    process.kill(info.keepPid, 'SIGKILL');
    const code = await new Promise<number | null>((r) => running.on('close', r));
    assert.equal(code, 4);
    assert.match(err, /Keep died/);
    await waitFor(async () => (await keeps()).find((x) => x.id === id)?.state === 'failed', 'failed');
    await waitFor(() => !alive(info.keepldrPid), 'the Keep Loader to end');
    assert.equal(existsSync(join(state, 'run', `${id}.sock`)), false);
    const logs = await runCli(['keeps', 'logs', id, '--json', ...remote()], { env: env() });
    const events = JSON.parse(logs.stdout) as { state: string; message?: string }[];
    assert.deepEqual(
      events.map((e) => e.state),
      ['creating', 'ready', 'running', 'failed'],
    );
  });

  test('trusts an unpinned host on first use, remembers it, and takes DONJON_HOST and DONJON_TOKEN', async () => {
    const home = mkdtempSync(join(tmpdir(), 'donjon-tofu-'));
    const envs = { DONJON_HOME: home, DONJON_HOST: `https://127.0.0.1:${port}`, DONJON_TOKEN: token };
    const first = await runCli(['keeps', 'ls', '--json'], { env: envs });
    assert.equal(first.code, 0, first.stderr);
    assert.ok(
      first.stderr.includes(
        `trusting https://127.0.0.1:${port} on first use (certificate SHA-256 ${fingerprint})`,
      ),
      first.stderr,
    );
    const second = await runCli(['keeps', 'ls', '--json'], { env: envs });
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stderr, '');
    // Another certificate at the same address is refused, as SSH refuses a changed host key.
    writeFileSync(join(home, 'known_hosts'), `https://127.0.0.1:${port} ${'ab'.repeat(32)}\n`);
    const changed = await runCli(['keeps', 'ls', '--json'], { env: envs });
    assert.notEqual(changed.code, 0);
    assert.match(changed.stderr, /fingerprint/);
  });

  test('serves Prometheus metrics', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpsGet(`https://127.0.0.1:${port}/metrics`, { rejectUnauthorized: false }, (r) => {
        let text = '';
        r.on('data', (c: Buffer) => {
          text += c.toString('utf8');
        });
        r.on('end', () => resolve(text));
      });
      req.on('error', reject);
    });
    assert.match(body, /^donjon_keeps\{state="running"\} \d+$/m);
    assert.match(body, /^donjon_keeps_created_total \d+$/m);
  });

  test('on SIGTERM the daemon ends cleanly and its Keeps run on for the next start', async () => {
    const r = await runCli(['run', ...remote(), '--trust-sim-root', simFingerprint, example('hello')], {
      env: env(),
    });
    assert.equal(r.code, 0, r.stderr);
    const before = await keeps();
    daemon!.kill('SIGTERM');
    const code = await new Promise<number | null>((res) => daemon!.on('exit', res));
    assert.equal(code, 0);
    daemon = await startDaemon(port, state);
    assert.deepEqual(
      (await keeps()).map((k) => [k.id, k.state]),
      before.map((k) => [k.id, k.state]),
    );
  });

  test("stop and rm manage a tenant's Keeps", async () => {
    const [k] = (await keeps()).filter((x) => x.state === 'exited');
    assert.ok(k);
    const running = await runCli(['keeps', 'rm', k.id, '--json', ...remote()], { env: env() });
    assert.equal(running.code, 0, running.stderr);
    assert.ok(!(await keeps()).some((x) => x.id === k.id));
  });

  test("a second daemon on the same --state refuses, naming the first one's pid, and the first serves on", async () => {
    const otherPort = await freePort();
    const second = await runCli(['host', '--listen', `127.0.0.1:${otherPort}`, '--state', state], {
      timeoutMs: 20_000,
    });
    assert.notEqual(second.code, 0);
    assert.match(
      second.stderr,
      new RegExp(
        `Cannot use the state directory .*: another Keep Manager \\(pid ${daemon!.pid}\\) is using it`,
      ),
    );
    assert.doesNotMatch(second.stderr, /"event":"(adopted|listening)"/);
    assert.ok(Array.isArray(await keeps()));
  });

  test('a daemon whose port is taken exits non-zero with a clear error, having adopted nothing', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const busyPort = (busy.address() as { port: number }).port;
    const other = mkdtempSync(join(tmpdir(), 'djs-'));
    copyFileSync(join(state, 'sim-root.cbor'), join(other, 'sim-root.cbor'));
    try {
      const r = await runCli(['host', '--listen', `127.0.0.1:${busyPort}`, '--state', other], {
        timeoutMs: 20_000,
      });
      assert.notEqual(r.code, 0);
      assert.match(
        r.stderr,
        new RegExp(`Cannot listen on 127\\.0\\.0\\.1:${busyPort}: the address is in use`),
      );
      assert.doesNotMatch(r.stderr, /"event":"(adopted|listening)"/);
      // It let go of its state directory: the next daemon there is not refused.
      assert.equal(existsSync(join(other, 'keepmgr.lock')), false);
    } finally {
      busy.close();
    }
  });
});
