import type { Readable, Writable } from 'node:stream';
import { encodeFrame, FrameReader } from './frames.ts';
import type { Message } from './messages.ts';

/** Options for {@link readFrames}. */
export interface ReadFramesOptions {
  maxFrameBytes?: number;
  /** Called once, with the first error (a bad frame or a stream error); the stream is then destroyed. */
  onError(error: Error): void;
  /** Called once when the stream ends cleanly between frames. */
  onEnd?(): void;
}

/**
 * Decodes length-prefixed CBOR frames from a byte stream and hands each message to `onMessage`, in order.
 * A malformed or oversized frame ends the stream: a peer that breaks the framing is not read any further.
 */
export function readFrames(
  stream: Readable,
  onMessage: (message: Message) => void,
  options: ReadFramesOptions,
): void {
  const reader = new FrameReader(
    options.maxFrameBytes === undefined ? {} : { maxFrameBytes: options.maxFrameBytes },
  );
  let failed = false;
  const fail = (error: Error): void => {
    if (failed) return;
    failed = true;
    stream.destroy();
    options.onError(error);
  };
  stream.on('data', (chunk: Buffer) => {
    if (failed) return;
    let messages: Message[];
    try {
      messages = reader.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    } catch (error) {
      fail(error as Error);
      return;
    }
    for (const m of messages) {
      if (failed) return;
      onMessage(m);
    }
  });
  stream.on('end', () => {
    if (failed) return;
    try {
      reader.end();
    } catch (error) {
      fail(error as Error);
      return;
    }
    options.onEnd?.();
  });
  stream.on('error', fail);
}

/** Writes one message as a frame; returns the stream's backpressure signal. */
export function writeFrame(stream: Writable, message: Message): boolean {
  return stream.write(encodeFrame(message));
}

/**
 * Reads exactly one frame from the start of a stream and then stops reading, handing back the bytes that came
 * after it. Used where a connection opens with one framed request and then becomes a raw byte relay.
 */
export function readFirstFrame(
  stream: Readable,
  options: { maxFrameBytes?: number; timeoutMs?: number } = {},
): Promise<{ message: Message; rest: Buffer }> {
  const max = options.maxFrameBytes ?? 64 * 1024;
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(
            () => done(new Error('Cannot read the opening frame: the peer sent nothing in time')),
            options.timeoutMs,
          );
    const done = (error: Error | null, value?: { message: Message; rest: Buffer }): void => {
      if (timer) clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      if (error) reject(error);
      else resolve(value!);
    };
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 4) return;
      const length = buffered.readUInt32BE(0);
      if (length > max) {
        stream.pause();
        done(new Error('Cannot read the opening frame: it is larger than allowed'));
        return;
      }
      if (buffered.length < 4 + length) return;
      stream.pause();
      const frame = buffered.subarray(0, 4 + length);
      const rest = buffered.subarray(4 + length);
      try {
        const [message] = new FrameReader({ maxFrameBytes: max }).push(new Uint8Array(frame));
        done(null, { message: message!, rest });
      } catch (error) {
        done(error as Error);
      }
    };
    const onEnd = (): void =>
      done(new Error('Cannot read the opening frame: the peer closed the connection'));
    const onError = (error: Error): void => done(error);
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
  });
}
