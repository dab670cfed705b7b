/** Stable codes of the attested-TLS certificate layer. */
export const ratlsErrorCodes = [
  'ERR_KEEP_CERT_MALFORMED',
  'ERR_KEEP_CERT_NOT_SELF_SIGNED',
  'ERR_KEEP_CERT_EXPIRED',
  'ERR_KEEP_NOT_ATTESTED',
  'ERR_KEEP_BINDING_MISMATCH',
  'ERR_KEEP_NONCE_MISMATCH',
  'ERR_SERVICE_WORKLOAD_MISMATCH',
  'ERR_SERVICE_CONFIG_MISMATCH',
] as const;

export type RatlsErrorCode = (typeof ratlsErrorCodes)[number];

/** Raised when a Keep's certificate cannot be made, read, or trusted. */
export class RatlsError extends Error {
  readonly code: RatlsErrorCode;
  constructor(code: RatlsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RatlsError';
    this.code = code;
  }
}
