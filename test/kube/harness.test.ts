// A kubelet-like harness: the generated Deployment's container command (`donjon keep-pod`) run three times
// as processes with what Kubernetes would give them (downward-API variables, the Enarx.toml and verifying key
// as ConfigMap files, the shared simulated root as a Secret file, an emptyDir state folder each), behind a
// round-robin TCP proxy standing for the Service. Clients verify every connection as they already do
// (`connectService`), whichever replica answers.
//
// The command is the generated Deployment's own when this build has `donjon kube manifest`, else the one the
// keep-pod contract states for the Deployment (the same paths and flags); its Pod paths are mapped to each
// replica's files as kubelet mounts the ConfigMaps, the Secret and the emptyDir.
//
// Pods have a network namespace each, so every replica binds the same port. Here they share one machine:
// each replica gets a loopback address of its own as its Pod IP (127.0.0.0/8 is all loopback on Linux) and
// binds its listen file and its probes there, on the same ports. So all replicas run the very same
// Enarx.toml and their certificates carry the same configuration digest, as a Deployment's do.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Policy } from '../../src/attestation/index.ts';
import {
  connectService,
  measureRuntime,
  parseEnarxToml,
  type ServiceConnection,
  signerDigest,
} from '../../src/client/index.ts';
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
  podCommand,
  Replica,
  type ReplicaSpec,
  RoundRobinProxy,
  rebuiltHttp,
  sharedSimRoot,
} from './support.ts';

const absent = missing('docker-registry');

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const v1Digest = sha256(readFileSync(example('http')));

