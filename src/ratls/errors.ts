import { type CodeRegistry, DonjonError, type DonjonErrorOptions } from '../lib/errors.ts';

/**
 * Stable codes of the attested-TLS certificate layer, each with its category. A certificate that cannot be
 * read or trusted is a refusal of the Keep or service that presented it.
 */
export const RATLS_ERRORS = {
  ERR_KEEP_CERT_MALFORMED: 'refused',
  ERR_KEEP_CERT_NOT_SELF_SIGNED: 'refused',
  ERR_KEEP_CERT_EXPIRED: 'refused',
  ERR_KEEP_NOT_ATTESTED: 'refused',
  ERR_KEEP_BINDING_MISMATCH: 'refused',
  ERR_KEEP_NONCE_MISMATCH: 'refused',
  ERR_SERVICE_WORKLOAD_MISMATCH: 'refused',
  ERR_SERVICE_CONFIG_MISMATCH: 'refused',
  ERR_SERVICE_SIGNER_MISMATCH: 'refused',
} as const satisfies CodeRegistry;

/** A code of {@link RATLS_ERRORS}. */
export type RatlsErrorCode = keyof typeof RATLS_ERRORS;

/** Every code of {@link RATLS_ERRORS}. */
export const ratlsErrorCodes = Object.keys(RATLS_ERRORS) as readonly RatlsErrorCode[];

/** Raised when a Keep's certificate cannot be made, read, or trusted. */
export class RatlsError extends DonjonError<RatlsErrorCode> {
  override readonly name = 'RatlsError';

  constructor(code: RatlsErrorCode, message: string, options?: DonjonErrorOptions) {
    super(code, RATLS_ERRORS[code], message, options);
  }
}
