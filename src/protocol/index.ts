/**
 * Donjon's wire protocol: the CBOR profile, the message types and the framing used on every byte stream.
 * docs/protocol.md explains it; docs/protocol.cddl specifies it.
 */

export { type CborMap, type CborValue, type DecodeLimits, decode, defaultLimits, encode } from './cbor.ts';
export { ProtocolError, type ProtocolErrorCode, protocolErrorCodes } from './errors.ts';
export {
  defaultMaxFrameBytes,
  type EncodeFrameOptions,
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameReader,
  type FrameReaderOptions,
} from './frames.ts';
export {
  type Backend,
  decodeMessage,
  decodeMessageAs,
  decodeMessageBytes,
  encodeMessage,
  type KeepState,
  type Limits,
  type Message,
  type MessageOf,
  type MessageType,
  messageTypes,
} from './messages.ts';
export { PROTOCOL_VERSION } from './schema.ts';
