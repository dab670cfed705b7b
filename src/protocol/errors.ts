/**
 * Every code a {@link ProtocolError} can carry. The codes are stable: peers and callers branch on them, and
 * docs/protocol.md documents each one.
 */
export const protocolErrorCodes = [
  'ERR_CBOR_MALFORMED',
  'ERR_CBOR_LIMIT',
  'ERR_CBOR_NONCANONICAL',
  'ERR_CBOR_DUPLICATE_KEY',
  'ERR_CBOR_UNSUPPORTED',
  'ERR_MESSAGE_INVALID',
  'ERR_MESSAGE_UNKNOWN_TYPE',
  'ERR_MESSAGE_UNEXPECTED_TYPE',
  'ERR_MESSAGE_VERSION',
  'ERR_FRAME_TOO_LARGE',
  'ERR_FRAME_TRUNCATED',
  'ERR_FRAME_READER_CLOSED',
] as const;

/** A stable code naming what went wrong in the wire protocol, so `switch (err.code)` narrows. */
export type ProtocolErrorCode = (typeof protocolErrorCodes)[number];

/**
 * The one error class of the protocol area: bytes or values that do not form a valid message under the
 * CBOR profile, the message schema or the framing. Argument mistakes (say, encoding a float) are
 * `TypeError`/`RangeError` instead.
 */
export class ProtocolError extends Error {
  /** Stable, documented code; the message text may change, the code does not. */
  readonly code: ProtocolErrorCode;

  constructor(code: ProtocolErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ProtocolError';
    this.code = code;
  }
}
