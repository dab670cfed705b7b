import { type CodeRegistry, DonjonError, type ErrorCategory } from '../lib/errors.ts';

/**
 * Stable codes of the client SDK, each with its category. Evidence failures surface as the attestation or
 * ratls error itself.
 */
export const CLIENT_ERRORS = {
  /** The Keep Manager could not be reached. */
  ERR_HOST_UNREACHABLE: 'host',
  /** The Keep Manager's TLS certificate is not the pinned one. */
  ERR_HOST_UNTRUSTED: 'refused',
  /** The Keep Manager answered with an error (its code is `hostCode`). */
  ERR_HOST_REFUSED: 'host',
  /** The Keep Manager's answer is not a valid message. */
  ERR_HOST_RESPONSE_INVALID: 'host',
  /** The channel to the Keep could not be opened. */
  ERR_CHANNEL_FAILED: 'host',
  /** The Keep ended before the workload finished. */
  ERR_KEEP_DIED: 'host',
  /** The channel to the Keep was lost; the Keep may still run. */
  ERR_CHANNEL_LOST: 'host',
  /** The Keep refused the workload or the client (its code is `hostCode`). */
  ERR_KEEP_REFUSED: 'host',
  /** The workload's configuration (Enarx.toml, flags) cannot be used. */
  ERR_CONFIG_INVALID: 'usage',
} as const satisfies CodeRegistry;

/** A code of {@link CLIENT_ERRORS}. */
export type ClientErrorCode = keyof typeof CLIENT_ERRORS;

/** Every code of {@link CLIENT_ERRORS}. */
export const clientErrorCodes = Object.keys(CLIENT_ERRORS) as readonly ClientErrorCode[];

/**
 * An error of the client SDK, with the host's or the Keep's own code when one refused (`hostCode`). The
 * category is the code's, unless the refusal's own category is known and more precise (`category` option:
 * a Keep Manager that answered ERR_KEEP_NOT_FOUND is the caller's mistake, not the host's failure).
 */
export class ClientError extends DonjonError<ClientErrorCode> {
  override readonly name = 'ClientError';
  readonly hostCode: string | undefined;

  constructor(
    code: ClientErrorCode,
    message: string,
    options?: { cause?: unknown; detail?: string; hostCode?: string; category?: ErrorCategory },
  ) {
    super(code, options?.category ?? CLIENT_ERRORS[code], message, options);
    this.hostCode = options?.hostCode;
  }
}
