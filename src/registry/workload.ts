// Publishing a Wasm workload to a registry and fetching one back, by digest, with its signatures checked
// before a byte of the module is fetched.
import { buildWasmArtifact, parseManifest, wasmArtifactOf } from './artifact.ts';
import type { RegistryClient } from './client.ts';
import { sha256Digest } from './digest.ts';
import { RegistryError } from './errors.ts';
import { formatReference, manifestReference, pinned, type Reference } from './reference.ts';
import { type TrustedKey, type VerifiedSignature, verifySignatures } from './signature.ts';

/** What {@link pushWorkload} stored. */
export interface PushedWorkload {
  /** The manifest digest: what `donjon push` prints and what signatures name. */
  readonly digest: string;
  /** The reference pinned to that digest. */
  readonly reference: Reference;
}

/**
 * Uploads a module (and its Enarx.toml, carried as a manifest annotation) in the CNCF Wasm layout under
 * `ref`'s tag (`latest` when it names none). A reference with a digest is refused: a push names a tag.
 */
export async function pushWorkload(
  client: RegistryClient,
  ref: Reference,
  wasm: Uint8Array,
  options: { readonly enarxToml?: string; readonly title?: string } = {},
): Promise<PushedWorkload> {
  if (ref.digest !== undefined) {
    throw new RegistryError(
      'ERR_REFERENCE_INVALID',
      `Cannot push to ${formatReference(ref)}: a push names a tag, not a digest`,
    );
  }
  const wasmDigest = await client.putBlob(ref.repository, wasm);
  const { config, manifest } = buildWasmArtifact(
    {
      digest: wasmDigest,
      size: wasm.byteLength,
      ...(options.title === undefined ? {} : { title: options.title }),
    },
    options.enarxToml,
  );
  await client.putBlob(ref.repository, config);
  const digest = await client.putManifest(
    ref.repository,
    ref.tag ?? 'latest',
    manifest,
    'application/vnd.oci.image.manifest.v1+json',
  );
  return { digest, reference: pinned(ref, digest) };
}

/** How {@link pullWorkload} decides trust. */
export interface PullTrust {
  /** Keys whose cosign signature is accepted. */
  readonly keys: readonly TrustedKey[];
  /** Accept a workload without a valid signature (reported through `onUnverified`). */
  readonly allowUnsigned: boolean;
  /** Told why an accepted workload is unverified (no keys, or the verification's error). */
  readonly onUnverified?: (reason: string) => void;
}

/** A pulled workload, everything named by digest. */
export interface PulledWorkload {
  /** The reference pinned to its manifest digest. */
  readonly reference: Reference;
  readonly digest: string;
  readonly wasm: Uint8Array;
  readonly wasmDigest: string;
  readonly enarxToml?: string;
  /** The signature that verified, unless the workload was accepted unsigned. */
  readonly signature?: VerifiedSignature;
}

/**
 * Resolves `ref` to a manifest digest (one request), checks its signatures against the caller's keys, then
 * fetches the module by digest. Refuses (ERR_WORKLOAD_UNSIGNED, ERR_WORKLOAD_SIGNATURE_INVALID) unless
 * `trust.allowUnsigned`; with no keys and no `allowUnsigned` it is a TypeError: nothing could be trusted.
 */
export async function pullWorkload(
  client: RegistryClient,
  ref: Reference,
  trust: PullTrust,
): Promise<PulledWorkload> {
  if (trust.keys.length === 0 && !trust.allowUnsigned) {
    throw new TypeError(
      'Cannot pull a workload to run: no key to verify it with, and unsigned workloads are not allowed',
    );
  }
  const fetched = await client.getManifest(ref.repository, manifestReference(ref));
  const digest = fetched.digest;
  const reference = pinned(ref, digest);
  const what = formatReference(reference);
  const artifact = wasmArtifactOf(parseManifest(fetched.bytes, fetched.mediaType, what), what);
  let signature: VerifiedSignature | undefined;
  if (trust.keys.length > 0) {
    try {
      signature = await verifySignatures(client, ref, digest, trust.keys);
    } catch (error) {
      const refusal =
        error instanceof RegistryError &&
        (error.code === 'ERR_WORKLOAD_UNSIGNED' || error.code === 'ERR_WORKLOAD_SIGNATURE_INVALID');
      if (!refusal || !trust.allowUnsigned) throw error;
      trust.onUnverified?.(error.detail);
    }
  } else trust.onUnverified?.('no key was given to verify it');
  const wasm = await client.getBlob(ref.repository, artifact.layer.digest, artifact.layer.size);
  if (wasm.byteLength !== artifact.layer.size) {
    throw new RegistryError(
      'ERR_REGISTRY_PROTOCOL',
      `Cannot use ${what}: its module is ${wasm.byteLength} bytes, the manifest says ${artifact.layer.size}`,
    );
  }
  return {
    reference,
    digest,
    wasm,
    wasmDigest: sha256Digest(wasm),
    ...(artifact.enarxToml === undefined ? {} : { enarxToml: artifact.enarxToml }),
    ...(signature === undefined ? {} : { signature }),
  };
}

/** Resolves a reference to its manifest digest (one request), for signing what a tag names now. */
export async function resolveDigest(client: RegistryClient, ref: Reference): Promise<string> {
  return (await client.getManifest(ref.repository, manifestReference(ref))).digest;
}
