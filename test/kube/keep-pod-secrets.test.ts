// keep-pod and the key broker: a replica whose Enarx.toml names [[secrets]] is ready only once the broker
// released them to its Keep (the Keep fetches them before the workload starts), and no secret byte reaches
// its log or its state folder; a broker whose policy does not name the workload leaves it never ready, and it
// exits non-zero.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadOrCreateBrokerIdentity } from '../../src/broker/identity.ts';
import { BrokerServer } from '../../src/broker/server.ts';
import { BrokerStore } from '../../src/broker/store.ts';
import { connectService, measureRuntime } from '../../src/client/index.ts';
import { example, freePort } from '../helpers.ts';
import {
  keyPair,
  type LocalRegistry,
  missing,
  pushSigned,
  startRegistry,
} from '../registry/registry-server.ts';
import { httpConfig, httpGet, Replica, sharedSimRoot, sleep } from './support.ts';

const absent = missing('docker-registry');
// Distinctive, so that any copy of it (or of its base64) anywhere is found.
const SECRET = `pod-db-password-${process.pid}-Vw3nQ8`;
const httpDigest = createHash('sha256')
  .update(readFileSync(example('http')))
  .digest('hex');

describe('keep-pod with [[secrets]] (docker-registry and a key broker on loopback)', { skip: absent }, () => {
  let registry: LocalRegistry;
  let dir: string;
  let keys: { key: string; pub: string };
  let simRoot: { path: string; fingerprint: string };
  let reference = '';
  let store: BrokerStore;
  let broker: BrokerServer;
  let brokerUrl = '';
  let brokerFingerprint = '';
  const brokerLog: string[] = [];
  const replicas: Replica[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'donjon-pod-secrets-'));
    [registry, keys, simRoot] = await Promise.all([
      startRegistry(),
      keyPair(dir, 'cosign'),
      sharedSimRoot(dir),
    ]);
    mkdirSync(join(dir, 'broker'));
    const identity = loadOrCreateBrokerIdentity(join(dir, 'broker'));
    brokerFingerprint = identity.fingerprint;
    store = new BrokerStore(join(dir, 'broker'));
    store.putSecret('db', new TextEncoder().encode(SECRET), Date.now());
    broker = new BrokerServer({
      store,
      identity,
      defaultMeasurements: [measureRuntime()],
      log: (e) => brokerLog.push(JSON.stringify(e)),
    });
    brokerUrl = await broker.listen('127.0.0.1', 0);
    reference = await pushSigned(
      dir,
      example('http'),
      `${registry.host}/http:1.0`,
      httpConfig(dir, 8443, 'pushed.toml'),
      keys.key,
    );
  });

  after(async () => {
    await Promise.all(replicas.map((r) => r.cleanUp()));
    await broker?.close(100);
    store?.close();
    await registry?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function allow(workload: string): void {
    store.setPolicySource(
      `[[allow]]\nsecrets = ["db"]\nworkloads = ["${workload}"]\nsim-roots = ["${simRoot.fingerprint}"]\n`,
      Date.now(),
    );
  }

  async function replica(name: string): Promise<{ pod: Replica; port: number }> {
    const port = await freePort();
    const state = join(dir, name);
    mkdirSync(state);
    const config = httpConfig(state, port);
    appendFileSync(
      config,
      `\n[[secrets]]\nname = "db"\nbroker = "${brokerUrl}"\nfingerprint = "${brokerFingerprint}"\npath = "/secrets/db"\n`,
    );
    const pod = new Replica({
      name,
      ip: '127.0.0.1',
      reference,
      config,
      keys: [keys.pub],
      simRoot: simRoot.path,
      healthPort: await freePort(),
      stateDir: join(state, 'run'),
    });
    replicas.push(pod);
    return { pod, port };
  }

  test('ready once the broker released the secret; nothing of it in the log or the state folder', async () => {
    allow(httpDigest);
    const { pod, port } = await replica('web-0');
    await pod.ready();
    assert.ok(
      brokerLog.some((l) => l.includes('released')),
      brokerLog.join('\n'),
    );
    const { socket } = await connectService({
      host: '127.0.0.1',
      port,
      policy: { measurements: [measureRuntime()], trustSimulatedRoots: [simRoot.fingerprint] },
      workloadDigests: [httpDigest],
    });
    assert.match(await httpGet(socket), /Hello from examples\/http/);
    const needles = [
      SECRET,
      Buffer.from(SECRET).toString('base64'),
      Buffer.from(SECRET).toString('base64url'),
    ];
    const files = readdirSync(pod.spec.stateDir);
    assert.deepEqual(files, ['keepldr.sock'], 'the state folder holds the socket alone');
    pod.child.kill('SIGTERM');
    assert.equal((await pod.exited).code, 0, pod.lines.join('\n'));
    const log = pod.lines.join('\n');
    for (const n of needles) assert.ok(!log.includes(n), 'keep-pod log');
  });

  test('a broker whose policy does not name the workload: never ready, and a non-zero exit', async () => {
    allow('ab'.repeat(32));
    const { pod } = await replica('web-1');
    const seen = new Set<number | undefined>();
    while (pod.child.exitCode === null) {
      seen.add(await pod.probe('/readyz'));
      await sleep(20);
    }
    assert.equal((await pod.exited).code, 4, pod.lines.join('\n'));
    assert.ok(!seen.has(200), 'never ready');
    const e = pod.events().at(-1)!;
    assert.equal(e['code'], 'ERR_POD_KEEP_FAILED');
    assert.match(String(e['message']), /the Keep refused it \(ERR_SECRET_DENIED\)/);
    assert.equal(e['hostCode'], 'ERR_SECRET_DENIED', 'the Keep’s own code, as run reports it');
  });
});
