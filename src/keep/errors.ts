/**
 * Codes the Keep sends in an `error` frame inside the channel when it refuses a workload or a client. Errors of
 * the WASI host's own module checks (ERR_WASM_*) are passed on with their codes.
 */
export const keepErrorCodes = [
  'ERR_DEPLOY_DIGEST_MISMATCH',
  'ERR_DEPLOY_TOO_LARGE',
  'ERR_ATTACH_REFUSED',
  'ERR_PROTOCOL_UNEXPECTED',
  'ERR_KEEP_INTERNAL',
] as const;

export type KeepErrorCode = (typeof keepErrorCodes)[number];
