import type { ErrorCategory } from '../lib/errors.ts';

/**
 * The Keep Manager API's error registry: every code a client can receive, with its HTTP status and its
 * category (what the client did wrong is `usage`, what it may not do is `refused`, what the host could not do
 * is `host`). docs/errors.md documents each one, and a test keeps the two in step.
 */
export const API_ERRORS = {
  ERR_API_UNAUTHORIZED: { status: 401, category: 'refused' },
  ERR_API_ROUTE_NOT_FOUND: { status: 404, category: 'usage' },
  ERR_API_METHOD_NOT_ALLOWED: { status: 405, category: 'usage' },
  ERR_API_MEDIA_TYPE: { status: 415, category: 'usage' },
  ERR_API_BODY_TOO_LARGE: { status: 413, category: 'usage' },
  ERR_API_BODY_INVALID: { status: 400, category: 'usage' },
  ERR_API_BACKEND_UNAVAILABLE: { status: 422, category: 'usage' },
  ERR_API_LIMIT_EXCEEDED: { status: 422, category: 'usage' },
  ERR_API_QUOTA_EXCEEDED: { status: 429, category: 'refused' },
  ERR_API_RATE_LIMITED: { status: 429, category: 'refused' },
  ERR_KEEP_NOT_FOUND: { status: 404, category: 'usage' },
  ERR_DEPLOYMENT_NOT_FOUND: { status: 404, category: 'usage' },
  ERR_KEEP_NOT_READY: { status: 409, category: 'host' },
  ERR_KEEP_CHANNEL_BUSY: { status: 409, category: 'host' },
  ERR_KEEP_STILL_RUNNING: { status: 409, category: 'usage' },
  ERR_KEEP_START_FAILED: { status: 502, category: 'host' },
  ERR_HOST_SHUTTING_DOWN: { status: 503, category: 'host' },
  ERR_HOST_INTERNAL: { status: 500, category: 'host' },
} as const satisfies { readonly [code: string]: { status: number; category: ErrorCategory } };

export type ApiErrorCode = keyof typeof API_ERRORS;

/** Whether `code` is one of the API's codes (a client reads them from the wire). */
export function isApiErrorCode(code: string): code is ApiErrorCode {
  return Object.hasOwn(API_ERRORS, code);
}
