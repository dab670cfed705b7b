// The workload's connect files: outbound TCP connections the Keep asks the host to open. The Keep Loader
// opens the connection and joins it to the Keep's CONNECT stream; the bytes (TLS for a tls file) are never
// read here.
import { connect as tcpConnect } from 'node:net';
import { connectRequestSchema } from '../../protocol/ipc.ts';
import { MUX_BOUND, type MuxStream } from '../../protocol/mux.ts';
import { decodeMuxRequest, splice } from './wire.ts';

/** How outbound connections are opened. */
export interface ConnectOptions {
  /** Refuse every connect file (the host's `denyConnect`). */
  deny: boolean;
  /** How long a connection may take to open (`TIMEOUTS.connect`). */
  timeoutMs: number;
}

/**
 * Opens an outbound connection for one of the workload's connect files and joins it to `stream`; resets the
 * stream with a reason when the request is refused, malformed or the connection fails.
 */
export function connectOut(stream: MuxStream, payload: Uint8Array, options: ConnectOptions): void {
  stream.on('error', () => {});
  if (options.deny) {
    stream.reset('this host does not open outbound connections');
    return;
  }
  const request = decodeMuxRequest(connectRequestSchema, payload, 'CONNECT request');
  if (request === undefined || request.host === '' || request.port < 1 || request.port > 65535) {
    stream.reset('a CONNECT request must be { host, port }');
    return;
  }
  const socket = tcpConnect({
    host: request.host,
    port: request.port,
    allowHalfOpen: true,
    noDelay: true,
    timeout: options.timeoutMs,
  });
  const fail = (why: string): void => {
    socket.destroy();
    stream.reset(why);
  };
  socket.once('timeout', () => fail('the connection timed out'));
  socket.once('error', (error: NodeJS.ErrnoException) => fail(error.code ?? error.message));
  socket.once('connect', () => {
    socket.setTimeout(0);
    socket.removeAllListeners('timeout');
    socket.removeAllListeners('error');
    stream.sendControl(MUX_BOUND);
    splice(socket, stream);
  });
  stream.once('close', () => {
    if (socket.connecting) socket.destroy();
  });
}
