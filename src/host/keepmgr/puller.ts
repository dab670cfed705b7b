// The host's pull of a deployment's artifact, by the digest the deployment pinned: the host has the network
// the Keep lacks. Blobs come from the host's cache when it holds them whole. The host checks the signatures
// against the deployment's keys so a refused artifact fails here, early; the Keep checks everything again.
import { reasonOf } from '../../lib/errors.ts';
import {
  type Credentials,
  checkSignatures,
  fetchSignatures,
  parseManifest,
  parseReference,
  RegistryClient,
  type RegistryFetch,
  readPublicKey,
  type SignatureBlob,
  wasmArtifactOf,
} from '../../registry/index.ts';
import type { BlobCache } from './blob-cache.ts';

/** What the Keep is handed: the manifest's bytes, the module, and the signatures when keys are given. */
export interface PulledArtifact {
  readonly reference: string;
  readonly digest: string;
  readonly manifest: Uint8Array;
  readonly wasm: Uint8Array;
  readonly signatures: readonly SignatureBlob[];
}

/** Where to pull from and whom to trust: the public part of a deployment. */
export interface PullSpec {
  /** `host/repo@sha256:…`: always pinned. */
  readonly reference: string;
  /** PEM public keys; none: the artifact runs unsigned. */
  readonly keys: readonly string[];
  readonly plainHttp?: boolean;
}

/**
 * Fetches a pinned artifact's manifest and module (from `cache` when it holds them) and, with keys, its
 * signatures, which must verify. Throws with the reason (a RegistryError, or an Error naming what is wrong).
 */
export async function pullArtifact(
  spec: PullSpec,
  options: {
    cache?: BlobCache | undefined;
    fetch?: RegistryFetch | undefined;
    /** Registry credentials: never part of a stored spec. */
    credentials?: Credentials | undefined;
  } = {},
): Promise<PulledArtifact> {
  const ref = parseReference(spec.reference);
  const digest = ref.digest;
  if (digest === undefined) throw new Error(`Cannot pull ${spec.reference}: it is not pinned to a digest`);
  const cache = options.cache;
  const client = new RegistryClient(ref.registry, {
    ...(spec.plainHttp === undefined ? {} : { plainHttp: spec.plainHttp }),
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
    ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
  });
  let manifest = cache?.get(digest);
  if (manifest === undefined) {
    manifest = (await client.getManifest(ref.repository, digest)).bytes;
    cache?.put(digest, manifest);
  }
  const { layer } = wasmArtifactOf(parseManifest(manifest, '', spec.reference), spec.reference);
  let signatures: SignatureBlob[] = [];
  if (spec.keys.length > 0) {
    const keys = spec.keys.map((pem, i) => ({
      name: `key ${i + 1}`,
      key: readPublicKey(pem, `key ${i + 1}`),
    }));
    signatures = await fetchSignatures(client, ref, digest);
    checkSignatures(signatures, ref, digest, keys);
  }
  let wasm = cache?.get(layer.digest);
  if (wasm === undefined) {
    wasm = await client.getBlob(ref.repository, layer.digest, layer.size);
    cache?.put(layer.digest, wasm);
  }
  if (wasm.byteLength !== layer.size)
    throw new Error(`Cannot pull ${spec.reference}: its module is not ${layer.size} bytes`);
  return { reference: spec.reference, digest, manifest, wasm, signatures };
}

/** The reason of a pull's failure, for a deployment's `lastFailure`. */
export function pullFailure(error: unknown): string {
  return `the pull failed: ${reasonOf(error)}`;
}
