// The real `donjon broker serve` process (from dist/): admin commands against it, a release, SIGKILL, a restart
// on the same state, the same release again; SIGTERM drains and exits 0.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fetchSecrets } from '../../src/broker/client.ts';
import { measureRuntime } from '../../src/client/runtime.ts';
import { loadOrCreateSimRoot, type StoredSimRoot } from '../../src/host/simroot.ts';
import { cliPath, runCli, testHome } from '../helpers.ts';
import { CONFIG, makeKeep, WORKLOAD } from './support.ts';

let dir: string;
let root: StoredSimRoot;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'donjon-broker-serve-'));
  root = await loadOrCreateSimRoot(testHome);
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Running {
  child: ChildProcess;
  port: number;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function serve(state: string): Promise<Running> {
  const child = spawn(
    process.execPath,
    [cliPath, 'broker', 'serve', '--listen', '127.0.0.1:0', '--state', state],
    {
      env: { PATH: process.env['PATH'] ?? '', DONJON_HOME: testHome },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
      const m = /"event":"listening","url":"https:\/\/127\.0\.0\.1:(\d+)"/.exec(err);
      if (m) resolve({ child, port: Number(m[1]), stderr: () => err, exited });
    });
    void exited.then(() => reject(new Error(`broker serve exited early: ${err}`)));
  });
}

test('donjon broker serve: put, release, SIGKILL, restart on the same state, release again, SIGTERM drains', async () => {
  const info = await runCli(['broker', 'info', '--state', dir, '--json']);
  assert.equal(info.code, 0, info.stderr);
  const { fingerprint } = JSON.parse(info.stdout) as { fingerprint: string };
  assert.match(fingerprint, /^[0-9a-f]{64}$/);
  const tok = await runCli(['broker', 'token', 'create', '--state', dir]);
  assert.equal(tok.code, 0, tok.stderr);
  const token = tok.stdout.trim();

  let broker = await serve(dir);
  const remote = () => [
    '--broker',
    `https://127.0.0.1:${broker.port}`,
    '--token',
    token,
    '--broker-fingerprint',
    fingerprint,
  ];
  const value = `s3cret-${process.pid}-${Date.now()}`;
  const put = await runCli(['broker', 'secret', 'put', 'db', '--from-stdin', ...remote()], { input: value });
  assert.equal(put.code, 0, put.stderr);
  const policyFile = join(dir, 'policy.toml');
  writeFileSync(
    policyFile,
    `[[allow]]\nsecrets = ["db"]\nworkloads = ["${WORKLOAD.toString('hex')}"]\nsim-roots = ["${root.fingerprint}"]\n`,
  );
  const set = await runCli(['broker', 'policy', 'set', policyFile, ...remote()]);
  assert.equal(set.code, 0, set.stderr);
  const ls = await runCli(['broker', 'secret', 'ls', '--json', ...remote()]);
  assert.deepEqual(
    (JSON.parse(ls.stdout) as { name: string }[]).map((s) => s.name),
    ['db'],
  );
  assert.ok(!ls.stdout.includes(value));

  // The Keep runs this version's runtime: the policy's default measurement.
  const keep = makeKeep({ root }, measureRuntime());
  const release = () =>
    fetchSecrets({
      stream: connect(broker.port, '127.0.0.1'),
      fingerprint,
      key: keep.key,
      evidence: keep.evidence,
      workload: WORKLOAD,
      config: CONFIG,
      tee: 'snp',
      secrets: ['db'],
    });
  assert.equal(new TextDecoder().decode((await release()).get('db')), value);

  broker.child.kill('SIGKILL');
  assert.equal((await broker.exited).signal, 'SIGKILL');
  broker = await serve(dir);
  assert.equal(new TextDecoder().decode((await release()).get('db')), value);

  const audit = await runCli(['broker', 'audit', '--json', ...remote()]);
  assert.equal(audit.code, 0, audit.stderr);
  const entries = audit.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { verdict: string; secret?: string });
  assert.equal(entries.filter((e) => e.verdict === 'released' && e.secret === 'db').length, 2);
  const wrong = await runCli([
    'broker',
    'policy',
    'show',
    ...remote().slice(0, 4),
    '--broker-fingerprint',
    '11'.repeat(32),
  ]);
  assert.equal(wrong.code, 3);
  assert.match(wrong.stderr, /Cannot trust the broker/);

  broker.child.kill('SIGTERM');
  assert.deepEqual(await broker.exited, { code: 0, signal: null });
  assert.match(broker.stderr(), /"event":"stopped"/);
  assert.ok(!broker.stderr().includes(value));
});
