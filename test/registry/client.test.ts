import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pullWorkloadReference } from '../../src/client/workload-ref.ts';
import {
  attachSignature,
  generateSigningKey,
  MAX_MANIFEST_BYTES,
  parseReference,
  pullWorkload,
  pushWorkload,
  RegistryClient,
  sha256Digest,
} from '../../src/registry/index.ts';
import { startFakeRegistry } from './fake-registry.ts';

const wasm = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
const alice = { username: 'alice', password: 's3cret:with:colons' };

describe('RegistryClient with the Docker token flow (fake registry and token server)', async () => {
  const fake = await startFakeRegistry({
    auth: 'bearer',
    users: { alice: alice.password },
    publicRepositories: ['open/hello'],
  });
  after(() => fake.close());

  test('pushes and pulls with credentials, asking the token server once per scope', async () => {
    const ref = parseReference(`${fake.host}/team/hello:1.0`);
    const pushed = await pushWorkload(new RegistryClient(ref.registry, { credentials: alice }), ref, wasm);
    assert.deepEqual(fake.tokenRequests, ['repository:team/hello:pull,push']);
    const client = new RegistryClient(ref.registry, { credentials: alice });
    const pulled = await pullWorkload(client, ref, { keys: [], allowUnsigned: true });
    assert.equal(pulled.digest, pushed.digest);
    assert.deepEqual(pulled.wasm, wasm);
    assert.deepEqual(fake.tokenRequests, ['repository:team/hello:pull,push', 'repository:team/hello:pull']);
  });

  test('refuses an anonymous pull of a private repository and a wrong password with ERR_REGISTRY_AUTH', async () => {
    const ref = parseReference(`${fake.host}/team/hello:1.0`);
    await assert.rejects(new RegistryClient(ref.registry).getManifest('team/hello', '1.0'), {
      code: 'ERR_REGISTRY_AUTH',
      category: 'usage',
      message: /token server refused an anonymous request/,
    });
    await assert.rejects(
      new RegistryClient(ref.registry, { credentials: { username: 'alice', password: 'nope' } }).getManifest(
        'team/hello',
        '1.0',
      ),
      { code: 'ERR_REGISTRY_AUTH', message: /credentials of alice/ },
    );
  });

  test('pulls a public repository anonymously through a token', async () => {
    const ref = parseReference(`${fake.host}/open/hello:2`);
    await pushWorkload(new RegistryClient(ref.registry, { credentials: alice }), ref, wasm);
    const pulled = await pullWorkload(new RegistryClient(ref.registry), ref, {
      keys: [],
      allowUnsigned: true,
    });
    assert.deepEqual(pulled.wasm, wasm);
  });

  test('a signature pushed through the token flow verifies on pull', async () => {
    const ref = parseReference(`${fake.host}/team/signed:1.0`);
    const writer = new RegistryClient(ref.registry, { credentials: alice });
    const { digest } = await pushWorkload(writer, ref, wasm);
    const { privateKey, publicKey } = generateSigningKey();
    await attachSignature(writer, ref, digest, privateKey);
    // A second signature goes beside the first, not over it.
    const second = generateSigningKey();
    await attachSignature(writer, ref, digest, second.privateKey);
    const reader = new RegistryClient(ref.registry, { credentials: alice });
    for (const key of [publicKey, second.publicKey]) {
      const pulled = await pullWorkload(reader, ref, { keys: [{ name: 'k', key }], allowUnsigned: false });
      assert.equal(pulled.signature?.payload.manifestDigest, digest);
    }
  });
});

