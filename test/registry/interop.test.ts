// Interoperability with independent implementations: skopeo copies our artifacts out and its own in; openssl
// makes the signatures; Debian's docker-registry stores everything. Nothing here is produced by the code
// under test except where a test says so.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  parseReference,
  pullWorkload,
  pushWorkload,
  RegistryClient,
  readPublicKey,
  type TrustedKey,
} from '../../src/registry/index.ts';
import { example, runCli } from '../helpers.ts';
import { type LocalRegistry, missing, startRegistry } from './registry-server.ts';

const absent = missing('docker-registry', 'skopeo', 'openssl');
const wasm = new Uint8Array(readFileSync(example('hello')));

const sha256 = (bytes: Uint8Array | string): string =>
  `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** Writes an OCI image layout by hand: blobs, one manifest, index.json naming it under `tag`. */
function writeLayout(dir: string, tag: string, blobs: Uint8Array[], manifest: string): string {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const blob of [...blobs, Buffer.from(manifest)]) {
    writeFileSync(join(dir, 'blobs', 'sha256', sha256(blob).slice(7)), blob);
  }
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const digest = sha256(manifest);
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest,
          size: Buffer.byteLength(manifest),
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  return digest;
}

function skopeoIn(layout: string, tag: string, target: string): void {
  execFileSync(
    'skopeo',
    [
      'copy',
      '--quiet',
      '--preserve-digests',
      '--dest-tls-verify=false',
      `oci:${layout}:${tag}`,
      `docker://${target}`,
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
}

