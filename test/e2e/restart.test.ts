// The third line of the registry contract, with real processes: a service deployed from a reference with
// `--restart always` serves again after `kill -9` of its Keep, and after `kill -9` of the Keep Manager and a
// restart on the same state, with no client command in between. docker-registry runs on loopback.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { KeepManagerClient } from '../../src/client/index.ts';
import { example, repoRoot, runCli } from '../helpers.ts';
import { type LocalRegistry, missing, pushSigned, startRegistry } from '../registry/registry-server.ts';
import { startTestHost, type TestHost } from '../test-host.ts';

const absent = missing('docker-registry');

async function waitFor<T>(check: () => Promise<T | undefined>, what: string, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function echo(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString('utf8');
    });
    s.on('error', reject);
    s.on('close', () => resolve(got));
    s.end(text);
  });
}

describe('deploy REF --restart always (docker-registry, donjon host)', { skip: absent }, () => {
  let registry: LocalRegistry;
  let dir: string;
  let host: TestHost | undefined;
  let env: Record<string, string>;

  const client = (): KeepManagerClient => host!.client();

  /** The host port of the deployment's current Keep once it runs, and that Keep. */
  async function serving(
    id: string,
    notKeep?: string,
  ): Promise<{ keepId: string; port: number; keepPid: number }> {
    return waitFor(async () => {
      const d = await client().getDeployment(id);
      if (d.keepId === undefined || d.keepId === notKeep) return undefined;
      const k = await client().getKeep(d.keepId);
      const p = k.ports?.[0]?.port;
      if (k.state !== 'running' || p === undefined || k.keepPid === undefined) return undefined;
      return { keepId: k.id, port: p, keepPid: k.keepPid };
    }, `deployment ${id} to run a Keep`);
  }

  before(async () => {
    registry = await startRegistry();
    dir = mkdtempSync(join(tmpdir(), 'donjon-restart-'));
    env = { DOCKER_CONFIG: join(dir, 'docker'), COSIGN_PASSWORD: 'pw', DONJON_HOME: dir };
    const k = await runCli(['keygen', '--output-key-prefix', join(dir, 'cosign')], { env });
    assert.equal(k.code, 0, k.stderr);
    host = await startTestHost();
  });

  after(async () => {
    await host?.stop();
    await registry?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('serves again after kill -9 of its Keep and of the Keep Manager, with no client command between', async () => {
    const ref = `${registry.host}/echo:1.0`;
    const config = join(repoRoot, 'examples', 'echo', 'Enarx.toml');
    const pinned = await pushSigned(dir, example('echo'), ref, config, join(dir, 'cosign.key'));
    const digest = pinned.slice(pinned.indexOf('@') + 1);
    const d = await runCli(
      [
        'deploy',
        ...host!.cliArgs(),
        '--trust-sim-root',
        host!.simRootFingerprint,
        '--verify-key',
        join(dir, 'cosign.pub'),
        '--restart',
        'always',
        '--json',
        ref,
      ],
      { env },
    );
    assert.equal(d.code, 0, d.stderr);
    const out = JSON.parse(d.stdout) as { deployment: string; id: string; reference: string };
    assert.equal(out.reference, `${registry.host}/echo@${digest}`);

    const first = await serving(out.deployment);
    assert.equal(first.keepId, out.id);
    assert.equal(await echo(first.port, 'one'), 'one');
    const shown = await client().getKeep(first.keepId);
    assert.deepEqual(shown.deployment, {
      id: out.deployment,
      reference: out.reference,
      restart: 'always',
      restarts: 0,
    });

    // kill -9 of the Keep: the Keep Manager recreates it from the registry, by digest.
    process.kill(first.keepPid, 'SIGKILL');
    const second = await serving(out.deployment, first.keepId);
    assert.equal(await echo(second.port, 'two'), 'two');
    const afterKill = await client().getDeployment(out.deployment);
    assert.equal(afterKill.restarts, 1);
    assert.equal(afterKill.state, 'active');
    assert.ok(afterKill.lastFailure, 'the failure of the killed Keep is recorded');
    assert.equal((await client().getKeep(second.keepId)).deployment?.restarts, 1);

    // kill -9 of the Keep Manager, and of the Keep while it is away: the restarted one recreates it.
    await host!.restart(async () => {
      await new Promise((r) => setTimeout(r, 200));
      process.kill(second.keepPid, 'SIGKILL');
    });
    const third = await serving(out.deployment, second.keepId);
    assert.equal(await echo(third.port, 'three'), 'three');
    assert.equal((await client().getDeployment(out.deployment)).restarts, 2);
  });

  test('a recreated service names its registry manifest in its evidence (attest inspect), beside the module', async () => {
    const ref = `${registry.host}/http:1.0`;
    const config = join(repoRoot, 'examples', 'http', 'Enarx.toml');
    const pinned = await pushSigned(dir, example('http'), ref, config, join(dir, 'cosign.key'));
    const digest = pinned.slice(pinned.indexOf('@') + 1);
    const d = await runCli(
      [
        'deploy',
        ...host!.cliArgs(),
        '--verify-key',
        join(dir, 'cosign.pub'),
        '--restart',
        'on-failure',
        '--max-restarts',
        '1',
        '--json',
        ref,
      ],
      { env },
    );
    assert.equal(d.code, 0, d.stderr);
    const out = JSON.parse(d.stdout) as { deployment: string; id: string };
    const first = await serving(out.deployment);
    const inspect = await runCli(
      ['attest', 'inspect', `127.0.0.1:${first.port}`, '--trust-sim-root', host!.simRootFingerprint],
      {
        env,
      },
    );
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.match(inspect.stdout, new RegExp(`registry manifest\\s+${digest}`));
    assert.match(inspect.stdout, /verified\s+yes/);
    // After its one restart, a second failure gives the deployment up.
    process.kill(first.keepPid, 'SIGKILL');
    const second = await serving(out.deployment, first.keepId);
    process.kill(second.keepPid, 'SIGKILL');
    await waitFor(async () => {
      const now = await client().getDeployment(out.deployment);
      return now.state === 'given-up' ? now : undefined;
    }, 'the deployment to give up');
    const removed = await client().removeDeployment(out.deployment);
    assert.equal(removed.restarts, 1);
    await assert.rejects(
      client().getDeployment(out.deployment),
      /ERR_DEPLOYMENT_NOT_FOUND|no such deployment/,
    );
  });
});