describe('RegistryClient with Basic authentication', async () => {
  const fake = await startFakeRegistry({ auth: 'basic', users: { alice: alice.password } });
  const dir = mkdtempSync(join(tmpdir(), 'donjon-dockercfg-'));
  after(async () => {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('answers a Basic challenge with the credentials, and says what to do without them', async () => {
    const ref = parseReference(`${fake.host}/b/hello:1`);
    await pushWorkload(new RegistryClient(ref.registry, { credentials: alice }), ref, wasm);
    await assert.rejects(new RegistryClient(ref.registry).getManifest('b/hello', '1'), {
      code: 'ERR_REGISTRY_AUTH',
      message: /--registry-auth USER:PASS or docker login/,
    });
  });

  test("takes the credentials from Docker's config file (auths, base64 auth) when none are given", async () => {
    const ref = `${fake.host}/b/cfg:1`;
    await pushWorkload(new RegistryClient(fake.host, { credentials: alice }), parseReference(ref), wasm);
    const config = join(dir, 'config.json');
    const auth = Buffer.from(`alice:${alice.password}`).toString('base64');
    writeFileSync(
      config,
      JSON.stringify({ auths: { [`http://${fake.host}/v2/`]: { auth }, 'other.example': { auth: 'eDp5' } } }),
    );
    const pulled = await pullWorkloadReference(ref, {
      verifyKeys: [],
      allowUnsigned: true,
      dockerConfig: config,
    });
    assert.deepEqual(pulled.wasm, wasm);
  });
});

describe('RegistryClient checks every byte', async () => {
  const fake = await startFakeRegistry({ auth: 'none' });
  after(() => fake.close());
  const ref = parseReference(`${fake.host}/t/hello:1`);
  const client = new RegistryClient(ref.registry);
  const { digest } = await pushWorkload(client, ref, wasm);

  test('a blob whose bytes do not match its digest is refused (ERR_REGISTRY_DIGEST_MISMATCH)', async () => {
    fake.tamper.set(`/v2/t/hello/blobs/${sha256Digest(wasm)}`, {
      body: Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 1]),
    });
    try {
      await assert.rejects(pullWorkload(client, ref, { keys: [], allowUnsigned: true }), {
        code: 'ERR_REGISTRY_DIGEST_MISMATCH',
        category: 'refused',
      });
    } finally {
      fake.tamper.clear();
    }
  });

  test('a manifest asked by digest must hash to it, and one asked by tag to the digest the registry names', async () => {
    const other = Buffer.from('{"schemaVersion":2,"layers":[]}');
    fake.tamper.set(`/v2/t/hello/manifests/${digest}`, {
      body: other,
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    fake.tamper.set('/v2/t/hello/manifests/1', { body: other, headers: { 'docker-content-digest': digest } });
    try {
      await assert.rejects(client.getManifest('t/hello', digest), { code: 'ERR_REGISTRY_DIGEST_MISMATCH' });
      await assert.rejects(client.getManifest('t/hello', '1'), { code: 'ERR_REGISTRY_DIGEST_MISMATCH' });
    } finally {
      fake.tamper.clear();
    }
  });

  test('a manifest over the size limit is refused before it is all read', async () => {
    fake.tamper.set('/v2/t/hello/manifests/big', { body: Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20) });
    try {
      await assert.rejects(client.getManifest('t/hello', 'big'), {
        code: 'ERR_REGISTRY_PROTOCOL',
        message: /exceeds/,
      });
    } finally {
      fake.tamper.clear();
    }
  });

  test('an unknown tag is ERR_REGISTRY_NOT_FOUND with the registry’s own reason', async () => {
    await assert.rejects(client.getManifest('t/hello', 'nope'), {
      code: 'ERR_REGISTRY_NOT_FOUND',
      message: /MANIFEST_UNKNOWN/,
    });
  });

  test('a container image (no Wasm layer) is refused with ERR_ARTIFACT_INVALID', async () => {
    const layer = Buffer.from('not a tarball');
    await client.putBlob('t/image', layer);
    const config = Buffer.from('{}');
    await client.putBlob('t/image', config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: sha256Digest(config),
          size: config.length,
        },
        layers: [
          {
            mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
            digest: sha256Digest(layer),
            size: layer.length,
          },
        ],
      }),
    );
    await client.putManifest('t/image', 'latest', manifest, 'application/vnd.oci.image.manifest.v1+json');
    await assert.rejects(
      pullWorkload(client, parseReference(`${fake.host}/t/image`), { keys: [], allowUnsigned: true }),
      {
        code: 'ERR_ARTIFACT_INVALID',
        message: /no application\/wasm layer/,
      },
    );
  });
});

describe('RegistryClient transport', () => {
  test('speaks HTTPS to a registry off loopback, plain HTTP to loopback or when told', () => {
    assert.equal(new RegistryClient('registry.example:5000').baseUrl, 'https://registry.example:5000');
    assert.equal(
      new RegistryClient('registry.example', { plainHttp: true }).baseUrl,
      'http://registry.example',
    );
    assert.equal(new RegistryClient('127.0.0.1:5000').baseUrl, 'http://127.0.0.1:5000');
    assert.equal(new RegistryClient('localhost:5000').baseUrl, 'http://localhost:5000');
    assert.equal(new RegistryClient('docker.io').baseUrl, 'https://registry-1.docker.io');
  });

  test('refuses a token realm over plain HTTP for an HTTPS registry (ERR_REGISTRY_INSECURE)', async () => {
    const seen: string[] = [];
    const client = new RegistryClient('registry.example', {
      fetch: async (url) => {
        seen.push(url);
        return new Response('{}', {
          status: 401,
          headers: { 'www-authenticate': 'Bearer realm="http://auth.example/token",service="r"' },
        });
      },
    });
    await assert.rejects(client.getManifest('a/b', 'latest'), { code: 'ERR_REGISTRY_INSECURE' });
    assert.deepEqual(
      seen,
      ['https://registry.example/v2/a/b/manifests/latest'],
      'no request went to the plain realm',
    );
  });

  test('a registry that cannot be reached is ERR_REGISTRY_UNREACHABLE', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    await assert.rejects(new RegistryClient(`127.0.0.1:${port}`).getManifest('a/b', 'latest'), {
      code: 'ERR_REGISTRY_UNREACHABLE',
      category: 'host',
    });
  });

  test('a registry that does not answer in time is ERR_REGISTRY_UNREACHABLE', async () => {
    const client = new RegistryClient('registry.example', {
      timeoutMs: 20,
      // The time limit's timer does not hold the process up; this one stands for the open connection.
      fetch: (_url, init) =>
        new Promise((_resolve, reject) => {
          const pending = setTimeout(() => {}, 10_000);
          init.signal?.addEventListener('abort', () => {
            clearTimeout(pending);
            reject(init.signal?.reason);
          });
        }),
    });
    await assert.rejects(client.getManifest('a/b', 'latest'), {
      code: 'ERR_REGISTRY_UNREACHABLE',
      message: /no answer within 20 ms/,
    });
  });
});