describe('interoperability with skopeo and openssl (docker-registry on loopback)', { skip: absent }, () => {
  let registry: LocalRegistry;
  let dir: string;
  let keyPem: string;
  let trusted: TrustedKey;

  before(async () => {
    registry = await startRegistry();
    dir = mkdtempSync(join(tmpdir(), 'donjon-interop-'));
    execFileSync('openssl', [
      'ecparam',
      '-name',
      'prime256v1',
      '-genkey',
      '-noout',
      '-out',
      join(dir, 'k.pem'),
    ]);
    execFileSync('openssl', ['ec', '-in', join(dir, 'k.pem'), '-pubout', '-out', join(dir, 'k.pub')], {
      stdio: 'ignore',
    });
    keyPem = readFileSync(join(dir, 'k.pub'), 'utf8');
    trusted = { name: 'k.pub', key: readPublicKey(keyPem, 'k.pub') };
  });

  after(async () => {
    await registry?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A cosign-format signature manifest for `digest` in `repository`, signed by openssl, pushed by skopeo. */
  function signWithOpenssl(repository: string, digest: string, signedDigest = digest): void {
    const work = mkdtempSync(join(dir, 'sig-'));
    // Written as another implementation would: its own spacing and key order.
    const payload = `{"critical": {"type": "cosign container image signature", "image": {"docker-manifest-digest": "${signedDigest}"}, "identity": {"docker-reference": "${registry.host}/${repository}"}}, "optional": {"creator": "openssl"}}`;
    writeFileSync(join(work, 'payload.json'), payload);
    execFileSync('openssl', [
      'dgst',
      '-sha256',
      '-sign',
      join(dir, 'k.pem'),
      '-out',
      join(work, 'sig.der'),
      join(work, 'payload.json'),
    ]);
    const signature = readFileSync(join(work, 'sig.der')).toString('base64');
    const config = Buffer.from(
      `{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":["${sha256(payload)}"]},"config":{}}`,
    );
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha256(config),
        size: config.length,
      },
      layers: [
        {
          mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
          digest: sha256(payload),
          size: Buffer.byteLength(payload),
          annotations: { 'dev.cosignproject.cosign/signature': signature },
        },
      ],
    });
    const tag = `${digest.replace(':', '-')}.sig`;
    writeLayout(join(work, 'layout'), tag, [Buffer.from(payload), config], manifest);
    skopeoIn(join(work, 'layout'), tag, `${registry.host}/${repository}:${tag}`);
  }

  /** A Wasm artifact in the CNCF layout written by hand and pushed by skopeo; returns its manifest digest. */
  function pushWithSkopeo(repository: string, layerType = 'application/wasm'): string {
    const work = mkdtempSync(join(dir, 'art-'));
    const config = Buffer.from(`{"architecture":"wasm","os":"wasip1","layerDigests":["${sha256(wasm)}"]}`);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.wasm.config.v0+json',
        digest: sha256(config),
        size: config.length,
      },
      layers: [{ mediaType: layerType, digest: sha256(wasm), size: wasm.length }],
    });
    const digest = writeLayout(join(work, 'layout'), '1.0', [wasm, config], manifest);
    skopeoIn(join(work, 'layout'), '1.0', `${registry.host}/${repository}:1.0`);
    return digest;
  }

  test('an artifact pushed here is copied out by skopeo with the same layer bytes and the CNCF media types', async () => {
    const ref = parseReference(`${registry.host}/ours:1.0`);
    const pushed = await pushWorkload(new RegistryClient(ref.registry), ref, wasm, { title: 'hello.wasm' });
    const out = join(dir, 'copied');
    execFileSync(
      'skopeo',
      [
        'copy',
        '--quiet',
        '--preserve-digests',
        '--src-tls-verify=false',
        `docker://${registry.host}/ours:1.0`,
        `oci:${out}:1.0`,
      ],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as {
      manifests: { digest: string }[];
    };
    assert.equal(index.manifests[0]!.digest, pushed.digest);
    const blob = (d: string): Buffer => readFileSync(join(out, 'blobs', 'sha256', d.slice(7)));
    const manifest = JSON.parse(blob(pushed.digest).toString('utf8')) as {
      config: { mediaType: string; digest: string };
      layers: { mediaType: string; digest: string }[];
    };
    assert.equal(manifest.config.mediaType, 'application/vnd.wasm.config.v0+json');
    assert.equal(manifest.layers.length, 1);
    assert.equal(manifest.layers[0]!.mediaType, 'application/wasm');
    assert.deepEqual(new Uint8Array(blob(manifest.layers[0]!.digest)), wasm);
    const config = JSON.parse(blob(manifest.config.digest).toString('utf8')) as { layerDigests: string[] };
    assert.deepEqual(config.layerDigests, [sha256(wasm)]);
  });

  test('an artifact skopeo pushed, signed by openssl in cosign format, pulls and verifies', async () => {
    const digest = pushWithSkopeo('theirs');
    signWithOpenssl('theirs', digest);
    const ref = parseReference(`${registry.host}/theirs:1.0`);
    const pulled = await pullWorkload(new RegistryClient(ref.registry), ref, {
      keys: [trusted],
      allowUnsigned: false,
    });
    assert.equal(pulled.digest, digest);
    assert.deepEqual(pulled.wasm, wasm);
    assert.equal(pulled.signature?.keyName, 'k.pub');
    assert.equal(pulled.reference.digest, digest);
    assert.equal(pulled.reference.tag, undefined, 'after resolution the tag is gone');
  });

  test('the older wasm-to-oci layer type is accepted on pull', async () => {
    const digest = pushWithSkopeo('legacy', 'application/vnd.wasm.content.layer.v1+wasm');
    const ref = parseReference(`${registry.host}/legacy:1.0`);
    const pulled = await pullWorkload(new RegistryClient(ref.registry), ref, {
      keys: [],
      allowUnsigned: true,
    });
    assert.equal(pulled.digest, digest);
    assert.deepEqual(pulled.wasm, wasm);
  });

  test('a signature over another digest is refused, as is an artifact with none, unless unsigned ones are allowed', async () => {
    const digest = pushWithSkopeo('otherdigest');
    signWithOpenssl('otherdigest', digest, sha256('something else'));
    const ref = parseReference(`${registry.host}/otherdigest:1.0`);
    const client = new RegistryClient(ref.registry);
    await assert.rejects(pullWorkload(client, ref, { keys: [trusted], allowUnsigned: false }), {
      code: 'ERR_WORKLOAD_SIGNATURE_INVALID',
      category: 'refused',
      message: /names another manifest/,
    });
    pushWithSkopeo('nosig');
    const bare = parseReference(`${registry.host}/nosig:1.0`);
    await assert.rejects(pullWorkload(client, bare, { keys: [trusted], allowUnsigned: false }), {
      code: 'ERR_WORKLOAD_UNSIGNED',
    });
    const notes: string[] = [];
    const allowed = await pullWorkload(client, bare, {
      keys: [trusted],
      allowUnsigned: true,
      onUnverified: (r) => notes.push(r),
    });
    assert.deepEqual(allowed.wasm, wasm);
    assert.match(notes.join(), /no cosign signature/);
  });

  test('a signature naming another repository is refused', async () => {
    const digest = pushWithSkopeo('moved');
    const work = pushWithSkopeo('original');
    assert.equal(work, digest, 'same bytes, same digest');
    signWithOpenssl('original', digest);
    // Copy the signature made for "original" into "moved", as a registry or a mirror could.
    const tag = `${digest.replace(':', '-')}.sig`;
    execFileSync(
      'skopeo',
      [
        'copy',
        '--quiet',
        '--preserve-digests',
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        `docker://${registry.host}/original:${tag}`,
        `docker://${registry.host}/moved:${tag}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const ref = parseReference(`${registry.host}/moved:1.0`);
    await assert.rejects(
      pullWorkload(new RegistryClient(ref.registry), ref, { keys: [trusted], allowUnsigned: false }),
      {
        code: 'ERR_WORKLOAD_SIGNATURE_INVALID',
        message: /names another repository/,
      },
    );
  });

  test('donjon run executes the skopeo-pushed, openssl-signed artifact, and refuses it under another key (exit 3)', async () => {
    const digest = pushWithSkopeo('runtheirs');
    signWithOpenssl('runtheirs', digest);
    const env = { DOCKER_CONFIG: join(dir, 'docker') };
    const ref = `${registry.host}/runtheirs:1.0`;
    const r = await runCli(['run', '-q', '--verify-key', join(dir, 'k.pub'), ref, '--', 'Eve'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Hello, Eve!\n');
    execFileSync('openssl', [
      'ecparam',
      '-name',
      'prime256v1',
      '-genkey',
      '-noout',
      '-out',
      join(dir, 'x.pem'),
    ]);
    execFileSync('openssl', ['ec', '-in', join(dir, 'x.pem'), '-pubout', '-out', join(dir, 'x.pub')], {
      stdio: 'ignore',
    });
    const refused = await runCli(['run', '-q', '--verify-key', join(dir, 'x.pub'), ref, '--', 'Eve'], {
      env,
    });
    assert.equal(refused.code, 3, refused.stderr);
    assert.equal(refused.stdout, '');
    // Pinning the digest in the reference gives the same workload.
    const pinnedRun = await runCli(
      ['run', '-q', '--verify-key', join(dir, 'k.pub'), `${registry.host}/runtheirs@${digest}`, '--', 'Pin'],
      { env },
    );
    assert.equal(pinnedRun.code, 0, pinnedRun.stderr);
    assert.equal(pinnedRun.stdout, 'Hello, Pin!\n');
  });
});
