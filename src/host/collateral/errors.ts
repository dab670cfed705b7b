/**
 * Stable codes of collateral fetching. A caller can `switch (err.code)`; the codes are part of the
 * public contract and never change meaning.
 */
export type CollateralErrorCode =
  /** The service could not be reached, or it answered with an error status. */
  | 'ERR_COLLATERAL_FETCH_FAILED'
  /** The service answered 404: it has no such item (wrong product, unknown chip, unknown FMSPC). */
  | 'ERR_COLLATERAL_NOT_FOUND'
  /** The service did not answer within the time limit, even after the one retry. */
  | 'ERR_COLLATERAL_TIMEOUT'
  /** An answer or file is not in its documented format (not DER/PEM/JSON, no issuer chain, too large). */
  | 'ERR_COLLATERAL_MALFORMED'
  /** The item cannot be fetched at all for this evidence (VLEK, masked chip id, unknown product). */
  | 'ERR_COLLATERAL_UNSUPPORTED';

/** Every {@link CollateralErrorCode}, for registries and exhaustiveness tests. */
export const collateralErrorCodes: readonly CollateralErrorCode[] = [
  'ERR_COLLATERAL_FETCH_FAILED',
  'ERR_COLLATERAL_NOT_FOUND',
  'ERR_COLLATERAL_TIMEOUT',
  'ERR_COLLATERAL_MALFORMED',
  'ERR_COLLATERAL_UNSUPPORTED',
];

/**
 * The one error class of collateral fetching (AMD KDS, Intel PCS, the cache). `url` names the request
 * and `status` the HTTP status when there was one, so a caller can tell the user what failed.
 */
export class CollateralError extends Error {
  readonly code: CollateralErrorCode;
  declare readonly url?: string;
  declare readonly status?: number;

  constructor(
    code: CollateralErrorCode,
    message: string,
    options?: { cause?: unknown; url?: string; status?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CollateralError';
    this.code = code;
    if (options?.url !== undefined) this.url = options.url;
    if (options?.status !== undefined) this.status = options.status;
  }
}

/** Whether `value` is a {@link CollateralError}, optionally with the given code. */
export function isCollateralError(value: unknown, code?: CollateralErrorCode): value is CollateralError {
  return value instanceof CollateralError && (code === undefined || value.code === code);
}
