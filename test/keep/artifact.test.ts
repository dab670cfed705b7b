// The Keep's own check of a registry artifact the host hands it for a recreated deployment: the host is
// untrusted, so a manifest, a module or a signature it changed is refused inside the Keep.
import assert from 'node:assert/strict';
import { createHash, type KeyObject } from 'node:crypto';
import { describe, test } from 'node:test';
import { checkArtifact } from '../../src/keep/artifact.ts';
import type { MessageOf } from '../../src/protocol/messages.ts';
import {
  buildWasmArtifact,
  generateSigningKey,
  parseReference,
  publicKeyPem,
  sha256Digest,
  signPayload,
  simpleSigningPayload,
} from '../../src/registry/index.ts';

const wasm = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00);
const { manifest } = buildWasmArtifact({ digest: sha256Digest(wasm), size: wasm.byteLength });
const digest = sha256Digest(manifest);
const reference = `127.0.0.1:5000/app@${digest}`;
const signer = generateSigningKey();
const other = generateSigningKey();
const payload = simpleSigningPayload(parseReference(reference), digest);
const signature = { payload, signature: signPayload(payload, signer.privateKey) };

function deploy(artifact: MessageOf<'deploy'>['artifact'], module = wasm): MessageOf<'deploy'> {
  return {
    v: 1,
    type: 'deploy',
    wasm: module,
    digest: new Uint8Array(32),
    args: [],
    env: {},
    stdin: false,
    owner: new Uint8Array(32),
    ...(artifact ? { artifact } : {}),
  };
}

const code = (c: string) => (e: unknown) => (e as { code?: string }).code === c;

describe('checkArtifact()', () => {
  test('a deploy without an artifact is not checked here', () => {
    assert.equal(checkArtifact(deploy(undefined)), undefined);
  });

  test('accepts the pinned manifest and its module, and a signature under the given key', () => {
    assert.deepEqual(checkArtifact(deploy({ reference, digest, manifest })), { digest });
    const signed = checkArtifact(
      deploy({
        reference,
        digest,
        manifest,
        keys: [publicKeyPem(signer.publicKey)],
        signatures: [signature],
      }),
    );
    assert.equal(signed?.digest, digest);
    assert.equal(signed?.signedBy, 'key 1');
  });

  test("names as signers the SPKI digest of every given key whose signature verifies, sorted, and no other key's", () => {
    const third = generateSigningKey();
    const byOther = { payload, signature: signPayload(payload, other.privateKey) };
    const checked = checkArtifact(
      deploy({
        reference,
        digest,
        manifest,
        // The third key signed nothing; the signer's signature comes twice.
        keys: [third, signer, other].map((k) => publicKeyPem(k.publicKey)),
        signatures: [signature, byOther, signature],
      }),
    );
    const spkiSha = (k: { publicKey: KeyObject }) =>
      createHash('sha256')
        .update(k.publicKey.export({ type: 'spki', format: 'der' }))
        .digest('hex');
    assert.deepEqual(
      checked?.signers?.map((s) => Buffer.from(s).toString('hex')),
      [spkiSha(signer), spkiSha(other)].sort(),
    );
    assert.equal(checkArtifact(deploy({ reference, digest, manifest }))?.signers, undefined);
  });

  test('refuses a manifest that is not the pinned one', () => {
    const changed = new Uint8Array([...manifest, 0x20]);
    assert.throws(
      () => checkArtifact(deploy({ reference, digest, manifest: changed })),
      code('ERR_DEPLOY_ARTIFACT_MISMATCH'),
    );
  });

  test('refuses a module the manifest does not name', () => {
    assert.throws(
      () =>
        checkArtifact(
          deploy({ reference, digest, manifest }, Uint8Array.of(0, 0x61, 0x73, 0x6d, 2, 0, 0, 0)),
        ),
      code('ERR_DEPLOY_ARTIFACT_MISMATCH'),
    );
  });

  test('refuses a reference pinned to another digest than the deployment', () => {
    const elsewhere = `127.0.0.1:5000/app@sha256:${'0'.repeat(64)}`;
    assert.throws(
      () => checkArtifact(deploy({ reference: elsewhere, digest, manifest })),
      code('ERR_DEPLOY_ARTIFACT_MISMATCH'),
    );
  });

  test('with keys: refuses no signature, and a signature by another key or over another digest', () => {
    const keys = [publicKeyPem(signer.publicKey)];
    assert.throws(
      () => checkArtifact(deploy({ reference, digest, manifest, keys, signatures: [] })),
      code('ERR_WORKLOAD_UNSIGNED'),
    );
    const byOther = { payload, signature: signPayload(payload, other.privateKey) };
    assert.throws(
      () => checkArtifact(deploy({ reference, digest, manifest, keys, signatures: [byOther] })),
      code('ERR_WORKLOAD_SIGNATURE_INVALID'),
    );
    const otherPayload = simpleSigningPayload(parseReference(reference), `sha256:${'1'.repeat(64)}`);
    const overOther = { payload: otherPayload, signature: signPayload(otherPayload, signer.privateKey) };
    assert.throws(
      () => checkArtifact(deploy({ reference, digest, manifest, keys, signatures: [overOther] })),
      code('ERR_WORKLOAD_SIGNATURE_INVALID'),
    );
  });
});
