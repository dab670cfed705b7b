import { Duplex, type Writable } from 'node:stream';
import { ProtocolError } from './errors.ts';

/**
 * Multiplexing of many byte streams over the one pipe between a Keep Loader and its Keep, so that a Keep can
 * serve one attested channel after another (attach after a client went away) on the same pipe. Each frame is
 * `[kind u8][stream id u32 BE][length u32 BE][payload]`. The payload of a channel stream is TLS records
 * (after one plaintext hello): the Keep Loader forwards it and cannot read it.
 */
export const MUX_OPEN = 1;
export const MUX_DATA = 2;
export const MUX_END = 3;
export const MUX_RESET = 4;

const HEADER = 9;
/** Largest payload of one frame; larger writes are split. */
export const MUX_MAX_PAYLOAD = 256 * 1024;

export type MuxFrame = { kind: 1 | 2 | 3 | 4; id: number; payload: Uint8Array };

/** Encodes one frame. */
export function encodeMuxFrame(
  kind: MuxFrame['kind'],
  id: number,
  payload: Uint8Array = new Uint8Array(0),
): Buffer {
  const frame = Buffer.allocUnsafe(HEADER + payload.length);
  frame.writeUInt8(kind, 0);
  frame.writeUInt32BE(id, 1);
  frame.writeUInt32BE(payload.length, 5);
  frame.set(payload, HEADER);
  return frame;
}

/** Incremental decoder of mux frames; throws ProtocolError on a malformed header. */
export class MuxReader {
  #buffer: Buffer = Buffer.alloc(0);

  push(chunk: Uint8Array): MuxFrame[] {
    this.#buffer = this.#buffer.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.#buffer, chunk]);
    const frames: MuxFrame[] = [];
    let at = 0;
    while (this.#buffer.length - at >= HEADER) {
      const kind = this.#buffer.readUInt8(at);
      const id = this.#buffer.readUInt32BE(at + 1);
      const length = this.#buffer.readUInt32BE(at + 5);
      if (kind < MUX_OPEN || kind > MUX_RESET) {
        throw new ProtocolError('ERR_MESSAGE_UNKNOWN_TYPE', `Cannot read a mux frame: unknown kind ${kind}`);
      }
      if (length > MUX_MAX_PAYLOAD) {
        throw new ProtocolError(
          'ERR_FRAME_TOO_LARGE',
          `Cannot read a mux frame: ${length} bytes is over the limit`,
        );
      }
      if (this.#buffer.length - at < HEADER + length) break;
      const payload = this.#buffer.subarray(at + HEADER, at + HEADER + length);
      frames.push({ kind: kind as MuxFrame['kind'], id, payload: new Uint8Array(payload) });
      at += HEADER + length;
    }
    this.#buffer = this.#buffer.subarray(at);
    return frames;
  }
}

/**
 * One multiplexed stream as a Duplex: writes become DATA frames (honouring the pipe's backpressure), end()
 * sends END, destroy() sends RESET. The owner feeds incoming payloads with `receive` and `receiveEnd`.
 */
export class MuxStream extends Duplex {
  readonly id: number;
  readonly #pipe: Writable;
  #closedRemotely = false;

  constructor(pipe: Writable, id: number) {
    super({ allowHalfOpen: true });
    this.id = id;
    this.#pipe = pipe;
  }

  receive(payload: Uint8Array): void {
    this.push(payload);
  }

  receiveEnd(): void {
    this.push(null);
  }

  receiveReset(): void {
    this.#closedRemotely = true;
    this.destroy();
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    let ok = true;
    for (let i = 0; i < chunk.length; i += MUX_MAX_PAYLOAD) {
      ok = this.#pipe.write(encodeMuxFrame(MUX_DATA, this.id, chunk.subarray(i, i + MUX_MAX_PAYLOAD)));
    }
    if (ok) callback();
    else this.#pipe.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#pipe.write(encodeMuxFrame(MUX_END, this.id));
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#closedRemotely && !this.writableFinished && this.#pipe.writable) {
      this.#pipe.write(encodeMuxFrame(MUX_RESET, this.id));
    }
    callback(error);
  }
}
