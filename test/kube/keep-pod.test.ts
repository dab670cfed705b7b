// The keep-pod line of the Kubernetes contract, as a plain process: with the http example pushed and signed
// to a loopback registry, `donjon keep-pod REF@sha256:… --config Enarx.toml --verify-key cosign.pub --backend
// sim --health-listen 127.0.0.1:PORT` answers /readyz 200 once serving, serves the example over attested TLS,
// and after SIGTERM lets an open connection finish, refuses new ones, and exits 0 within the grace period.
// Then what it must refuse: an unpinned reference, a signature by another key, sim without --sim-root.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Policy } from '../../src/attestation/index.ts';
import { connectService, measureRuntime, parseEnarxToml } from '../../src/client/index.ts';
import { configDigest } from '../../src/protocol/workload.ts';
import { example, freePort, runCli } from '../helpers.ts';
import {
  keyPair,
  type LocalRegistry,
  missing,
  pushSigned,
  startRegistry,
} from '../registry/registry-server.ts';
import {
  httpConfig,
  httpGet,
  httpStatus,
  Replica,
  type ReplicaSpec,
  sharedSimRoot,
  sleep,
} from './support.ts';

const absent = missing('docker-registry');
const httpDigest = createHash('sha256')
  .update(readFileSync(example('http')))
  .digest('hex');

/** The last JSON line of a failed keep-pod's stderr: its error event. */
function errorEvent(stderr: string): Record<string, unknown> {
  const last = stderr.trim().split('\n').at(-1)!;
  const event = JSON.parse(last) as Record<string, unknown>;
  assert.equal(event['event'], 'error', stderr);
  return event;
}

/** Whether a fresh TCP connection to 127.0.0.1:port is refused (nothing accepts there). */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

