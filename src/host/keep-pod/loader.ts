// The pod's side of its Keep Loader's unix socket, in the same frames the Keep Manager speaks: a watch that
// hears every state of the Keep, the drain (the listen files stop accepting; the answer is the connection
// closing once the connections already accepted have closed), and the stop.
import { connect, type Socket } from 'node:net';
import { encodeFrame } from '../../protocol/frames.ts';
import type { MessageOf } from '../../protocol/messages.ts';
import { readFrames } from '../../protocol/stream.ts';

function open(socketPath: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    socket.once('connect', () => {
      socket.off('error', reject);
      socket.on('error', () => socket.destroy());
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/**
 * Watches the Keep Loader on `socketPath`: `onEvent` hears each `ldr-event`, `onClose` once when the watch
 * ends (the Keep Loader is ending). Rejects when the socket does not accept the connection (not there yet).
 */
export async function watchLoader(
  socketPath: string,
  onEvent: (event: MessageOf<'ldr-event'>) => void,
  onClose: () => void,
): Promise<Socket> {
  const socket = await open(socketPath);
  socket.write(encodeFrame({ v: 1, type: 'ldr-watch' }));
  readFrames(
    socket,
    (m) => {
      if (m.type === 'ldr-event') onEvent(m);
    },
    { onError: () => socket.destroy(), onEnd: () => socket.destroy() },
  );
  socket.once('close', onClose);
  return socket;
}

/**
 * Asks the Keep Loader to stop accepting on the listen files; resolves once it answers that the connections
 * already accepted have closed (it closes the connection), or when it cannot be reached.
 */
export async function drainLoader(socketPath: string): Promise<void> {
  let socket: Socket;
  try {
    socket = await open(socketPath);
  } catch {
    return;
  }
  await new Promise<void>((resolve) => {
    socket.once('close', () => resolve());
    socket.resume();
    socket.write(encodeFrame({ v: 1, type: 'ldr-drain' }));
  });
}

/** Asks the Keep Loader to stop its Keep; false when it cannot be reached. */
export async function stopLoader(socketPath: string): Promise<boolean> {
  try {
    const socket = await open(socketPath);
    socket.end(encodeFrame({ v: 1, type: 'ldr-stop' }));
    return true;
  } catch {
    return false;
  }
}
