import { type CodeRegistry, DonjonError } from '../../lib/errors.ts';

/**
 * Stable codes of collateral fetching, each with its category (a service that failed or answered badly is
 * `host`). A caller can `switch (err.code)`; the codes are part of the
 * public contract and never change meaning.
 */
export const COLLATERAL_ERRORS = {
  /** The service could not be reached, or it answered with an error status. */
  ERR_COLLATERAL_FETCH_FAILED: 'host',
  /** The service answered 404: it has no such item (wrong product, unknown chip, unknown FMSPC). */
  ERR_COLLATERAL_NOT_FOUND: 'host',
  /** The service did not answer within the time limit, even after the one retry. */
  ERR_COLLATERAL_TIMEOUT: 'host',
  /** An answer or file is not in its documented format (not DER/PEM/JSON, no issuer chain, too large). */
  ERR_COLLATERAL_MALFORMED: 'host',
  /** The item cannot be fetched at all for this evidence (VLEK, masked chip id, unknown product). */
  ERR_COLLATERAL_UNSUPPORTED: 'usage',
} as const satisfies CodeRegistry;

/** A code of {@link COLLATERAL_ERRORS}. */
export type CollateralErrorCode = keyof typeof COLLATERAL_ERRORS;

/** Every {@link CollateralErrorCode}, for registries and exhaustiveness tests. */
export const collateralErrorCodes = Object.keys(COLLATERAL_ERRORS) as readonly CollateralErrorCode[];

/**
 * The one error class of collateral fetching (AMD KDS, Intel PCS, the cache). `url` names the request
 * and `status` the HTTP status when there was one, so a caller can tell the user what failed.
 */
export class CollateralError extends DonjonError<CollateralErrorCode> {
  override readonly name = 'CollateralError';
  declare readonly url?: string;
  declare readonly status?: number;

  constructor(
    code: CollateralErrorCode,
    message: string,
    options?: { cause?: unknown; detail?: string; url?: string; status?: number },
  ) {
    super(code, COLLATERAL_ERRORS[code], message, options);
    if (options?.url !== undefined) this.url = options.url;
    if (options?.status !== undefined) this.status = options.status;
  }
}

/** Whether `value` is a {@link CollateralError}, optionally with the given code. */
export function isCollateralError(value: unknown, code?: CollateralErrorCode): value is CollateralError {
  return value instanceof CollateralError && (code === undefined || value.code === code);
}
