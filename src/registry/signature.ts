// cosign's signature format (sigstore/cosign specs/SIGNATURE_SPEC.md): the signatures of manifest
// `sha256:H` live in the same repository under the tag `sha256-H.sig`, an image manifest whose layers are
// simple-signing payloads (application/vnd.dev.cosign.simplesigning.v1+json) each carrying its base64
// signature in the layer annotation `dev.cosignproject.cosign/signature`. The payload names the manifest
// digest and the repository (`critical.image.docker-manifest-digest`, `critical.identity.docker-reference`);
// the signature is ECDSA P-256 over SHA-256 of the payload bytes, DER-encoded. Only keys the caller names
// are tried: a signature that verifies under a key the registry offers proves nothing.
import { type KeyObject, sign, verify } from 'node:crypto';
import { type Descriptor, OCI_MANIFEST, parseManifest } from './artifact.ts';
import type { RegistryClient } from './client.ts';
import { sha256Digest } from './digest.ts';
import { RegistryError } from './errors.ts';
import { type Reference, repositoryName, signatureTag } from './reference.ts';

export const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
/** The most signature layers looked at, and the largest payload read: a registry cannot make us loop. */
export const MAX_SIGNATURES = 64;
export const MAX_PAYLOAD_BYTES = 64 * 1024;

/** A key the caller trusts, with the name it is reported by (its file name, say). */
export interface TrustedKey {
  readonly name: string;
  readonly key: KeyObject;
}

/** A signature that verified: the key that made it and the payload it signed. */
export interface VerifiedSignature {
  readonly keyName: string;
  readonly payload: SimpleSigningPayload;
}

/** The fields of a simple-signing payload that verification reads. */
export interface SimpleSigningPayload {
  readonly dockerReference: string;
  readonly manifestDigest: string;
  readonly type: string;
}

const utf8 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'utf8'));

/** The payload cosign signs for `digest` in `ref`'s repository, as bytes (cosign's field order). */
export function simpleSigningPayload(ref: Reference, digest: string): Uint8Array {
  return utf8(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': repositoryName(ref) },
        image: { 'docker-manifest-digest': digest },
        type: COSIGN_SIGNATURE_TYPE,
      },
      optional: null,
    }),
  );
}

/** Reads the fields of a payload; undefined when it is not a simple-signing payload. */
export function parseSimpleSigningPayload(bytes: Uint8Array): SimpleSigningPayload | undefined {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    return undefined;
  }
  const critical = (json as { critical?: Record<string, unknown> } | null)?.critical;
  if (typeof critical !== 'object' || critical === null) return undefined;
  const reference = (critical.identity as Record<string, unknown> | undefined)?.['docker-reference'];
  const digest = (critical.image as Record<string, unknown> | undefined)?.['docker-manifest-digest'];
  const type = critical.type;
  if (typeof reference !== 'string' || typeof digest !== 'string' || typeof type !== 'string')
    return undefined;
  return { dockerReference: reference, manifestDigest: digest, type };
}

/** The base64 DER ECDSA signature of `payload` with `key` (SHA-256), as the annotation carries it. */
export function signPayload(payload: Uint8Array, key: KeyObject): string {
  return sign('sha256', payload, { key, dsaEncoding: 'der' }).toString('base64');
}

