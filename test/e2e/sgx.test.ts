import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadOrCreateSimRoot } from '../../src/host/simroot.ts';
import {
  cliPath,
  example,
  expectGroupGone,
  freePort,
  repoRoot,
  runCli,
  startDaemon,
  testHome,
} from '../helpers.ts';

// The contract of simulated SGX Keeps, as a user meets it: `donjon run --backend sgx-sim` on the embedded
// host and against a `donjon host`, `donjon measure --sgx`, and `donjon platform info`.

const hello = example('hello');
const state = mkdtempSync(join(tmpdir(), 'djsgx-'));
const clientHome = mkdtempSync(join(tmpdir(), 'donjon-sgx-client-'));
let port = 0;
let daemon: ChildProcess | undefined;
let fingerprint = '';
let simFingerprint = '';
let simSgxFingerprint = '';
let token = '';

const remote = (): string[] => [
  '--host',
  `https://127.0.0.1:${port}`,
  '--token',
  token,
  '--host-fingerprint',
  fingerprint,
];

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

before(async () => {
  // Reuse the test run's simulated AMD root rather than making another (two RSA-4096 keys).
  const root = await loadOrCreateSimRoot(testHome);
  mkdirSync(state, { recursive: true });
  copyFileSync(root.path, join(state, 'sim-root.cbor'));
  port = await freePort();
  const info = await runCli(['host', 'info', '--state', state, '--json']);
  assert.equal(info.code, 0, info.stderr);
  const parsed = JSON.parse(info.stdout) as Record<string, string>;
  fingerprint = parsed['fingerprint']!;
  simFingerprint = parsed['simRootFingerprint']!;
  simSgxFingerprint = parsed['simSgxRootFingerprint']!;
  token = (await runCli(['host', 'token', 'create', '--state', state, '--name', 'sgx'])).stdout.trim();
  daemon = await startDaemon(port, state);
});

after(() => {
  daemon?.kill('SIGTERM');
});

describe('donjon run --backend sgx-sim (embedded host)', () => {
  test('greets its first argument from a simulated SGX Keep and leaves no process behind', async () => {
    const r = await runCli(['run', '--backend', 'sgx-sim', hello, '--', 'Alice']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Hello, Alice!\n');
    assert.match(r.stderr, /Keep [0-9a-f]+ created on backend sgx-sim/);
    assert.match(r.stderr, /evidence verified: sgx quote v3, MRENCLAVE [0-9a-f]{64}, TCB UpToDate/);
    assert.match(r.stderr, /WARNING: SIMULATED hardware: .*simulated Intel root \(SHA-256 [0-9a-f]{64}\)/);
    await expectGroupGone(r.pid);
  });

  test('--json names kind sgx, says simulated, and carries the MRENCLAVE donjon measure --sgx prints', async () => {
    const r = await runCli(['run', '--json', '--backend', 'sgx-sim', hello, '--', 'Json']);
    assert.equal(r.code, 0, r.stderr);
    const verified = jsonLines(r.stderr).find((e) => e['event'] === 'evidence-verified')!;
    assert.equal(verified['kind'], 'sgx');
    assert.equal(verified['simulated'], true);
    const measure = await runCli(['measure', '--sgx']);
    assert.equal(measure.code, 0, measure.stderr);
    assert.match(measure.stdout, /^[0-9a-f]{64}\n$/);
    assert.equal(verified['measurement'], measure.stdout.trim());
    const json = await runCli(['measure', '--sgx', '--json']);
    assert.deepEqual(JSON.parse(json.stdout), { mrEnclave: measure.stdout.trim() });
  });

  test('a Keep whose MRENCLAVE is not the expected one is refused with status 3', async () => {
    const r = await runCli(['run', '--backend', 'sgx-sim', '--expect-measurement', '00'.repeat(32), hello]);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /MRENCLAVE [0-9a-f]{64} is not allowed/);
  });
});

