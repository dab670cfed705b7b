import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadOrCreateSimRoot } from '../../src/host/simroot.ts';
import { cliPath, example, repoRoot, runCli, testHome } from '../helpers.ts';

// No systemd runs on the test machines: a stand-in `systemd-run` records its arguments and starts the command
// after `--` in its own session, as a transient service would be. What is tested is the Keep Manager's side:
// the unit it asks for, and that it finds the Keep Loader it did not start itself.

const state = mkdtempSync(join(tmpdir(), 'djd-'));
const bin = mkdtempSync(join(tmpdir(), 'donjon-fake-systemd-'));
const record = join(bin, 'calls.txt');
let daemon: ChildProcess | undefined;
let port = 0;

before(async () => {
  writeFileSync(
    join(bin, 'systemd-run'),
    `#!/bin/sh\nprintf '%s\\n' "$*" >> '${record}'\nwhile [ "$1" != "--" ]; do shift; done\nshift\nsetsid "$@" </dev/null >/dev/null 2>&1 &\nexit 0\n`,
  );
  chmodSync(join(bin, 'systemd-run'), 0o755);
  const root = await loadOrCreateSimRoot(testHome);
  copyFileSync(root.path, join(state, 'sim-root.cbor'));
  port = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  daemon = await new Promise<ChildProcess>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [cliPath, 'host', '--listen', `127.0.0.1:${port}`, '--state', state, '--launcher', 'systemd'],
      {
        cwd: repoRoot,
        env: { PATH: `${bin}:${process.env['PATH'] ?? ''}` },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let log = '';
    child.stderr!.on('data', (c: Buffer) => {
      log += c.toString('utf8');
      if (log.includes('"event":"listening"')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`donjon host exited with ${code}: ${log}`)));
  });
});

after(() => daemon?.kill('SIGKILL'));

test('donjon host --launcher systemd starts each Keep Loader as a transient unit donjon-keep-ID', async () => {
  const info = JSON.parse((await runCli(['host', 'info', '--state', state, '--json'])).stdout) as {
    fingerprint: string;
    simRootFingerprint: string;
  };
  const token = (await runCli(['host', 'token', 'create', '--state', state])).stdout.trim();
  const home = mkdtempSync(join(tmpdir(), 'donjon-client-'));
  const r = await runCli(
    [
      'run',
      '--host',
      `https://127.0.0.1:${port}`,
      '--token',
      token,
      '--host-fingerprint',
      info.fingerprint,
      '--trust-sim-root',
      info.simRootFingerprint,
      example('hello'),
      '--',
      'Unit',
    ],
    { env: { DONJON_HOME: home } },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'Hello, Unit!\n');
  const id = /Keep ([0-9a-f]{16}) created/.exec(r.stderr)![1]!;
  const calls = readFileSync(record, 'utf8');
  assert.match(calls, new RegExp(`--unit=donjon-keep-${id} --collect --quiet --property=KillMode=mixed`));
  assert.match(calls, /--property=MemoryMax=\d+/);
  assert.match(calls, / -- \S+node\S* \S+keepldr\.cjs /);
});

test('a Keep Loader of a systemd unit killed outright: its Keep is recorded failed and its socket removed', async () => {
  const info = JSON.parse((await runCli(['host', 'info', '--state', state, '--json'])).stdout) as {
    fingerprint: string;
    simRootFingerprint: string;
  };
  const token = (await runCli(['host', 'token', 'create', '--state', state])).stdout.trim();
  const home = mkdtempSync(join(tmpdir(), 'donjon-client-'));
  const remote = [
    '--host',
    `https://127.0.0.1:${port}`,
    '--token',
    token,
    '--host-fingerprint',
    info.fingerprint,
  ];
  // A run whose stdin stays open: wc waits for it, so the Keep stays running.
  const running = spawn(
    process.execPath,
    [cliPath, 'run', ...remote, '--trust-sim-root', info.simRootFingerprint, example('wc')],
    {
      cwd: repoRoot,
      env: { PATH: process.env['PATH'] ?? '', DONJON_HOME: home },
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let err = '';
  running.stderr!.on('data', (c: Buffer) => {
    err += c.toString('utf8');
  });
  const deadline = Date.now() + 20_000;
  while (!err.includes('workload started')) {
    assert.ok(Date.now() < deadline, `the workload did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const id = /Keep ([0-9a-f]{16}) created/.exec(err)![1]!;
  const inspect = async () =>
    JSON.parse(
      (await runCli(['keeps', 'inspect', id, '--json', ...remote], { env: { DONJON_HOME: home } })).stdout,
    ) as { state: string; keepldrPid: number; keepPid?: number };
  const before = await inspect();
  assert.equal(before.state, 'running');
  // systemd, not the Keep Manager, is its parent: the Keep Manager knows its pid only from the Keep Loader.
  process.kill(before.keepldrPid, 'SIGKILL');
  if (before.keepPid) process.kill(before.keepPid, 'SIGKILL');
  await new Promise((r) => running.on('close', r));
  for (;;) {
    const now = await inspect();
    if (now.state === 'failed' && !existsSync(join(state, 'run', `${id}.sock`))) break;
    assert.ok(Date.now() < deadline + 10_000, `still ${now.state}, or its socket is still there`);
    await new Promise((r) => setTimeout(r, 50));
  }
});
