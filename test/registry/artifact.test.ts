import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  buildWasmArtifact,
  ENARX_TOML_ANNOTATION,
  parseManifest,
  sha256Digest,
  WASM_CONFIG,
  WASM_LAYER,
  WASM_LAYER_LEGACY,
  wasmArtifactOf,
} from '../../src/registry/index.ts';

const wasmDigest = sha256Digest(new Uint8Array([0, 0x61, 0x73, 0x6d]));
const OCI = 'application/vnd.oci.image.manifest.v1+json';
const json = (v: unknown): Uint8Array => new Uint8Array(Buffer.from(JSON.stringify(v)));
const desc = (mediaType: string, digest = wasmDigest, size = 4) => ({ mediaType, digest, size });

test('buildWasmArtifact() writes the CNCF layout, deterministically, with the Enarx.toml as an annotation', () => {
  const a = buildWasmArtifact({ digest: wasmDigest, size: 4, title: 'm.wasm' }, 'args = ["x"]\n');
  const b = buildWasmArtifact({ digest: wasmDigest, size: 4, title: 'm.wasm' }, 'args = ["x"]\n');
  assert.deepEqual(a, b, 'no timestamp: the same module gives the same digest');
  const manifest = JSON.parse(Buffer.from(a.manifest).toString('utf8'));
  assert.equal(manifest.mediaType, OCI);
  assert.deepEqual(manifest.config, {
    mediaType: WASM_CONFIG,
    digest: sha256Digest(a.config),
    size: a.config.length,
  });
  assert.deepEqual(manifest.layers, [
    {
      mediaType: WASM_LAYER,
      digest: wasmDigest,
      size: 4,
      annotations: { 'org.opencontainers.image.title': 'm.wasm' },
    },
  ]);
  assert.equal(manifest.annotations[ENARX_TOML_ANNOTATION], 'args = ["x"]\n');
  assert.deepEqual(JSON.parse(Buffer.from(a.config).toString('utf8')), {
    architecture: 'wasm',
    os: 'wasip1',
    layerDigests: [wasmDigest],
  });
  const artifact = wasmArtifactOf(parseManifest(a.manifest, OCI, 'm'), 'm');
  assert.equal(artifact.layer.digest, wasmDigest);
  assert.equal(artifact.enarxToml, 'args = ["x"]\n');
  assert.throws(() => buildWasmArtifact({ digest: wasmDigest, size: 4 }, 'x'.repeat(300_000)), RangeError);
});

test('wasmArtifactOf() takes exactly one Wasm layer, of either type', () => {
  const manifest = (layers: unknown[]) =>
    parseManifest(json({ schemaVersion: 2, mediaType: OCI, config: desc(WASM_CONFIG), layers }), '', 'm');
  assert.equal(wasmArtifactOf(manifest([desc(WASM_LAYER_LEGACY)]), 'm').layer.mediaType, WASM_LAYER_LEGACY);
  assert.throws(() => wasmArtifactOf(manifest([]), 'm'), {
    code: 'ERR_ARTIFACT_INVALID',
    message: /no application\/wasm layer/,
  });
  assert.throws(() => wasmArtifactOf(manifest([desc(WASM_LAYER), desc(WASM_LAYER)]), 'm'), {
    code: 'ERR_ARTIFACT_INVALID',
    message: /2 Wasm layers/,
  });
});

test('parseManifest() refuses indexes, other versions and malformed descriptors', () => {
  assert.throws(
    () =>
      parseManifest(
        json({ schemaVersion: 2, manifests: [] }),
        'application/vnd.oci.image.index.v1+json',
        'm',
      ),
    {
      code: 'ERR_ARTIFACT_INVALID',
      message: /index/,
    },
  );
  assert.throws(() => parseManifest(json({ schemaVersion: 1, layers: [] }), OCI, 'm'), {
    code: 'ERR_REGISTRY_PROTOCOL',
  });
  assert.throws(() => parseManifest(new Uint8Array(Buffer.from('{')), OCI, 'm'), {
    code: 'ERR_REGISTRY_PROTOCOL',
    message: /not JSON/,
  });
  const bad = [
    { ...desc(WASM_LAYER), digest: 'md5:00' },
    { ...desc(WASM_LAYER), size: -1 },
    { ...desc(WASM_LAYER), size: 1.5 },
    { ...desc(WASM_LAYER), mediaType: '' },
    { ...desc(WASM_LAYER), annotations: { a: 1 } },
  ];
  for (const layer of bad) {
    assert.throws(
      () => parseManifest(json({ schemaVersion: 2, config: desc(WASM_CONFIG), layers: [layer] }), OCI, 'm'),
      {
        code: 'ERR_REGISTRY_PROTOCOL',
      },
    );
  }
  assert.throws(
    () =>
      parseManifest(
        json({ schemaVersion: 2, mediaType: 'application/json', config: desc(WASM_CONFIG), layers: [] }),
        '',
        'm',
      ),
    { code: 'ERR_ARTIFACT_INVALID' },
  );
});
