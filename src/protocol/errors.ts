import { type CodeRegistry, DonjonError, type DonjonErrorOptions } from '../lib/errors.ts';

/**
 * Every code a {@link ProtocolError} can carry. The codes are stable: peers and callers branch on them, and
 * docs/protocol.md documents each one.
 */
export const PROTOCOL_ERRORS = {
  ERR_CBOR_MALFORMED: 'host',
  ERR_CBOR_LIMIT: 'host',
  ERR_CBOR_NONCANONICAL: 'host',
  ERR_CBOR_DUPLICATE_KEY: 'host',
  ERR_CBOR_UNSUPPORTED: 'host',
  ERR_MESSAGE_INVALID: 'host',
  ERR_MESSAGE_UNKNOWN_TYPE: 'host',
  ERR_MESSAGE_UNEXPECTED_TYPE: 'host',
  ERR_MESSAGE_VERSION: 'host',
  ERR_FRAME_TOO_LARGE: 'host',
  ERR_FRAME_TRUNCATED: 'host',
  ERR_FRAME_READER_CLOSED: 'host',
} as const satisfies CodeRegistry;

/** Every code of {@link PROTOCOL_ERRORS}. */
export const protocolErrorCodes = Object.keys(PROTOCOL_ERRORS) as readonly ProtocolErrorCode[];

/** A stable code naming what went wrong in the wire protocol, so `switch (err.code)` narrows. */
export type ProtocolErrorCode = keyof typeof PROTOCOL_ERRORS;

/**
 * The one error class of the protocol area: bytes or values that do not form a valid message under the
 * CBOR profile, the message schema or the framing. Argument mistakes (say, encoding a float) are
 * `TypeError`/`RangeError` instead.
 */
export class ProtocolError extends DonjonError<ProtocolErrorCode> {
  override readonly name = 'ProtocolError';

  constructor(code: ProtocolErrorCode, message: string, options?: DonjonErrorOptions) {
    super(code, PROTOCOL_ERRORS[code], message, options);
  }
}
