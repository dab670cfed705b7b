// Signer pinning with real processes: the http example pushed and signed to docker-registry on loopback, then
// deployed by `donjon host` from the reference (the Keep checks the signature itself and binds its signer).
// connectService pinned to the signing key accepts the service and refuses it under another key; a second
// version signed with the same key verifies under the same pin while a pin on the first version's digest
// refuses it: the rollout recipe of docs/services.md.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Policy } from '../../src/attestation/index.ts';
import { connectService, measureRuntime, signerDigest } from '../../src/client/index.ts';
import { example, repoRoot, runCli } from '../helpers.ts';
import { type LocalRegistry, missing, startRegistry } from '../registry/registry-server.ts';
import { startTestHost, type TestHost } from '../test-host.ts';

const absent = missing('docker-registry');

/** A plain HTTP GET to a local port, as curl does through the proxy: the whole answer, '' when closed. */
function get(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString('utf8');
    });
    s.on('error', () => resolve(got));
    s.on('close', () => resolve(got));
    s.end('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  });
}

describe('signer pinning (docker-registry, donjon host)', { skip: absent }, () => {
  let registry: LocalRegistry;
  let dir: string;
  let host: TestHost | undefined;
  let policy: Policy;
  let env: Record<string, string>;
  const ports: number[] = [];
  const configDigests: string[] = [];

  const key = (name: string): string => join(dir, `${name}.pub`);

  /** Pushes the http example with `config`, signed by alice, and deploys it; resolves with its host port. */
  async function release(tag: string, config: string): Promise<number> {
    const ref = `${registry.host}/http:${tag}`;
    const p = await runCli(
      ['push', example('http'), ref, '--config', config, '--sign-key', join(dir, 'alice.key')],
      { env },
    );
    assert.equal(p.code, 0, p.stderr);
    const d = await runCli(
      [
        ...['deploy', ...host!.cliArgs(), '--verify-key', key('alice')],
        ...['--restart', 'on-failure', '--json', ref],
      ],
      { env },
    );
    assert.equal(d.code, 0, d.stderr);
    const { id } = JSON.parse(d.stdout) as { id: string };
    const deadline = Date.now() + 30_000;
    for (;;) {
      const k = await host!
        .client()
        .getKeep(id)
        .catch(() => undefined);
      const hostPort = k?.ports?.[0]?.port;
      if (k?.state === 'running' && hostPort !== undefined) return hostPort;
      if (Date.now() > deadline) assert.fail(`Keep ${id} did not serve in time`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  before(async () => {
    registry = await startRegistry();
    dir = mkdtempSync(join(tmpdir(), 'donjon-signer-'));
    env = { DOCKER_CONFIG: join(dir, 'docker'), COSIGN_PASSWORD: 'pw', DONJON_HOME: dir };
    for (const name of ['alice', 'bob']) {
      const k = await runCli(['keygen', '--output-key-prefix', join(dir, name)], { env });
      assert.equal(k.code, 0, k.stderr);
    }
    host = await startTestHost();
    policy = { measurements: [measureRuntime()], trustSimulatedRoots: [host.simRootFingerprint] };
    // v1 as the example ships; v2 the same module under another configuration (another listen port), so
    // another manifest and another config digest, signed by the same key.
    const v2 = join(dir, 'Enarx.toml');
    const toml = readFileSync(join(repoRoot, 'examples', 'http', 'Enarx.toml'), 'utf8');
    writeFileSync(v2, toml.replace('port = 8443', 'port = 8444'));
    ports.push(await release('1.0', join(repoRoot, 'examples', 'http', 'Enarx.toml')));
    ports.push(await release('2.0', v2));
    for (const p of ports) {
      const { socket, identity } = await connectService({ host: '127.0.0.1', port: p, policy });
      socket.destroy();
      configDigests.push(identity.configDigest!);
    }
  });

  after(async () => {
    await host?.stop();
    await registry?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('connectService() accepts the service under its signing key and refuses it under another', async () => {
    const alice = signerDigest(readFileSync(key('alice'), 'utf8'));
    const { socket, identity } = await connectService({
      host: '127.0.0.1',
      port: ports[0]!,
      policy,
      signerKeys: [alice],
    });
    socket.destroy();
    assert.deepEqual(identity.signers, [alice]);
    assert.match(identity.artifactDigest ?? '', /^sha256:[0-9a-f]{64}$/);
    await assert.rejects(
      connectService({
        host: '127.0.0.1',
        port: ports[0]!,
        policy,
        signerKeys: [signerDigest(readFileSync(key('bob'), 'utf8'))],
      }),
      (e: unknown) => (e as { code?: string }).code === 'ERR_SERVICE_SIGNER_MISMATCH',
    );
  });

  test('a rollout: v1 and v2 both verify under the signer pin, a pin on v1 digests refuses v2', async () => {
    const alice = signerDigest(readFileSync(key('alice'), 'utf8'));
    assert.notEqual(configDigests[0], configDigests[1]);
    for (const p of ports) {
      const { socket } = await connectService({ host: '127.0.0.1', port: p, policy, signerKeys: [alice] });
      socket.destroy();
    }
    const pinnedToV1 = { policy, configDigests: [configDigests[0]!] };
    const v1 = await connectService({ host: '127.0.0.1', port: ports[0]!, ...pinnedToV1 });
    v1.socket.destroy();
    await assert.rejects(
      connectService({ host: '127.0.0.1', port: ports[1]!, ...pinnedToV1 }),
      (e: unknown) => (e as { code?: string }).code === 'ERR_SERVICE_CONFIG_MISMATCH',
    );
  });

  test('attest inspect --signer-key shows the signer and verifies; another key is refused (exit 3)', async () => {
    const target = `127.0.0.1:${ports[0]!}`;
    const sim = policy.trustSimulatedRoots![0]!;
    const ok = await runCli(
      ['attest', 'inspect', target, '--trust-sim-root', sim, '--signer-key', key('alice')],
      { env },
    );
    assert.equal(ok.code, 0, ok.stderr);
    const alice = signerDigest(readFileSync(key('alice'), 'utf8'));
    assert.match(ok.stdout, new RegExp(`signed by key sha256\\s+${alice}`));
    assert.match(ok.stdout, /verified\s+yes/);
    const refused = await runCli(
      ['attest', 'inspect', target, '--trust-sim-root', sim, '--signer-key', key('bob'), '--json'],
      { env },
    );
    assert.equal(refused.code, 3, refused.stderr);
    const report = JSON.parse(refused.stdout) as { signers: string[]; error: { code: string } };
    assert.deepEqual(report.signers, [alice]);
    assert.equal(report.error.code, 'ERR_SERVICE_SIGNER_MISMATCH');
  });

  test('proxy --signer-key forwards to the service its key signed, and refuses it under another key', async () => {
    const alice = signerDigest(readFileSync(key('alice'), 'utf8'));
    for (const [name, accepted] of [
      ['alice', true],
      ['bob', false],
    ] as const) {
      let child: ChildProcess | undefined;
      let log = '';
      let listening: (port: number) => void = () => {};
      const local = new Promise<number>((resolve) => {
        listening = resolve;
      });
      const args = ['proxy', '--to', `127.0.0.1:${ports[0]!}`, '--listen', '127.0.0.1:0'];
      const done = runCli(
        [...args, '--trust-sim-root', policy.trustSimulatedRoots![0]!, '--signer-key', key(name)],
        {
          env,
          onSpawn: (c) => {
            child = c;
            c.stderr!.on('data', (d: Buffer) => {
              log += d.toString('utf8');
              const m = /listening on 127\.0\.0\.1:(\d+)/.exec(log);
              if (m) listening(Number(m[1]));
            });
          },
        },
      );
      const port = await Promise.race([
        local,
        done.then((r) => assert.fail(`donjon proxy exited: ${r.stderr}`)),
      ]);
      const page = await get(port);
      child!.kill('SIGINT');
      const r = await done;
      assert.equal(r.code, 0, r.stderr);
      if (accepted) {
        assert.match(page, /^HTTP\/1\.1 200 OK/);
        assert.match(r.stderr, new RegExp(`verified 127\\.0\\.0\\.1:\\d+: .*signed by ${alice}`));
      } else {
        assert.equal(page, '', 'nothing came back from a refused service');
        assert.match(r.stderr, /refused a connection .*\(ERR_SERVICE_SIGNER_MISMATCH\)/);
      }
    }
  });

  test('proxy --signer-key refuses a private key given by mistake (exit 2), before listening', async () => {
    const r = await runCli(
      [
        'proxy',
        '--to',
        `127.0.0.1:${ports[0]!}`,
        '--listen',
        '127.0.0.1:0',
        '--signer-key',
        join(dir, 'alice.key'),
      ],
      { env },
    );
    assert.equal(r.code, 2);
    assert.match(r.stderr, /Cannot read --signer-key .*alice\.key: it is a private key/);
  });
});
