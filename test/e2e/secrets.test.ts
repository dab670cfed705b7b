// The contract of Enarx.toml's `[[secrets]]`, with real processes: `donjon host` in the background, `donjon
// broker serve` on loopback, and `donjon run` deploying a program that prints the file named by its argument.
// The Keep fetches the secret through the host's relay before the workload starts; the broker releases it to
// the module its policy names and to nothing else, survives SIGKILL, and no secret byte reaches the host's logs
// or state, or the client's output unless the workload prints it.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadOrCreateSimRoot } from '../../src/host/simroot.ts';
import { cliPath, example, freePort, repoRoot, runCli, testHome } from '../helpers.ts';

const work = mkdtempSync(join(tmpdir(), 'donjon-secrets-'));
const hostState = join(work, 'host');
const brokerState = join(work, 'broker');
const clientHome = join(work, 'client');
// Distinctive, so that any copy of it (or of its base64) anywhere is found.
const SECRET = `db-password-${process.pid}-Zq8vX2mK`;

interface Daemon {
  child: ChildProcess;
  log: () => string;
  exited: Promise<NodeJS.Signals | null>;
}

let host: Daemon | undefined;
let broker: Daemon | undefined;
let hostPort = 0;
let brokerPort = 0;
let hostFingerprint = '';
let simRoot = '';
let hostToken = '';
let brokerFingerprint = '';
let brokerToken = '';

/** Starts a daemon and resolves once its JSON log says it listens. */
function daemon(args: string[]): Promise<Daemon> {
  const child = spawn(process.execPath, [cliPath, ...args], {
    cwd: repoRoot,
    env: { PATH: process.env['PATH'] ?? '', DONJON_HOME: testHome },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_c, s) => resolve(s)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`donjon ${args[0]} did not start: ${log}`)), 20_000);
    child.stderr!.on('data', (c: Buffer) => {
      log += c.toString('utf8');
      if (log.includes('"event":"listening"')) {
        clearTimeout(timer);
        resolve({ child, log: () => log, exited });
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`donjon ${args[0]} exited early: ${log}`));
    });
  });
}

const startBroker = () =>
  daemon(['broker', 'serve', '--listen', `127.0.0.1:${brokerPort}`, '--state', brokerState]);

function brokerArgs(): string[] {
  return [
    '--broker',
    `https://127.0.0.1:${brokerPort}`,
    '--token',
    brokerToken,
    '--broker-fingerprint',
    brokerFingerprint,
  ];
}

function sha256Hex(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function enarxToml(name: string, overrides: { broker?: string; fingerprint?: string } = {}): string {
  const file = join(work, name);
  writeFileSync(
    file,
    `[[secrets]]
name = "db"
broker = "${overrides.broker ?? `https://127.0.0.1:${brokerPort}`}"
fingerprint = "${overrides.fingerprint ?? brokerFingerprint}"
path = "/secrets/db"
`,
  );
  return file;
}

function run(config: string, wasm: string, args: string[], json = false) {
  return runCli(
    [
      'run',
      '--host',
      `https://127.0.0.1:${hostPort}`,
      '--token',
      hostToken,
      '--host-fingerprint',
      hostFingerprint,
      '--trust-sim-root',
      simRoot,
      '--config',
      config,
      ...(json ? ['--json'] : []),
      wasm,
      '--',
      ...args,
    ],
    { env: { DONJON_HOME: clientHome } },
  );
}

function errorEvent(stderr: string): { code: string; hostCode?: string; category: string } {
  const line = stderr
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event?: string })
    .find((e) => e.event === 'error');
  assert.ok(line, `no error event in ${stderr}`);
  return line as { code: string; hostCode?: string; category: string };
}

/** Every file beneath `dir` (the host's state directory). */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