/** Whether `signature` (base64 DER) verifies over `payload` under `key`. */
export function verifyPayload(payload: Uint8Array, signature: string, key: KeyObject): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) return false;
  try {
    return verify('sha256', payload, { key, dsaEncoding: 'der' }, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/** The repository a `docker-reference` names, without tag or digest. */
function withoutTagOrDigest(reference: string): string {
  const at = reference.indexOf('@');
  const name = at === -1 ? reference : reference.slice(0, at);
  const colon = name.lastIndexOf(':');
  return colon > name.lastIndexOf('/') ? name.slice(0, colon) : name;
}

/** The signature manifest (and its config blob) holding `layers`. */
export function buildSignatureManifest(layers: readonly Descriptor[]): {
  config: Uint8Array;
  manifest: Uint8Array;
} {
  const config = utf8(
    JSON.stringify({
      architecture: '',
      os: '',
      config: {},
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    }),
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: sha256Digest(config), size: config.byteLength },
    layers,
  };
  return { config, manifest: utf8(JSON.stringify(manifest)) };
}

/** The signature manifest of `digest`, or undefined when the repository has none. */
async function signatureManifest(client: RegistryClient, ref: Reference, digest: string) {
  try {
    const fetched = await client.getManifest(ref.repository, signatureTag(digest));
    return parseManifest(fetched.bytes, fetched.mediaType, `the signatures of ${digest}`);
  } catch (error) {
    if (error instanceof RegistryError && error.code === 'ERR_REGISTRY_NOT_FOUND') return undefined;
    throw error;
  }
}

/**
 * Signs manifest `digest` of `ref`'s repository with `key` and stores the signature where cosign looks
 * for it, beside any signatures already there. Returns the digest of the signature manifest.
 */
export async function attachSignature(
  client: RegistryClient,
  ref: Reference,
  digest: string,
  key: KeyObject,
): Promise<string> {
  const payload = simpleSigningPayload(ref, digest);
  const signature = signPayload(payload, key);
  const payloadDigest = await client.putBlob(ref.repository, payload);
  const layer: Descriptor = {
    mediaType: SIMPLE_SIGNING,
    digest: payloadDigest,
    size: payload.byteLength,
    annotations: { [SIGNATURE_ANNOTATION]: signature },
  };
  const existing = (await signatureManifest(client, ref, digest))?.layers ?? [];
  const { config, manifest } = buildSignatureManifest([...existing, layer]);
  await client.putBlob(ref.repository, config);
  return client.putManifest(ref.repository, signatureTag(digest), manifest, OCI_MANIFEST);
}

/** One cosign signature as the registry holds it: the payload's bytes and the base64 signature over them. */
export interface SignatureBlob {
  readonly payload: Uint8Array;
  readonly signature: string;
  /** The size a layer declared over {@link MAX_PAYLOAD_BYTES}: its payload was not fetched (and is empty). */
  readonly oversize?: number;
}

/**
 * Fetches the cosign signatures of manifest `digest` in `ref`'s repository (at most {@link MAX_SIGNATURES},
 * each payload under {@link MAX_PAYLOAD_BYTES}); none when there is no signature tag. Nothing is verified
 * here: {@link checkSignatures} does that, wherever the blobs travel (the Keep checks them again itself).
 */
export async function fetchSignatures(
  client: RegistryClient,
  ref: Reference,
  digest: string,
): Promise<SignatureBlob[]> {
  const manifest = await signatureManifest(client, ref, digest);
  const layers = (manifest?.layers ?? []).filter(
    (l) => l.mediaType === SIMPLE_SIGNING && l.annotations?.[SIGNATURE_ANNOTATION] !== undefined,
  );
  const out: SignatureBlob[] = [];
  for (const layer of layers.slice(0, MAX_SIGNATURES)) {
    const signature = layer.annotations![SIGNATURE_ANNOTATION]!;
    if (layer.size > MAX_PAYLOAD_BYTES) {
      out.push({ payload: new Uint8Array(0), signature, oversize: layer.size });
      continue;
    }
    const payload = await client.getBlob(ref.repository, layer.digest, MAX_PAYLOAD_BYTES);
    out.push({ payload, signature });
  }
  return out;
}

/**
 * Verifies that manifest `digest` of `ref`'s repository carries a cosign signature that verifies under one
 * of `keys` and whose payload names that digest and that repository. ERR_WORKLOAD_UNSIGNED when there is
 * no signature at all; ERR_WORKLOAD_SIGNATURE_INVALID, listing why each failed, when none verifies.
 */
export async function verifySignatures(
  client: RegistryClient,
  ref: Reference,
  digest: string,
  keys: readonly TrustedKey[],
): Promise<VerifiedSignature> {
  if (keys.length === 0) throw new TypeError('Cannot verify signatures: no key given');
  return checkSignatures(await fetchSignatures(client, ref, digest), ref, digest, keys);
}

/**
 * {@link verifySignatures} over signatures already fetched: pure, no network, so the Keep can run it on the
 * blobs the host hands it.
 */
export function checkSignatures(
  signatures: readonly SignatureBlob[],
  ref: Reference,
  digest: string,
  keys: readonly TrustedKey[],
): VerifiedSignature {
  if (keys.length === 0) throw new TypeError('Cannot verify signatures: no key given');
  const name = `${repositoryName(ref)}@${digest}`;
  if (signatures.length === 0) {
    throw new RegistryError(
      'ERR_WORKLOAD_UNSIGNED',
      `Cannot trust ${name}: it has no cosign signature (no ${signatureTag(digest)})`,
    );
  }
  const reasons = new Set<string>();
  for (const { payload, signature, oversize } of signatures.slice(0, MAX_SIGNATURES)) {
    const size = oversize ?? payload.byteLength;
    if (size > MAX_PAYLOAD_BYTES) {
      reasons.add(`a payload of ${size} bytes is over the limit`);
      continue;
    }
    const signer = keys.find((k) => verifyPayload(payload, signature, k.key));
    if (signer === undefined) {
      reasons.add('a signature verifies under none of the given keys');
      continue;
    }
    const fields = parseSimpleSigningPayload(payload);
    if (fields === undefined) {
      reasons.add(`a payload signed by ${signer.name} is not a simple-signing payload`);
    } else if (fields.type !== COSIGN_SIGNATURE_TYPE) {
      reasons.add(`a payload signed by ${signer.name} has type ${fields.type}`);
    } else if (fields.manifestDigest !== digest) {
      reasons.add(`a signature by ${signer.name} names another manifest (${fields.manifestDigest})`);
    } else if (withoutTagOrDigest(fields.dockerReference) !== repositoryName(ref)) {
      reasons.add(`a signature by ${signer.name} names another repository (${fields.dockerReference})`);
    } else {
      return { keyName: signer.name, payload: fields };
    }
  }
  throw new RegistryError(
    'ERR_WORKLOAD_SIGNATURE_INVALID',
    `Cannot trust ${name}: no valid signature (${[...reasons].join('; ')})`,
  );
}
