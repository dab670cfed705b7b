// What several parts of the Keep Loader share at their boundaries: joining a socket to a mux stream, and
// checking what crosses to and from the Keep against the declarations of src/protocol/ipc.ts.
import type { Socket } from 'node:net';
import { decode } from '../../protocol/cbor.ts';
import { decodeIpc } from '../../protocol/ipc.ts';
import type { MuxStream } from '../../protocol/mux.ts';
import { checkValue, type Infer, type Schema } from '../../protocol/schema.ts';

/** How much of a LISTEN or CONNECT request is decoded at most: a small map of short strings. */
const REQUEST_LIMITS = { maxBytes: 4096, maxDepth: 2, maxItems: 8, maxStringBytes: 1024 };

/**
 * Decodes the CBOR payload of a mux request from the Keep and checks it against `schema`; undefined when it
 * is not one (the caller resets the stream).
 */
export function decodeMuxRequest<S extends Schema>(
  schema: S,
  payload: Uint8Array,
  what: string,
): Infer<S> | undefined {
  try {
    return decodeIpc(schema, decode(payload, REQUEST_LIMITS), what);
  } catch {
    return undefined;
  }
}

/**
 * Checks a value this process sends to the Keep against its schema, as the Keep will on receipt, and returns
 * the checked copy: what is sent is exactly what the declaration allows.
 */
export function encodeIpc<S extends Schema>(schema: S, value: Infer<S>, what: string): Infer<S> {
  return checkValue({ action: 'encode', type: what }, '', value, schema) as Infer<S>;
}

/**
 * Joins a TCP or unix socket and a mux stream both ways. A clean close on one side (both directions ended)
 * lets the other finish on its own; anything else tears the other down too.
 */
export function splice(socket: Socket, stream: MuxStream): void {
  socket.pipe(stream);
  stream.pipe(socket);
  socket.on('error', () => socket.destroy());
  stream.on('error', () => stream.destroy());
  socket.on('close', () => {
    if (!(socket.readableEnded && socket.writableFinished)) stream.destroy();
  });
  stream.on('close', () => {
    if (!(stream.readableEnded && stream.writableFinished)) socket.destroy();
  });
}
