// The Keep's side of [[secrets]] in process: planSecrets' checks, and fetch against an in-process broker with a
// stand-in for the Keep Loader (its CONNECT is a TCP connection, its evidence the simulated backend's).
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { makeKeepKey } from '../../src/keep/certificates.ts';
import type { Control } from '../../src/keep/control.ts';
import { KeepError } from '../../src/keep/errors.ts';
import { planSecrets, type SecretsContext } from '../../src/keep/secrets.ts';
import type { KeepSockets } from '../../src/keep/sockets.ts';
import type { SecretSpec } from '../../src/protocol/messages.ts';
import { allowPolicy, CONFIG, makeKeep, startBroker, type TestBroker, WORKLOAD } from '../broker/support.ts';

let b: TestBroker;
before(async () => {
  b = await startBroker();
  b.store.putSecret('db', new TextEncoder().encode('s3cret'), Date.now());
  b.store.putSecret('api', new TextEncoder().encode('api-key'), Date.now());
});
after(() => b.close());

const spec = (o: Partial<SecretSpec>): SecretSpec =>
  ({ name: 'db', broker: `https://127.0.0.1:${b.port}`, fingerprint: b.fingerprint, ...o }) as SecretSpec;

/** The Keep's context: its key, a control pipe answering with simulated evidence, a relay to `port`. */
function context(o: { kind?: 'sev-snp' | 'none'; port?: number; connects?: string[] } = {}): SecretsContext {
  const key = makeKeepKey();
  const keep = makeKeep(b);
  keep.key = key.privateKey;
  const control = {
    evidenceKind: o.kind ?? 'sev-snp',
    evidence: async (reportData: Uint8Array) => ({
      v: 1,
      type: 'evidence',
      ...(await keep.evidence(reportData)),
    }),
  } as unknown as Control;
  const sockets = {
    connect: async (files: { host: string; port: number }[]) => {
      o.connects?.push(`${files[0]!.host}:${files[0]!.port}`);
      const socket = connect(o.port ?? files[0]!.port, files[0]!.host);
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', (e) =>
          reject(new KeepError('ERR_DEPLOY_CONNECT_FAILED', `Cannot connect: ${e.message}`)),
        );
      });
      return new Map([[0, socket]]);
    },
  } as unknown as KeepSockets;
  return { key, control, sockets, workload: WORKLOAD, config: CONFIG };
}

const code = (c: string) => (e: unknown) => (e as { code?: unknown }).code === c;

test("fetch puts each secret where the configuration says: a read-only folder's file or a variable", async () => {
  b.store.setPolicySource(
    allowPolicy(b, ['db', 'api'], `configs = ["${CONFIG.toString('hex')}"]`),
    Date.now(),
  );
  const connects: string[] = [];
  const plan = planSecrets(
    [spec({ path: '/secrets/db' }), spec({ name: 'api', env: 'API_KEY' })],
    { '/': {} },
    { OTHER: 'x' },
  );
  assert.deepEqual(plan.dirs, ['/secrets']);
  const opened = await plan.fetch(context({ connects }));
  assert.deepEqual(connects, [`127.0.0.1:${b.port}`], 'one connection and one attestation per broker');
  assert.equal(new TextDecoder().decode(opened.preopens['/secrets']!['db'] as Uint8Array), 's3cret');
  assert.deepEqual(opened.env, { API_KEY: 'api-key' });
});

test('the evidence binds the configuration digest: a Keep claiming another configuration is denied', async () => {
  b.store.setPolicySource(allowPolicy(b, ['db'], `configs = ["${'00'.repeat(32)}"]`), Date.now());
  const plan = planSecrets([spec({ path: '/s/db' })], {}, {});
  await assert.rejects(plan.fetch(context()), code('ERR_SECRET_DENIED'));
});

test("a refusal keeps the broker's code and names the broker", async () => {
  b.store.setPolicySource(allowPolicy(b, ['api']), Date.now());
  const plan = planSecrets([spec({ path: '/s/db' })], {}, {});
  await assert.rejects(plan.fetch(context()), (e: unknown) => {
    assert.ok(code('ERR_SECRET_DENIED')(e));
    assert.match(
      (e as Error).message,
      new RegExp(`^Cannot fetch the secrets from https://127\\.0\\.0\\.1:${b.port}: `),
    );
    return true;
  });
});

test('a broker the host cannot reach is ERR_BROKER_UNREACHABLE; one without the pinned certificate ERR_BROKER_UNTRUSTED', async () => {
  const plan = planSecrets([spec({ path: '/s/db', broker: 'https://127.0.0.1:1' })], {}, {});
  await assert.rejects(plan.fetch(context()), code('ERR_BROKER_UNREACHABLE'));
  const pinned = planSecrets([spec({ path: '/s/db', fingerprint: '11'.repeat(32) })], {}, {});
  await assert.rejects(pinned.fetch(context()), code('ERR_BROKER_UNTRUSTED'));
});

test('a Keep without evidence asks no broker', async () => {
  const connects: string[] = [];
  const plan = planSecrets([spec({ path: '/s/db' })], {}, {});
  await assert.rejects(plan.fetch(context({ kind: 'none', connects })), code('ERR_BROKER_TEE_UNSUPPORTED'));
  assert.deepEqual(connects, []);
});

test('planSecrets() refuses a secret that collides with a pre-opened directory or a variable', () => {
  const config = (e: unknown) => e instanceof KeepError && e.code === 'ERR_DEPLOY_CONFIG_INVALID';
  assert.throws(() => planSecrets([spec({ path: '/data/db' })], { '/data': {} }, {}), config);
  assert.throws(() => planSecrets([spec({ env: 'DB' })], {}, { DB: 'x' }), config);
  assert.throws(() => planSecrets([spec({ path: 'db' })], {}, {}), config);
});

test('a secret that is not text cannot be a variable', async () => {
  b.store.putSecret('bin', new Uint8Array([0xff, 0xfe]), Date.now());
  b.store.setPolicySource(allowPolicy(b, ['bin']), Date.now());
  const plan = planSecrets([spec({ name: 'bin', env: 'BIN' })], {}, {});
  await assert.rejects(plan.fetch(context()), code('ERR_DEPLOY_CONFIG_INVALID'));
});
