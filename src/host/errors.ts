/**
 * The Keep Manager API's error registry: every code a client can receive, with its HTTP status. docs/errors.md
 * documents each one, and a test keeps the two in step.
 */
export const API_ERRORS = {
  ERR_API_UNAUTHORIZED: 401,
  ERR_API_ROUTE_NOT_FOUND: 404,
  ERR_API_METHOD_NOT_ALLOWED: 405,
  ERR_API_MEDIA_TYPE: 415,
  ERR_API_BODY_TOO_LARGE: 413,
  ERR_API_BODY_INVALID: 400,
  ERR_API_BACKEND_UNAVAILABLE: 422,
  ERR_API_LIMIT_EXCEEDED: 422,
  ERR_API_QUOTA_EXCEEDED: 429,
  ERR_API_RATE_LIMITED: 429,
  ERR_KEEP_NOT_FOUND: 404,
  ERR_KEEP_NOT_READY: 409,
  ERR_KEEP_CHANNEL_BUSY: 409,
  ERR_KEEP_STILL_RUNNING: 409,
  ERR_KEEP_START_FAILED: 502,
  ERR_HOST_SHUTTING_DOWN: 503,
  ERR_HOST_INTERNAL: 500,
} as const;

export type ApiErrorCode = keyof typeof API_ERRORS;

/** An error the Keep Manager answers with: a stable code, its HTTP status, and a sentence for the user. */
export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly status: number;
  constructor(code: ApiErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ApiError';
    this.code = code;
    this.status = API_ERRORS[code];
  }
}
