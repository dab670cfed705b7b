import { type CodeRegistry, DonjonError } from '../lib/errors.ts';

/**
 * Stable codes of the OCI registry client, the Wasm artifact layout and workload signatures, each with its
 * category. A signature that does not verify is `refused` (exit 3 at the command line), like evidence
 * that does not; what the caller wrote wrong is `usage`; a registry that failed is `host`.
 */
export const REGISTRY_ERRORS = {
  /** The text is not an OCI reference (`host[:port]/repo[:tag][@sha256:...]`). */
  ERR_REFERENCE_INVALID: 'usage',
  /** The registry could not be reached, or did not answer within the time limit. */
  ERR_REGISTRY_UNREACHABLE: 'host',
  /** The registry refused the credentials, or asked for some and none were given. */
  ERR_REGISTRY_AUTH: 'usage',
  /** The registry has no such repository, tag, manifest or blob. */
  ERR_REGISTRY_NOT_FOUND: 'usage',
  /** Plain HTTP was asked of a registry that is not on loopback, without `plainHttp`. */
  ERR_REGISTRY_INSECURE: 'usage',
  /** The registry answered with an unexpected status, a malformed body or one over the size limit. */
  ERR_REGISTRY_PROTOCOL: 'host',
  /** Bytes the registry served do not hash to the digest that names them. */
  ERR_REGISTRY_DIGEST_MISMATCH: 'refused',
  /** The manifest is not a Wasm artifact (CNCF layout, or the older wasm-to-oci one). */
  ERR_ARTIFACT_INVALID: 'usage',
  /** The workload has no signature at all, and unsigned workloads were not allowed. */
  ERR_WORKLOAD_UNSIGNED: 'refused',
  /** The workload has signatures, but none verifies under the given keys for its digest and repository. */
  ERR_WORKLOAD_SIGNATURE_INVALID: 'refused',
  /** A key file is not a PEM public key or a cosign private key of a supported kind. */
  ERR_KEY_INVALID: 'usage',
  /** The passphrase does not open the cosign private key (or none could be read). */
  ERR_KEY_PASSPHRASE: 'usage',
} as const satisfies CodeRegistry;

/** A code of {@link REGISTRY_ERRORS}. */
export type RegistryErrorCode = keyof typeof REGISTRY_ERRORS;

/** Every {@link RegistryErrorCode}, for registries and exhaustiveness tests. */
export const registryErrorCodes = Object.keys(REGISTRY_ERRORS) as readonly RegistryErrorCode[];

/**
 * The one error class of `src/registry`. `url` names the request and `status` the HTTP status when there
 * was one.
 */
export class RegistryError extends DonjonError<RegistryErrorCode> {
  override readonly name = 'RegistryError';
  declare readonly url?: string;
  declare readonly status?: number;

  constructor(
    code: RegistryErrorCode,
    message: string,
    options?: { cause?: unknown; detail?: string; url?: string; status?: number },
  ) {
    super(code, REGISTRY_ERRORS[code], message, options);
    if (options?.url !== undefined) this.url = options.url;
    if (options?.status !== undefined) this.status = options.status;
  }
}

/** Whether `value` is a {@link RegistryError}, optionally with the given code. */
export function isRegistryError(value: unknown, code?: RegistryErrorCode): value is RegistryError {
  return value instanceof RegistryError && (code === undefined || value.code === code);
}
