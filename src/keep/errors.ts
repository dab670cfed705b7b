import { type CodeRegistry, DonjonError, type DonjonErrorOptions } from '../lib/errors.ts';

/**
 * Codes the Keep sends in an `error` frame inside the channel when it refuses a workload or a client, each with
 * its category. Errors of the WASI host's own module checks (ERR_WASM_*) are passed on with their codes.
 */
export const KEEP_ERRORS = {
  /** The workload's bytes do not match the digest the client sent: the host changed them. */
  ERR_DEPLOY_DIGEST_MISMATCH: 'host',
  /** A registry artifact whose manifest or layer does not match the digests the deployment pinned. */
  ERR_DEPLOY_ARTIFACT_MISMATCH: 'host',
  /** The workload is larger than this host accepts. */
  ERR_DEPLOY_TOO_LARGE: 'usage',
  /** The deploy's descriptor table, directories or limits cannot be used. */
  ERR_DEPLOY_CONFIG_INVALID: 'usage',
  /** A listen file could not be bound on the host. */
  ERR_DEPLOY_LISTEN_FAILED: 'host',
  /** A connect file could not be opened by the host. */
  ERR_DEPLOY_CONNECT_FAILED: 'host',
  /** An attach from a client that did not deploy the workload. */
  ERR_ATTACH_REFUSED: 'refused',
  /** A message the Keep does not expect at this point of the channel. */
  ERR_PROTOCOL_UNEXPECTED: 'host',
  /** The Keep failed in a way that is not the workload's doing. */
  ERR_KEEP_INTERNAL: 'internal',
} as const satisfies CodeRegistry;

/** A code of {@link KEEP_ERRORS}. */
export type KeepErrorCode = keyof typeof KEEP_ERRORS;

/** Every code of {@link KEEP_ERRORS}. */
export const keepErrorCodes = Object.keys(KEEP_ERRORS) as readonly KeepErrorCode[];

/** A refusal the Keep explains to its client in an `error` frame. */
export class KeepError extends DonjonError<KeepErrorCode> {
  override readonly name = 'KeepError';

  constructor(code: KeepErrorCode, message: string, options?: DonjonErrorOptions) {
    super(code, KEEP_ERRORS[code], message, options);
  }
}
