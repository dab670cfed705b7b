import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { encodeFrame } from '../../protocol/frames.ts';
import { encodeMessage, type Message } from '../../protocol/messages.ts';
import { readFirstFrame } from '../../protocol/stream.ts';
import { ApiError } from '../errors.ts';
import type { KeepRecord } from './store.ts';

/** The protocol a channel upgrade asks for. */
export const CHANNEL_PROTOCOL = 'donjon-channel/1';

/** Writes an API error on a socket that was never upgraded, and closes it. */
export function refuseUpgrade(socket: Duplex, error: ApiError): void {
  const body = encodeMessage({ v: 1, type: 'error', code: error.code, message: error.message });
  socket.end(
    Buffer.concat([
      Buffer.from(
        `HTTP/1.1 ${error.status} Error\r\ncontent-type: application/cbor\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`,
      ),
      body,
    ]),
  );
}

/**
 * Asks a Keep's Keep Loader for its channel, and resolves with the connection once the Keep Loader has taken it:
 * from then on it carries the tenant's bytes to and from the Keep. Throws an ApiError when the Keep Loader does
 * not answer or refuses.
 */
export async function connectChannel(record: KeepRecord, answerTimeoutMs: number): Promise<Socket> {
  const ldr: Socket = connect(record.socketPath);
  ldr.on('error', () => ldr.destroy());
  ldr.write(encodeFrame({ v: 1, type: 'ldr-channel' }));
  let answer: { message: Message; rest: Buffer };
  try {
    answer = await readFirstFrame(ldr, { timeoutMs: answerTimeoutMs });
  } catch (cause) {
    ldr.destroy();
    throw new ApiError(
      'ERR_KEEP_NOT_READY',
      `Cannot open a channel to Keep ${record.id}: its Keep Loader did not answer`,
      { cause },
    );
  }
  if (answer.message.type === 'error') {
    ldr.destroy();
    const code =
      answer.message.code === 'ERR_KEEP_CHANNEL_BUSY' ? 'ERR_KEEP_CHANNEL_BUSY' : 'ERR_KEEP_NOT_READY';
    throw new ApiError(code, `Cannot open a channel to Keep ${record.id}: ${answer.message.message}`);
  }
  if (answer.rest.length > 0) ldr.unshift(answer.rest);
  return ldr;
}

/**
 * Opens the channel of a Keep for a tenant's upgraded connection: asks its Keep Loader for it
 * ({@link connectChannel}), answers the upgrade (101), then relays raw bytes both ways. The relay sees a
 * plaintext hello, then TLS records between the tenant and the Keep: nothing here can read them. Throws an
 * ApiError (before anything was written to `socket`) when the Keep Loader does not answer or refuses.
 */
export async function openChannel(
  record: KeepRecord,
  socket: Duplex,
  head: Buffer,
  answerTimeoutMs: number,
): Promise<void> {
  const ldr = await connectChannel(record, answerTimeoutMs);
  ldr.on('error', () => socket.destroy());
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${CHANNEL_PROTOCOL}\r\n\r\n`,
  );
  if (head.length > 0) ldr.write(head);
  socket.pipe(ldr);
  ldr.pipe(socket);
  ldr.resume();
  socket.on('close', () => ldr.destroy());
  ldr.on('close', () => socket.destroy());
}