before(async () => {
  mkdirSync(hostState, { recursive: true });
  mkdirSync(clientHome, { recursive: true });
  // The test run's simulated root, rather than another one (two RSA-4096 keys).
  const root = await loadOrCreateSimRoot(testHome);
  copyFileSync(root.path, join(hostState, 'sim-root.cbor'));
  hostPort = await freePort();
  brokerPort = await freePort();
  const info = await runCli(['host', 'info', '--state', hostState, '--json']);
  assert.equal(info.code, 0, info.stderr);
  ({ fingerprint: hostFingerprint, simRootFingerprint: simRoot } = JSON.parse(info.stdout));
  hostToken = (await runCli(['host', 'token', 'create', '--state', hostState, '--name', 't'])).stdout.trim();
  const binfo = await runCli(['broker', 'info', '--state', brokerState, '--json']);
  assert.equal(binfo.code, 0, binfo.stderr);
  brokerFingerprint = (JSON.parse(binfo.stdout) as { fingerprint: string }).fingerprint;
  brokerToken = (await runCli(['broker', 'token', 'create', '--state', brokerState])).stdout.trim();
  [host, broker] = await Promise.all([
    daemon(['host', '--listen', `127.0.0.1:${hostPort}`, '--state', hostState]),
    startBroker(),
  ]);
  const put = await runCli(['broker', 'secret', 'put', 'db', '--from-stdin', ...brokerArgs()], {
    input: SECRET,
  });
  assert.equal(put.code, 0, put.stderr);
  const policy = join(work, 'policy.toml');
  writeFileSync(
    policy,
    `[[allow]]\nsecrets = ["db"]\nworkloads = ["${sha256Hex(example('cat'))}"]\nsim-roots = ["${simRoot}"]\n`,
  );
  const set = await runCli(['broker', 'policy', 'set', policy, ...brokerArgs()]);
  assert.equal(set.code, 0, set.stderr);
});

after(() => {
  host?.child.kill('SIGKILL');
  broker?.child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

test('the module the policy names reads its secret; another is refused before it runs; both are audited', async () => {
  const config = enarxToml('Enarx.toml');
  const ok = await run(config, example('cat'), ['/secrets/db']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, SECRET);
  assert.ok(!ok.stderr.includes(SECRET), 'only what the workload prints');

  const denied = await run(config, example('wc'), ['/secrets/db'], true);
  assert.notEqual(denied.code, 0);
  assert.equal(denied.code, 3, 'a refusal exits with the refused category');
  assert.ok(!denied.stdout.includes(SECRET) && !denied.stderr.includes(SECRET));
  assert.equal(denied.stdout, '', 'the workload never ran');
  const e = errorEvent(denied.stderr);
  assert.equal(e.hostCode, 'ERR_SECRET_DENIED');
  assert.equal(e.category, 'refused');

  const audit = await runCli(['broker', 'audit', '--json', ...brokerArgs()]);
  assert.equal(audit.code, 0, audit.stderr);
  const entries = audit.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { verdict: string; secret?: string; workload?: string; stage: string });
  const cat = sha256Hex(example('cat'));
  const wc = sha256Hex(example('wc'));
  assert.ok(entries.some((x) => x.verdict === 'released' && x.secret === 'db' && x.workload === cat));
  assert.ok(entries.some((x) => x.verdict === 'refused' && x.secret === 'db' && x.workload === wc));
  assert.ok(!audit.stdout.includes(SECRET));
});

test('after the broker is killed with SIGKILL and restarted on the same state, the secret is released again', async () => {
  broker!.child.kill('SIGKILL');
  assert.equal(await broker!.exited, 'SIGKILL');
  broker = await startBroker();
  const ok = await run(enarxToml('Enarx.toml'), example('cat'), ['/secrets/db']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, SECRET);
});

test('a broker that does not hold the pinned certificate is refused before any request (a host relaying elsewhere)', async () => {
  // The Keep Manager's own HTTPS port stands for a fake broker the host relays the Keep's connection to.
  const config = enarxToml('Enarx-fake.toml', { broker: `https://127.0.0.1:${hostPort}` });
  const r = await run(config, example('cat'), ['/secrets/db'], true);
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.stdout, '');
  assert.equal(errorEvent(r.stderr).hostCode, 'ERR_BROKER_UNTRUSTED');
});

test('an unreachable broker ends the deploy with ERR_BROKER_UNREACHABLE', async () => {
  const config = enarxToml('Enarx-gone.toml', { broker: `https://127.0.0.1:${await freePort()}` });
  const r = await run(config, example('cat'), ['/secrets/db'], true);
  assert.equal(r.code, 4, r.stderr);
  assert.equal(r.stdout, '');
  assert.equal(errorEvent(r.stderr).hostCode, 'ERR_BROKER_UNREACHABLE');
});

test("no secret byte in the Keep Manager's logs or state directory", () => {
  const needles = [SECRET, Buffer.from(SECRET).toString('base64'), Buffer.from(SECRET).toString('base64url')];
  for (const n of needles) assert.ok(!host!.log().includes(n), 'host log');
  for (const file of filesUnder(hostState)) {
    const bytes = readFileSync(file);
    for (const n of needles) assert.ok(!bytes.includes(n), file);
  }
  for (const n of needles) assert.ok(!broker!.log().includes(n), 'broker log');
});
