import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import {
  attachSignature,
  buildSignatureManifest,
  generateSigningKey,
  parseReference,
  parseSimpleSigningPayload,
  pushWorkload,
  RegistryClient,
  SIGNATURE_ANNOTATION,
  SIMPLE_SIGNING,
  signatureTag,
  signPayload,
  simpleSigningPayload,
  verifySignatures,
} from '../../src/registry/index.ts';
import { startFakeRegistry } from './fake-registry.ts';

const D = `sha256:${'cd'.repeat(32)}`;

test("simpleSigningPayload() writes cosign's payload, field for field", () => {
  const payload = simpleSigningPayload(parseReference('127.0.0.1:5000/hello:1.0'), D);
  assert.equal(
    Buffer.from(payload).toString('utf8'),
    `{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/hello"},"image":{"docker-manifest-digest":"${D}"},"type":"cosign container image signature"},"optional":null}`,
  );
  assert.deepEqual(parseSimpleSigningPayload(payload), {
    dockerReference: '127.0.0.1:5000/hello',
    manifestDigest: D,
    type: 'cosign container image signature',
  });
  assert.equal(parseSimpleSigningPayload(new Uint8Array(Buffer.from('{"critical":{}}'))), undefined);
  assert.equal(parseSimpleSigningPayload(new Uint8Array(Buffer.from('nope'))), undefined);
});

describe('verifySignatures() against a registry', async () => {
  const fake = await startFakeRegistry({ auth: 'none' });
  after(() => fake.close());
  const client = new RegistryClient(fake.host);
  const wasm = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
  const trusted = generateSigningKey();
  const stranger = generateSigningKey();
  const keys = [{ name: 'trusted.pub', key: trusted.publicKey }];

  /** Stores a hand-made signature manifest holding `payload` signed by `key`. */
  async function storeSignature(
    repository: string,
    digest: string,
    payload: string,
    signature: string,
  ): Promise<void> {
    const bytes = new Uint8Array(Buffer.from(payload));
    const payloadDigest = await client.putBlob(repository, bytes);
    const { config, manifest } = buildSignatureManifest([
      {
        mediaType: SIMPLE_SIGNING,
        digest: payloadDigest,
        size: bytes.length,
        annotations: { [SIGNATURE_ANNOTATION]: signature },
      },
    ]);
    await client.putBlob(repository, config);
    await client.putManifest(
      repository,
      signatureTag(digest),
      manifest,
      'application/vnd.oci.image.manifest.v1+json',
    );
  }

  test('no signature manifest is ERR_WORKLOAD_UNSIGNED', async () => {
    const ref = parseReference(`${fake.host}/s/none:1`);
    const { digest } = await pushWorkload(client, ref, wasm);
    await assert.rejects(verifySignatures(client, ref, digest, keys), {
      code: 'ERR_WORKLOAD_UNSIGNED',
      category: 'refused',
    });
  });

  test("a stranger's signature is ERR_WORKLOAD_SIGNATURE_INVALID; the trusted key's beside it verifies", async () => {
    const ref = parseReference(`${fake.host}/s/two:1`);
    const { digest } = await pushWorkload(client, ref, wasm);
    await attachSignature(client, ref, digest, stranger.privateKey);
    await assert.rejects(verifySignatures(client, ref, digest, keys), {
      code: 'ERR_WORKLOAD_SIGNATURE_INVALID',
      message: /verifies under none of the given keys/,
    });
    await attachSignature(client, ref, digest, trusted.privateKey);
    const ok = await verifySignatures(client, ref, digest, keys);
    assert.equal(ok.keyName, 'trusted.pub');
  });

  test('a trusted signature over a payload of another type, or over garbage, is refused', async () => {
    const ref = parseReference(`${fake.host}/s/odd:1`);
    const { digest } = await pushWorkload(client, ref, wasm);
    const other = `{"critical":{"identity":{"docker-reference":"${fake.host}/s/odd"},"image":{"docker-manifest-digest":"${digest}"},"type":"atomic container signature"}}`;
    await storeSignature('s/odd', digest, other, signPayload(Buffer.from(other), trusted.privateKey));
    await assert.rejects(verifySignatures(client, ref, digest, keys), {
      message: /has type atomic container signature/,
    });
    await storeSignature('s/odd', digest, 'garbage', signPayload(Buffer.from('garbage'), trusted.privateKey));
    await assert.rejects(verifySignatures(client, ref, digest, keys), {
      message: /not a simple-signing payload/,
    });
    await storeSignature('s/odd', digest, 'garbage', '%%%');
    await assert.rejects(verifySignatures(client, ref, digest, keys), {
      code: 'ERR_WORKLOAD_SIGNATURE_INVALID',
    });
  });

  test('a docker-reference that carries a tag or digest still names its repository', async () => {
    const ref = parseReference(`${fake.host}/s/tagged:1`);
    const { digest } = await pushWorkload(client, ref, wasm);
    const payload = `{"critical":{"identity":{"docker-reference":"${fake.host}/s/tagged:1"},"image":{"docker-manifest-digest":"${digest}"},"type":"cosign container image signature"},"optional":{}}`;
    await storeSignature('s/tagged', digest, payload, signPayload(Buffer.from(payload), trusted.privateKey));
    assert.equal(
      (await verifySignatures(client, ref, digest, keys)).payload.dockerReference,
      `${fake.host}/s/tagged:1`,
    );
  });

  test('verification never reads a key from the registry: no key given is a TypeError', async () => {
    const ref = parseReference(`${fake.host}/s/none:1`);
    await assert.rejects(verifySignatures(client, ref, D, []), TypeError);
  });
});
