import { DonjonError, type DonjonErrorOptions } from '../lib/errors.ts';
import { API_ERRORS, type ApiErrorCode } from '../protocol/api-errors.ts';

// The registry is the API's contract with its clients, so it lives in the protocol, where the client reads it too.
export { API_ERRORS, type ApiErrorCode, isApiErrorCode } from '../protocol/api-errors.ts';

/** An error the Keep Manager answers with: a stable code, its HTTP status, and a sentence for the user. */
export class ApiError extends DonjonError<ApiErrorCode> {
  override readonly name = 'ApiError';
  readonly status: number;

  constructor(code: ApiErrorCode, message: string, options?: DonjonErrorOptions) {
    super(code, API_ERRORS[code].category, message, options);
    this.status = API_ERRORS[code].status;
  }
}
