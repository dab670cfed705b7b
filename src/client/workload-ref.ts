// A WORKLOAD argument that names a registry artifact instead of a file: pulled by digest, its signatures
// checked against the tenant's keys, before anything reaches a Keep. The module bytes then go through the
// attested channel like a file's, and the Keep checks their SHA-256 as it always does.
import { existsSync } from 'node:fs';
import {
  type Credentials,
  dockerConfigCredentials,
  looksLikeReference,
  type PulledWorkload,
  parseReference,
  pullWorkload,
  RegistryClient,
  type RegistryFetch,
  type TrustedKey,
} from '../registry/index.ts';

/** How to reach the registry and whom to trust. */
export interface WorkloadRefOptions {
  /** Keys whose cosign signature is accepted (at least one, unless `allowUnsigned`). */
  readonly verifyKeys: readonly TrustedKey[];
  /** Accept a workload without a valid signature. */
  readonly allowUnsigned: boolean;
  /** Plain HTTP to a registry that is not on loopback. */
  readonly plainHttp?: boolean;
  /** Credentials; default: Docker's config file entry for the registry, if any. */
  readonly credentials?: Credentials;
  /** Docker config file to read credentials from (default `$DOCKER_CONFIG` or `~/.docker/config.json`). */
  readonly dockerConfig?: string;
  readonly fetch?: RegistryFetch;
  /** Told what happened: the digest a tag resolved to, the key that verified, an unverified workload. */
  readonly onNote?: (message: string) => void;
}

/**
 * Whether a WORKLOAD argument is a registry reference: no file or directory of that name exists and it
 * parses as `host[:port]/repo[:tag][@sha256:…]` (and does not end in `.wasm`).
 */
export function isWorkloadReference(argument: string): boolean {
  return !existsSync(argument) && looksLikeReference(argument);
}

/**
 * Pulls the workload `reference` names: the tag resolved once to a manifest digest, the signatures checked,
 * the module fetched by digest. Throws the registry's own errors (ERR_WORKLOAD_UNSIGNED and
 * ERR_WORKLOAD_SIGNATURE_INVALID are `refused`).
 */
export async function pullWorkloadReference(
  reference: string,
  options: WorkloadRefOptions,
): Promise<PulledWorkload> {
  const ref = parseReference(reference);
  const credentials = options.credentials ?? dockerConfigCredentials(ref.registry, options.dockerConfig);
  const client = new RegistryClient(ref.registry, {
    ...(options.plainHttp === undefined ? {} : { plainHttp: options.plainHttp }),
    ...(credentials === undefined ? {} : { credentials }),
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
  });
  const pulled = await pullWorkload(client, ref, {
    keys: options.verifyKeys,
    allowUnsigned: options.allowUnsigned,
    onUnverified: (reason) => options.onNote?.(`WARNING: running ${reference} unverified: ${reason}`),
  });
  options.onNote?.(
    `pulled ${reference} as ${pulled.digest}${pulled.signature ? `, signed by ${pulled.signature.keyName}` : ''}`,
  );
  return pulled;
}
