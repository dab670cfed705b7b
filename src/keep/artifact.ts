// The registry artifact a deploy may carry, checked inside the Keep. A deployment the host recreates without
// its tenant is pulled by the host (the Keep has no network), so nothing the host hands over is taken on
// its word: the manifest must hash to the digest the deployment pinned, its one Wasm layer must name the
// module's SHA-256, and with keys, a cosign signature must verify here, under one of them, naming that digest.
// The keys whose signatures verified become the service's signers, which its certificate binds.
import { createHash } from 'node:crypto';
import { reasonOf } from '../lib/errors.ts';
import type { MessageOf } from '../protocol/messages.ts';
import { signerDigest } from '../ratls/index.ts';
import {
  checkSignatures,
  parseManifest,
  parseReference,
  RegistryError,
  readPublicKey,
  type TrustedKey,
  wasmArtifactOf,
} from '../registry/index.ts';
import { KeepError } from './errors.ts';

/** What a checked artifact proves, for the Keep's certificates and its log. */
export interface CheckedArtifact {
  /** The manifest digest (`sha256:…`). */
  readonly digest: string;
  /** The name of the key whose signature verified, when keys were given. */
  readonly signedBy?: string;
  /**
   * SHA-256 of the DER SubjectPublicKeyInfo of every given key under which a signature of this manifest
   * verified, sorted and without repeats (most often one); present exactly when `signedBy` is.
   */
  readonly signers?: Uint8Array[];
}

function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function mismatch(detail: string): KeepError {
  return new KeepError('ERR_DEPLOY_ARTIFACT_MISMATCH', `Cannot run the workload: ${detail}`);
}

/**
 * Checks a deploy's `artifact` against its module. Throws ERR_DEPLOY_ARTIFACT_MISMATCH when the manifest or
 * the module is not what the pinned digest names, and the registry's ERR_WORKLOAD_UNSIGNED or
 * ERR_WORKLOAD_SIGNATURE_INVALID when keys are given and no signature verifies.
 */
export function checkArtifact(m: MessageOf<'deploy'>): CheckedArtifact | undefined {
  const a = m.artifact;
  if (a === undefined) return undefined;
  let ref: ReturnType<typeof parseReference>;
  try {
    ref = parseReference(a.reference);
  } catch (error) {
    throw mismatch(`its reference ${a.reference} does not parse (${reasonOf(error)})`);
  }
  if (ref.digest !== undefined && ref.digest !== a.digest)
    throw mismatch(`its reference names ${ref.digest}, its deployment ${a.digest}`);
  const served = sha256Digest(a.manifest);
  if (served !== a.digest) throw mismatch(`its manifest is ${served}, the deployment pinned ${a.digest}`);
  let layer: { digest: string; size: number };
  try {
    layer = wasmArtifactOf(parseManifest(a.manifest, '', a.reference), a.reference).layer;
  } catch (error) {
    throw mismatch(`its manifest is not a Wasm artifact (${reasonOf(error)})`);
  }
  const module = sha256Digest(m.wasm);
  if (layer.digest !== module || layer.size !== m.wasm.byteLength)
    throw mismatch(`its module is ${module}, the manifest names ${layer.digest}`);
  const pems = a.keys ?? [];
  if (pems.length === 0) return { digest: a.digest };
  const keys: TrustedKey[] = pems.map((pem, i) => ({
    name: `key ${i + 1}`,
    key: readPublicKey(pem, `key ${i + 1}`),
  }));
  const signatures = a.signatures ?? [];
  // Throws the registry's error, naming every reason, when no key verifies a signature.
  const verified = checkSignatures(signatures, ref, a.digest, keys);
  // Each other key on its own: a relying party may pin any one of those that signed, not only the first found.
  const signers = new Set<string>();
  for (const k of keys) {
    try {
      if (k.name !== verified.keyName) checkSignatures(signatures, ref, a.digest, [k]);
      signers.add(signerDigest(k.key));
    } catch (error) {
      // Not a signer of this manifest.
      if (!(error instanceof RegistryError)) throw error;
    }
  }
  return {
    digest: a.digest,
    signedBy: verified.keyName,
    signers: [...signers].sort().map((hex) => new Uint8Array(Buffer.from(hex, 'hex'))),
  };
}