describe('three keep-pod replicas behind a Service (docker-registry on loopback)', { skip: absent }, () => {
  let registry: LocalRegistry;
  let dir: string;
  let keys: { key: string; pub: string };
  let simRoot: { path: string; fingerprint: string };
  let config = '';
  let configHex = '';
  let servicePort = 0;
  let healthPort = 0;
  let v1 = '';
  let policy: Policy;
  const proxy = new RoundRobinProxy();
  let proxyPort = 0;
  /** Every replica started, for `after`. */
  const started: Replica[] = [];
  /** The replicas by Pod name, as they run now. */
  const pods = new Map<string, Replica>();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'donjon-kube-'));
    [registry, keys, simRoot, servicePort, healthPort, proxyPort] = await Promise.all([
      startRegistry(),
      keyPair(dir, 'cosign'),
      sharedSimRoot(dir),
      freePort(),
      freePort(),
      proxy.listen(),
    ]);
    policy = { measurements: [measureRuntime()], trustSimulatedRoots: [simRoot.fingerprint] };
    mkdirSync(join(dir, 'config'));
    config = httpConfig(join(dir, 'config'), servicePort);
    const files = parseEnarxToml(readFileSync(config, 'utf8')).files;
    configHex = Buffer.from(configDigest({ args: [], env: {}, files })).toString('hex');
    v1 = await pushSigned(dir, example('http'), `${registry.host}/http:1.0`, config, keys.key);
  });

  after(async () => {
    await Promise.all(started.map((r) => r.cleanUp()));
    await proxy.close();
    await registry?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  let manifests: boolean | undefined;

  /** The Deployment's container command for `reference`: generated when this build can, else the contract's. */
  async function containerCommand(reference: string): Promise<string[]> {
    manifests ??= /^\s+kube\s/m.test((await runCli(['--help'])).stdout);
    if (!manifests) return podCommand(reference, 1);
    const image = `registry.invalid/donjon@sha256:${'0'.repeat(64)}`;
    const m = await runCli([
      'kube',
      'manifest',
      reference,
      '--config',
      config,
      '--verify-key',
      keys.pub,
      '--replicas',
      '3',
      '--backend',
      'sim',
      '--image',
      image,
      '--json',
    ]);
    assert.equal(m.code, 0, m.stderr);
    interface Container {
      command?: string[];
      args?: string[];
    }
    const objects = JSON.parse(m.stdout) as {
      kind: string;
      spec?: { template?: { spec?: { containers?: Container[] } } };
    }[];
    const deployment = objects.find((o) => o.kind === 'Deployment');
    const container = deployment?.spec?.template?.spec?.containers?.[0];
    assert.ok(container, 'the manifest has a Deployment with a container');
    return [...(container.command ?? []), ...(container.args ?? [])];
  }

  /** Starts (or restarts, as kubelet does, with the same Pod and emptyDir) the replica `name` at `ip`. */
  async function run(name: string, ip: string, reference: string): Promise<Replica> {
    const stateDir = join(dir, 'pods', name);
    mkdirSync(stateDir, { recursive: true });
    const spec: ReplicaSpec = {
      name,
      ip,
      reference,
      config,
      keys: [keys.pub],
      simRoot: simRoot.path,
      healthPort,
      stateDir,
      command: await containerCommand(reference),
    };
    const r = new Replica(spec);
    started.push(r);
    pods.set(name, r);
    return r;
  }

  /** Waits for /readyz, then puts the replica among the Service's endpoints. */
  async function ready(r: Replica): Promise<void> {
    await r.ready();
    proxy.add(r.spec.ip, servicePort);
  }

  /** `n` verified connections through the Service, under `digests` (default: the first module's only). */
  async function through(n: number, digests = [v1Digest]): Promise<ServiceConnection[]> {
    const out: ServiceConnection[] = [];
    for (let i = 0; i < n; i++) {
      out.push(
        await connectService({
          host: '127.0.0.1',
          port: proxyPort,
          policy,
          workloadDigests: digests,
          configDigests: [configHex],
        }),
      );
    }
    return out;
  }

  const keyOf = (c: ServiceConnection): string => Buffer.from(c.identity.spki).toString('hex');

  let before3: Set<string>;

  test('three replicas: connections through the Service verify three distinct Keeps of one workload and config', async () => {
    const replicas = await Promise.all(
      ['web-0', 'web-1', 'web-2'].map((name, i) => run(name, `127.0.0.${11 + i}`, v1)),
    );
    await Promise.all(replicas.map(ready));
    const connections = await through(6);
    for (const c of connections) {
      assert.equal(c.identity.workloadDigest, v1Digest);
      assert.equal(c.identity.configDigest, configHex);
    }
    before3 = new Set(connections.map(keyOf));
    assert.equal(before3.size, 3, 'three Keeps, each with its own key');
    const page = await httpGet(connections[0]!.socket);
    assert.match(page, /^HTTP\/1\.1 200 OK[\s\S]*Hello from examples\/http/);
    for (const c of connections.slice(1)) c.socket.destroy();
  });

  test('kill -9 of a replica: restarted as kubelet would, ready again, verified again under a new key', async () => {
    const victim = pods.get('web-1')!;
    const own = await connectService({ host: victim.spec.ip, port: servicePort, policy });
    const oldKey = keyOf(own);
    own.socket.destroy();
    // Its readiness probe fails: the endpoints controller takes it out of the Service.
    proxy.remove(victim.spec.ip, servicePort);
    await victim.killHard();
    assert.equal(await victim.probe('/readyz'), undefined);
    const again = await run('web-1', victim.spec.ip, v1);
    await ready(again);
    const direct = await connectService({
      host: again.spec.ip,
      port: servicePort,
      policy,
      workloadDigests: [v1Digest],
      configDigests: [configHex],
    });
    const newKey = keyOf(direct);
    assert.match(await httpGet(direct.socket), /Hello from examples\/http/);
    assert.notEqual(newKey, oldKey);
    assert.ok(!before3.has(newKey), 'a key no replica had before');
    const three = await through(3);
    for (const c of three) c.socket.destroy();
    const now = new Set(three.map(keyOf));
    assert.deepEqual(now, new Set([...before3].filter((k) => k !== oldKey).concat(newKey)));
  });

  test('a rollout to a new module: clients pinned to the old digest refuse the new replicas; clients allowing both digests, or pinning the signer, accept both', async () => {
    const v2Wasm = rebuiltHttp(dir, 'v2');
    const v2Digest = sha256(readFileSync(v2Wasm));
    assert.notEqual(v2Digest, v1Digest);
    const v2 = await pushSigned(dir, v2Wasm, `${registry.host}/http:2.0`, config, keys.key);
    // A rolling update's first step: one new Pod (maxSurge 1), ready, then one old Pod ended with SIGTERM.
    const fresh = await run('web-v2-0', '127.0.0.14', v2);
    await ready(fresh);
    const old = pods.get('web-0')!;
    proxy.remove(old.spec.ip, servicePort);
    old.child.kill('SIGTERM');
    assert.equal((await old.exited).code, 0, old.lines.join('\n'));

    // Endpoints now: web-1 and web-2 (old module), web-v2-0 (new). Round robin: each answers one of three.
    const pinned: PromiseSettledResult<ServiceConnection>[] = [];
    for (let i = 0; i < 3; i++) pinned.push(...(await Promise.allSettled([through(1).then((c) => c[0]!)])));
    const refusals = pinned.filter((p) => p.status === 'rejected');
    assert.equal(refusals.length, 1, 'the new replica alone is refused');
    assert.equal((refusals[0] as PromiseRejectedResult).reason?.code, 'ERR_SERVICE_WORKLOAD_MISMATCH');
    for (const p of pinned) if (p.status === 'fulfilled') p.value.socket.destroy();

    const both = await through(3, [v1Digest, v2Digest]);
    assert.deepEqual(new Set(both.map((c) => c.identity.workloadDigest)), new Set([v1Digest, v2Digest]));
    assert.equal(new Set(both.map(keyOf)).size, 3);
    const onNew = both.find((c) => c.identity.workloadDigest === v2Digest)!;
    assert.match(await httpGet(onNew.socket), /Hello from examples\/http/);
    for (const c of both) c.socket.destroy();

    // The recipe: pin the signer, not one digest. Both versions carry the key that signed them.
    const signer = signerDigest(readFileSync(keys.pub, 'utf8'));
    const bySigner: ServiceConnection[] = [];
    for (let i = 0; i < 3; i++)
      bySigner.push(
        await connectService({
          host: '127.0.0.1',
          port: proxyPort,
          policy,
          signerKeys: [signer],
          configDigests: [configHex],
        }),
      );
    assert.deepEqual(new Set(bySigner.map((c) => c.identity.workloadDigest)), new Set([v1Digest, v2Digest]));
    for (const c of bySigner) assert.deepEqual(c.identity.signers, [signer]);
    for (const c of bySigner) c.socket.destroy();
    const other = signerDigest(readFileSync((await keyPair(dir, 'other')).pub, 'utf8'));
    await assert.rejects(
      connectService({ host: '127.0.0.1', port: proxyPort, policy, signerKeys: [other] }),
      { code: 'ERR_SERVICE_SIGNER_MISMATCH' },
    );
  });
});
