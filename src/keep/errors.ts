/**
 * Codes the Keep sends in an `error` frame inside the channel when it refuses a workload or a client. Errors of
 * the WASI host's own module checks (ERR_WASM_*) are passed on with their codes.
 */
export const keepErrorCodes = [
  'ERR_DEPLOY_DIGEST_MISMATCH',
  'ERR_DEPLOY_TOO_LARGE',
  'ERR_DEPLOY_CONFIG_INVALID',
  'ERR_DEPLOY_LISTEN_FAILED',
  'ERR_DEPLOY_CONNECT_FAILED',
  'ERR_ATTACH_REFUSED',
  'ERR_PROTOCOL_UNEXPECTED',
  'ERR_KEEP_INTERNAL',
] as const;

/** A code of {@link keepErrorCodes}. */
export type KeepErrorCode = (typeof keepErrorCodes)[number];

/** A refusal the Keep explains to its client in an `error` frame. */
export class KeepError extends Error {
  readonly code: KeepErrorCode;
  constructor(code: KeepErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KeepError';
    this.code = code;
  }
}