describe('donjon keep-pod: the command line it refuses', () => {
  const dir = mkdtempSync(join(tmpdir(), 'donjon-pod-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const config = httpConfig(dir, 8443);

  test('a reference without a digest is a usage error naming REF@sha256', async () => {
    const r = await runCli(['keep-pod', '127.0.0.1:5000/http:1.0', '--config', config, '--backend', 'sim']);
    assert.equal(r.code, 2, r.stderr);
    const e = errorEvent(r.stderr);
    assert.equal(e['code'], 'ERR_POD_REFERENCE_UNPINNED');
    assert.match(String(e['message']), /not pinned to a digest.*REF@sha256/);
  });

  test('sim without --sim-root is a usage error, before anything is pulled', async () => {
    const ref = `127.0.0.1:5000/http@sha256:${'a'.repeat(64)}`;
    const r = await runCli(['keep-pod', ref, '--config', config, '--backend', 'sim', '--allow-unsigned']);
    assert.equal(r.code, 2, r.stderr);
    const e = errorEvent(r.stderr);
    assert.equal(e['code'], 'ERR_USAGE');
    assert.match(String(e['message']), /--sim-root/);
  });

  test('an Enarx.toml that cannot be read is a usage error naming it', async () => {
    const ref = `127.0.0.1:5000/http@sha256:${'a'.repeat(64)}`;
    const missingConfig = join(dir, 'nope.toml');
    const r = await runCli([
      'keep-pod',
      ref,
      '--config',
      missingConfig,
      '--backend',
      'cvm',
      '--allow-unsigned',
    ]);
    assert.equal(r.code, 2, r.stderr);
    const e = errorEvent(r.stderr);
    assert.equal(e['code'], 'ERR_POD_INPUT_INVALID');
    assert.match(String(e['message']), /nope\.toml: ENOENT/);
  });
});

describe('donjon keep-pod as a plain process (docker-registry on loopback)', { skip: absent }, () => {
  let registry: LocalRegistry;
  let dir: string;
  let reference = '';
  let keys: { key: string; pub: string };
  let stranger: { key: string; pub: string };
  let simRoot: { path: string; fingerprint: string };
  let policy: Policy;
  const replicas: Replica[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'donjon-pod-'));
    [registry, keys, stranger, simRoot] = await Promise.all([
      startRegistry(),
      keyPair(dir, 'cosign'),
      keyPair(dir, 'stranger'),
      sharedSimRoot(dir),
    ]);
    policy = { measurements: [measureRuntime()], trustSimulatedRoots: [simRoot.fingerprint] };
    const config = httpConfig(dir, 8443, 'pushed.toml');
    reference = await pushSigned(dir, example('http'), `${registry.host}/http:1.0`, config, keys.key);
  });

  after(async () => {
    await Promise.all(replicas.map((r) => r.cleanUp()));
    await registry?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function replica(name: string, overrides: Partial<ReplicaSpec> = {}): Promise<Replica> {
    const port = await freePort();
    const state = join(dir, name);
    mkdirSync(state);
    const r = new Replica({
      name,
      ip: '127.0.0.1',
      reference,
      config: httpConfig(state, port),
      keys: [keys.pub],
      simRoot: simRoot.path,
      healthPort: await freePort(),
      stateDir: join(state, 'run'),
      ...overrides,
    });
    replicas.push(r);
    return r;
  }

  test('serves the example over attested TLS once /readyz is 200, and drains on SIGTERM', async () => {
    const pod = await replica('web-0', { gracePeriodSeconds: 10 });
    await pod.ready();
    assert.equal(await pod.probe('/healthz'), 200);
    const servicePort = Number(/port = (\d+)/.exec(readFileSync(pod.spec.config, 'utf8'))![1]);
    const files = parseEnarxToml(readFileSync(pod.spec.config, 'utf8')).files;
    const expectedConfig = Buffer.from(configDigest({ args: [], env: {}, files })).toString('hex');

    const first = await connectService({
      host: '127.0.0.1',
      port: servicePort,
      policy,
      workloadDigests: [httpDigest],
      configDigests: [expectedConfig],
    });
    assert.match(await httpGet(first.socket), /^HTTP\/1\.1 200 OK[\s\S]*Hello from examples\/http/);

    const events = pod.events();
    const startup = events.find((e) => e['event'] === 'startup');
    assert.equal(startup?.['pod'], 'web-0');
    assert.equal(startup?.['namespace'], 'donjon-test');
    assert.equal(startup?.['node'], 'node-a');
    assert.ok(events.some((e) => e['event'] === 'pulled' && e['digest'] === reference.split('@')[1]));
    assert.ok(events.some((e) => e['event'] === 'ready'));

    // A connection open before SIGTERM may finish; /readyz goes 503 at once and new connections are refused.
    const open = await connectService({ host: '127.0.0.1', port: servicePort, policy });
    const sent = Date.now();
    pod.child.kill('SIGTERM');
    for (let status = await pod.probe('/readyz'); status !== 503; status = await pod.probe('/readyz')) {
      assert.equal(status, 200, 'the probes answer through the drain');
      await sleep(10);
    }
    assert.equal(await pod.probe('/healthz'), 200, 'alive while it drains');
    while (!(await refused(servicePort))) await sleep(25);
    assert.match(await httpGet(open.socket), /Hello from examples\/http/);
    const { code } = await pod.exited;
    assert.equal(code, 0, pod.lines.join('\n'));
    // The contract: the exit comes within the grace period (10 s), the Keep's stop included.
    assert.ok(Date.now() - sent < 10_000, `exited ${Date.now() - sent} ms after SIGTERM`);
    const last = pod.events().filter((e) => ['draining', 'stopped'].includes(String(e['event'])));
    assert.deepEqual(
      last.map((e) => [e['event'], e['drained'] ?? null]),
      [
        ['draining', null],
        ['stopped', true],
      ],
    );
    // Its state folder held the Keep Loader's socket alone, and is empty once it ended.
    assert.deepEqual(readdirSync(pod.spec.stateDir), []);
  });

  test('a connection still open when the grace period ends is cut: the Keep stops and keep-pod exits 0 in time', async () => {
    const pod = await replica('web-3', { gracePeriodSeconds: 4 });
    await pod.ready();
    const servicePort = Number(/port = (\d+)/.exec(readFileSync(pod.spec.config, 'utf8'))![1]);
    const open = await connectService({ host: '127.0.0.1', port: servicePort, policy });
    const cut = new Promise((resolve) => open.socket.once('close', resolve));
    open.socket.on('error', () => {});
    const sent = Date.now();
    pod.child.kill('SIGTERM');
    const { code } = await pod.exited;
    assert.equal(code, 0, pod.lines.join('\n'));
    const took = Date.now() - sent;
    assert.ok(took < 4_000, `exited ${took} ms after SIGTERM, not within the grace period`);
    await cut;
    const stopped = pod.events().find((e) => e['event'] === 'stopped');
    assert.equal(stopped?.['drained'], false, 'the drain did not complete');
    await pod.allGone();
  });

  test('a Keep that dies under it ends keep-pod non-zero (Kubernetes restarts the container)', async () => {
    const pod = await replica('web-1');
    await pod.ready();
    const ready = pod.events().find((e) => e['event'] === 'ready')!;
    const keepPid = ready['keepPid'];
    assert.equal(typeof keepPid, 'number');
    process.kill(keepPid as number, 'SIGKILL');
    const { code } = await pod.exited;
    assert.equal(code, 4, pod.lines.join('\n'));
    const e = pod.events().at(-1)!;
    assert.equal(e['code'], 'ERR_POD_KEEP_FAILED');
    assert.match(String(e['message']), /the Keep failed: the Keep was killed by SIGKILL/);
  });

  test('SIGTERM before the workload is ready ends it with 0 and leaves nothing running', async () => {
    const pod = await replica('web-2');
    while (!pod.events().some((e) => e['event'] === 'probes')) await sleep(10);
    pod.child.kill('SIGTERM');
    const { code } = await pod.exited;
    assert.equal(code, 0, pod.lines.join('\n'));
    assert.ok(!pod.events().some((e) => e['event'] === 'ready'), 'it never said ready');
    assert.equal(pod.events().at(-1)?.['event'], 'stopped');
    await pod.allGone();
  });

  test('a signature by another key is refused (exit 3) and /readyz is never 200', async () => {
    const pod = await replica('web-stranger', { keys: [stranger.pub] });
    const seen = new Set<number | undefined>();
    while (pod.child.exitCode === null) {
      seen.add(await pod.probe('/readyz'));
      await sleep(20);
    }
    const { code } = await pod.exited;
    assert.equal(code, 3, pod.lines.join('\n'));
    assert.ok(!seen.has(200), 'never ready');
    const e = pod.events().at(-1)!;
    assert.equal(e['event'], 'error');
    assert.equal(e['code'], 'ERR_WORKLOAD_SIGNATURE_INVALID');
    assert.equal(e['category'], 'refused');
    assert.equal(await httpStatus('127.0.0.1', pod.spec.healthPort, '/readyz'), undefined);
  });
});
