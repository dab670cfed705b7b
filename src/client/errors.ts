/** Stable codes of the client SDK. Evidence failures surface as the attestation or ratls error itself. */
export const clientErrorCodes = [
  'ERR_HOST_UNREACHABLE',
  'ERR_HOST_UNTRUSTED',
  'ERR_HOST_REFUSED',
  'ERR_HOST_RESPONSE_INVALID',
  'ERR_CHANNEL_FAILED',
  'ERR_KEEP_DIED',
  'ERR_CHANNEL_LOST',
  'ERR_KEEP_REFUSED',
  'ERR_CONFIG_INVALID',
] as const;

export type ClientErrorCode = (typeof clientErrorCodes)[number];

/** An error of the client SDK, with the host's own code when the host refused (`hostCode`). */
export class ClientError extends Error {
  readonly code: ClientErrorCode;
  readonly hostCode: string | undefined;
  constructor(code: ClientErrorCode, message: string, options?: { cause?: unknown; hostCode?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ClientError';
    this.code = code;
    this.hostCode = options?.hostCode;
  }
}
