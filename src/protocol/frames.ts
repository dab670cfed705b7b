import type { DecodeLimits } from './cbor.ts';
import { ProtocolError } from './errors.ts';
import { decodeMessageBytes, encodeMessage, type Message } from './messages.ts';

/** Bytes of the big-endian length that precedes every frame's CBOR message. */
export const FRAME_HEADER_BYTES = 4;

/** The largest frame body accepted or produced when no other bound is given: 64 MiB. */
export const defaultMaxFrameBytes = 64 * 1024 * 1024;

/** Options of {@link encodeFrame}. */
export interface EncodeFrameOptions {
  /** Refuse to produce a frame whose body exceeds this many bytes; default 64 MiB. */
  readonly maxFrameBytes?: number;
}

/** Options of {@link FrameReader}. */
export interface FrameReaderOptions {
  /** Largest frame body accepted, checked on the length prefix before any of the body is buffered. */
  readonly maxFrameBytes?: number;
  /** Limits for decoding each body; `maxBytes` defaults to `maxFrameBytes`. */
  readonly limits?: Partial<DecodeLimits>;
}

function resolveMaxFrameBytes(value: number | undefined): number {
  const max = value ?? defaultMaxFrameBytes;
  if (!Number.isSafeInteger(max) || max < 0 || max > 0xffffffff) {
    throw new RangeError(`Cannot use maxFrameBytes: ${String(max)} is not an integer from 0 to 2^32 - 1`);
  }
  return max;
}

/**
 * Encodes one message as a frame: its length as 4 bytes big-endian, then the message in deterministic
 * CBOR. Used on every byte stream of the protocol (the channel inside TLS, the Keep Loader's pipe and
 * socket), where the receiver needs to know where a message ends before decoding it.
 */
export function encodeFrame(message: Message, options: EncodeFrameOptions = {}): Uint8Array {
  const max = resolveMaxFrameBytes(options.maxFrameBytes);
  const body = encodeMessage(message);
  if (body.length > max) {
    throw new ProtocolError(
      'ERR_FRAME_TOO_LARGE',
      `Cannot encode frame: the ${message.type} message takes ${body.length} bytes, more than ${max}`,
    );
  }
  const frame = new Uint8Array(FRAME_HEADER_BYTES + body.length);
  new DataView(frame.buffer).setUint32(0, body.length);
  frame.set(body, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Splits a byte stream into frames and decodes each as a message. Feed it chunks as they arrive, in any
 * sizes; it returns the messages completed by each chunk. A length prefix over `maxFrameBytes` fails at
 * once, before its body is buffered. After any error the reader is closed: the stream cannot be
 * resynchronised, so every later call throws `ERR_FRAME_READER_CLOSED`.
 *
 * @example
 * const reader = new FrameReader();
 * socket.on('data', (chunk) => { for (const m of reader.push(chunk)) handle(m); });
 * socket.on('end', () => reader.end());
 */
export class FrameReader {
  readonly #maxFrameBytes: number;
  readonly #limits: Partial<DecodeLimits>;
  // Unconsumed input, oldest first. Every entry is owned by the reader once push() returns.
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  // Body length of the frame being read, once its prefix is in.
  #expected: number | undefined;
  #failure: unknown;
  #ended = false;

  constructor(options: FrameReaderOptions = {}) {
    this.#maxFrameBytes = resolveMaxFrameBytes(options.maxFrameBytes);
    this.#limits = { ...options.limits, maxBytes: options.limits?.maxBytes ?? this.#maxFrameBytes };
  }

  /** Bytes received and not yet part of a returned message. */
  get bufferedBytes(): number {
    return this.#pendingBytes;
  }

  #checkOpen(action: string): void {
    if (this.#failure !== undefined) {
      throw new ProtocolError('ERR_FRAME_READER_CLOSED', `Cannot ${action}: the reader failed earlier`, {
        cause: this.#failure,
      });
    }
    if (this.#ended)
      throw new ProtocolError('ERR_FRAME_READER_CLOSED', `Cannot ${action}: the reader has ended`);
  }

  #take(n: number): Uint8Array {
    const first = this.#pending[0];
    this.#pendingBytes -= n;
    if (first !== undefined && first.length >= n) {
      if (first.length === n) this.#pending.shift();
      else this.#pending[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const head = this.#pending[0]!;
      const part = Math.min(head.length, n - filled);
      out.set(head.subarray(0, part), filled);
      filled += part;
      if (part === head.length) this.#pending.shift();
      else this.#pending[0] = head.subarray(part);
    }
    return out;
  }

  /**
   * Adds received bytes and returns the messages they complete, in order. Throws a {@link ProtocolError}
   * for an oversized frame (`ERR_FRAME_TOO_LARGE`) or a body that is not a valid message.
   */
  push(chunk: Uint8Array): Message[] {
    if (!(chunk instanceof Uint8Array))
      throw new TypeError('Cannot read frames: the chunk is not a Uint8Array');
    this.#checkOpen('read frames');
    if (chunk.length === 0) return [];
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    const out: Message[] = [];
    try {
      for (;;) {
        if (this.#expected === undefined) {
          if (this.#pendingBytes < FRAME_HEADER_BYTES) break;
          const header = this.#take(FRAME_HEADER_BYTES);
          const length = new DataView(header.buffer, header.byteOffset, FRAME_HEADER_BYTES).getUint32(0);
          if (length > this.#maxFrameBytes) {
            throw new ProtocolError(
              'ERR_FRAME_TOO_LARGE',
              `Cannot read frame: its length ${length} exceeds the limit of ${this.#maxFrameBytes} bytes`,
            );
          }
          this.#expected = length;
        }
        if (this.#pendingBytes < this.#expected) break;
        const body = this.#take(this.#expected);
        this.#expected = undefined;
        out.push(decodeMessageBytes(body, this.#limits));
      }
    } catch (err) {
      this.#failure = err;
      this.#pending = [];
      this.#pendingBytes = 0;
      throw err;
    }
    // Entries before the caller's chunk were consumed first, so what is left of that chunk is the last
    // entry; copy it, as the caller may reuse its buffer.
    const last = this.#pending.length - 1;
    if (last >= 0) this.#pending[last] = this.#pending[last]!.slice();
    return out;
  }

  /** Declares the end of the stream; throws `ERR_FRAME_TRUNCATED` if a frame was left incomplete. */
  end(): void {
    this.#checkOpen('end frames');
    this.#ended = true;
    if (this.#pendingBytes > 0 || this.#expected !== undefined) {
      const state =
        this.#expected === undefined
          ? `${this.#pendingBytes} bytes of a length prefix`
          : `${this.#pendingBytes} of ${this.#expected} bytes of a frame`;
      throw new ProtocolError('ERR_FRAME_TRUNCATED', `Cannot end frames: the stream stopped after ${state}`);
    }
  }
}