describe('donjon run --backend sgx-sim against donjon host', () => {
  test('host info gives the simulated Intel root beside the AMD one', () => {
    assert.match(simSgxFingerprint, /^[0-9a-f]{64}$/);
    assert.notEqual(simSgxFingerprint, simFingerprint);
  });

  test('without --trust-sim-root naming the host’s simulated Intel root the run exits 3', async () => {
    const none = await runCli(['run', '--backend', 'sgx-sim', ...remote(), hello], {
      env: { DONJON_HOME: clientHome },
    });
    assert.equal(none.code, 3, none.stderr);
    assert.equal(none.stdout, '');
    assert.match(none.stderr, /simulated Intel root/);
    // The host's AMD root is another root: naming it does not trust the Intel one.
    const amd = await runCli(
      ['run', '--backend', 'sgx-sim', ...remote(), '--trust-sim-root', simFingerprint, hello],
      { env: { DONJON_HOME: clientHome } },
    );
    assert.equal(amd.code, 3, amd.stderr);
  });

  test('with it, the run works', async () => {
    const r = await runCli(
      ['run', '--backend', 'sgx-sim', ...remote(), '--trust-sim-root', simSgxFingerprint, hello, '--', 'Bob'],
      { env: { DONJON_HOME: clientHome } },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Hello, Bob!\n');
  });
});

describe('donjon deploy --backend sgx-sim against donjon host', () => {
  test('deploys a service into a simulated SGX Keep, which then serves', async () => {
    const env = { DONJON_HOME: clientHome };
    const r = await runCli(
      [
        'deploy',
        '--backend',
        'sgx-sim',
        example('http'),
        '--config',
        join(repoRoot, 'examples', 'http', 'Enarx.toml'),
        ...remote(),
        '--trust-sim-root',
        simSgxFingerprint,
        '--json',
      ],
      { env },
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { id: string; ports: { name: string; hostPort: number }[] };
    assert.match(out.id, /^[0-9a-f]{16}$/);
    assert.equal(out.ports[0]?.name, 'https');
    const inspect = await runCli(['keeps', 'inspect', out.id, '--json', ...remote()], { env });
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.equal((JSON.parse(inspect.stdout) as { backend: string }).backend, 'sgx-sim');
    // keeps attach verifies the Keep under its backend's policy (its MRENCLAVE), then Ctrl-C detaches.
    const attach = spawn(
      process.execPath,
      [cliPath, 'keeps', 'attach', out.id, ...remote(), '--trust-sim-root', simSgxFingerprint, '--json'],
      { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stderr = '';
    const verified = new Promise<void>((resolve) => {
      attach.stderr.on('data', (c: Buffer) => {
        stderr += c.toString('utf8');
        if (stderr.includes('"evidence-verified"')) resolve();
      });
    });
    const ended = new Promise<number | null>((resolve) => attach.on('close', (code) => resolve(code)));
    await Promise.race([verified, ended]);
    attach.kill('SIGINT');
    assert.equal(await ended, 130, stderr);
    assert.match(stderr, /"kind":"sgx"/);
    // donjon proxy verifies the service under the sgx-sim policy (its MRENCLAVE) and forwards a plain request.
    const proxy = spawn(
      process.execPath,
      [
        cliPath,
        'proxy',
        '--to',
        `127.0.0.1:${out.ports[0]!.hostPort}`,
        '--listen',
        '127.0.0.1:0',
        '--backend',
        'sgx-sim',
        '--trust-sim-root',
        simSgxFingerprint,
      ],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let proxyLog = '';
    const proxyPort = await new Promise<number>((resolve, reject) => {
      proxy.stderr.on('data', (c: Buffer) => {
        proxyLog += c.toString('utf8');
        const m = /listening on 127\.0\.0\.1:(\d+)/.exec(proxyLog);
        if (m) resolve(Number(m[1]));
      });
      proxy.on('exit', (code) => reject(new Error(`donjon proxy exited with ${code}: ${proxyLog}`)));
    });
    const status = await new Promise<number | undefined>((resolve) => {
      request({ host: '127.0.0.1', port: proxyPort, path: '/' }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      })
        .on('error', () => resolve(undefined))
        .end();
    });
    proxy.kill('SIGINT');
    assert.equal(status, 200, proxyLog);
    assert.match(proxyLog, /verified/);
    const stop = await runCli(['keeps', 'stop', out.id, ...remote()], { env });
    assert.equal(stop.code, 0, stop.stderr);
  });
});

describe('donjon platform info', () => {
  test('--json lists sgx-sim as available', async () => {
    const r = await runCli(['platform', 'info', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout) as { backends: { name: string; available: boolean }[] };
    assert.deepEqual(
      info.backends.find((b) => b.name === 'sgx-sim'),
      { name: 'sgx-sim', available: true },
    );
  });
});
