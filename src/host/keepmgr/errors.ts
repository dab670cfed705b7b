import { type CodeRegistry, DonjonError } from '../../lib/errors.ts';

/**
 * What can stop the Keep Manager itself (not a tenant's request: those are `ApiError`s, answered on the API):
 * its state directory held by another daemon, its address taken, a damaged stored record.
 */
export const KEEPMGR_ERRORS = {
  /** Another live Keep Manager holds the state directory's lock. */
  ERR_STATE_LOCKED: 'host',
  /** The API address could not be bound (in use, not permitted, not local). */
  ERR_LISTEN_FAILED: 'host',
  /** A stored record does not decode: the database was changed by something else, or is damaged. */
  ERR_STORE_ROW_DAMAGED: 'host',
} as const satisfies CodeRegistry;

export type KeepManagerErrorCode = keyof typeof KEEPMGR_ERRORS;

/** The error class of the Keep Manager's own failures; its category follows from the code. */
export class KeepManagerError extends DonjonError<KeepManagerErrorCode> {
  override readonly name = 'KeepManagerError';

  constructor(code: KeepManagerErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, KEEPMGR_ERRORS[code], message, options);
  }
}
