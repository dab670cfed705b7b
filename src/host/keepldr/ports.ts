// The host ports of the workload's listen files. The Keep asks for each with a LISTEN stream on its channel
// pipe; the Keep Loader binds a host port and passes every connection it accepts to the Keep: the socket
// itself over the Keep's IPC channel (hand-off, the default), or its bytes over an ACCEPT stream of the mux
// (relay). Either way the bytes are the workload's and are never read here.
import { createServer, type Server, type Socket } from 'node:net';
import {
  decodeIpc,
  type HandOffAccept,
  handOffAcceptSchema,
  handOffClosedSchema,
  listenRequestSchema,
} from '../../protocol/ipc.ts';
import type { PortMapping } from '../../protocol/messages.ts';
import { MUX_ACCEPT, MUX_BOUND, type MuxSession, type MuxStream } from '../../protocol/mux.ts';
import type { KeepLoaderConfig } from './config.ts';
import { decodeMuxRequest, encodeIpc, splice } from './wire.ts';

/** Connections one listener has open at once, by default. */
export const MAX_CONNECTIONS_PER_LISTENER = 1024;

function u16(n: number): Uint8Array {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(n, 0);
  return b;
}

function u32(n: number): Uint8Array {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

/** What the host ports need of the Keep Loader. */
export interface HostPortsOptions {
  config: Pick<
    KeepLoaderConfig,
    'listenAddress' | 'hostPorts' | 'publish' | 'connections' | 'maxConnectionsPerListener'
  >;
  /** The mux of the Keep's channel pipe, for relayed connections; undefined once it is gone. */
  mux(): MuxSession | undefined;
  /**
   * Sends `socket` to the Keep with its accept message; `failed` runs if the send fails. Returns false,
   * having done nothing, when the Keep's IPC channel is gone.
   */
  send(accept: HandOffAccept, socket: Socket, failed: () => void): boolean;
  /** The bound ports changed (a port was bound or released). */
  changed(): void;
  /** Where a line for the operator goes. */
  log(line: string): void;
}

/** The listen files' host ports of one Keep, and the connections handed to it. */
export class HostPorts {
  readonly #options: HostPortsOptions;
  readonly #listeners = new Map<number, { server: Server; name: string; port: number }>();
  /** Connections handed to the Keep and not yet reported closed: what to do when they are. */
  readonly #handedOver = new Map<number, () => void>();
  #nextHandOff = 1;
  /** Connections accepted and not yet closed, over every listener. */
  #open = 0;
  /** Set by {@link drain}: no listener binds or accepts any more. */
  #draining = false;
  /** Waiting for `#open` to reach 0 (a drain). */
  readonly #idle: (() => void)[] = [];

  constructor(options: HostPortsOptions) {
    this.#options = options;
  }

  /** The bound ports, by listen file name. */
  mappings(): PortMapping[] {
    return [...this.#listeners.values()].map((l) => ({ name: l.name, port: l.port }));
  }

  /**
   * Binds a host port for one of the workload's listen files (a LISTEN stream from the Keep) and passes its
   * connections to the Keep.
   */
  listen(stream: MuxStream, payload: Uint8Array): void {
    stream.on('error', () => {});
    const request = decodeMuxRequest(listenRequestSchema, payload, 'LISTEN request');
    if (request === undefined || request.port > 65535) {
      stream.reset('a LISTEN request must be { name, port, addr }');
      return;
    }
    const { name, port, addr } = request;
    const config = this.#options.config;
    const max = config.maxConnectionsPerListener ?? MAX_CONNECTIONS_PER_LISTENER;
    let open = 0;
    const closed = (): void => {
      open--;
      this.#closedOne();
    };
    if (this.#draining) {
      stream.reset('the Keep Loader is draining: it binds no more ports');
      return;
    }
    // Paused: the bytes of a connection are read by the Keep, not here.
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (socket) => {
      const mux = this.#options.mux();
      if (!mux || stream.destroyed || open >= max) {
        socket.destroy();
        return;
      }
      open++;
      this.#open++;
      if (this.#handOver(socket, stream.id, closed)) return;
      socket.once('close', closed);
      splice(socket, mux.open(MUX_ACCEPT, u32(stream.id)));
    });
    // The tenant's --publish for this file wins; else the file's own port, where the policy allows it.
    const published = config.publish?.find((p) => p.name === name);
    const policy = config.hostPorts ?? 'prefer';
    let hostPort = published?.hostPort ?? (policy === 'any' ? 0 : port);
    // Only the file's own port under 'prefer' may give way to any free one; a port asked for is that port.
    let mayFallBack = published === undefined && policy === 'prefer' && hostPort !== 0;
    const bind = (at: string, retry: boolean): void => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        // A host without IPv6 still serves "::" files, on every IPv4 interface.
        if (retry && at === '::' && (error.code === 'EAFNOSUPPORT' || error.code === 'EADDRNOTAVAIL')) {
          bind('0.0.0.0', false);
          return;
        }
        if (mayFallBack && (error.code === 'EADDRINUSE' || error.code === 'EACCES')) {
          mayFallBack = false;
          hostPort = 0;
          bind(at, retry);
          return;
        }
        stream.reset(`${error.code ?? 'error'} binding ${at} port ${hostPort}`);
      });
      server.listen(hostPort, at, () => {
        if (stream.destroyed || this.#draining) {
          server.close();
          return;
        }
        const bound = (server.address() as { port: number }).port;
        this.#listeners.set(stream.id, { server, name, port: bound });
        stream.sendControl(MUX_BOUND, u16(bound));
        this.#options.changed();
      });
    };
    bind(config.listenAddress ?? addr, true);
    stream.on('close', () => {
      // Like closing a listening socket: connections already accepted go on.
      server.close();
      if (this.#listeners.delete(stream.id)) this.#options.changed();
    });
    stream.resume();
  }

  /**
   * A message from the Keep on its IPC channel: only that a handed-over connection closed. Anything else is
   * logged and ignored.
   */
  message(value: unknown): void {
    let id: number;
    try {
      ({ id } = decodeIpc(handOffClosedSchema, value, 'hand-off'));
    } catch (error) {
      this.#options.log(`ignored a message from the Keep: ${(error as Error).message}`);
      return;
    }
    const done = this.#handedOver.get(id);
    this.#handedOver.delete(id);
    done?.();
  }

  /** Closes every listener: the Keep has gone, and the connections it held went with it. */
  closeAll(): void {
    for (const l of this.#listeners.values()) l.server.close();
    this.#listeners.clear();
    this.#handedOver.clear();
    this.#open = 0;
    this.#wakeIdle();
  }

  /**
   * Stops accepting: every listener closes (a new connection is refused by the kernel) and no port is bound
   * any more, while the connections already accepted go on. Resolves once the last of them has closed.
   */
  drain(): Promise<void> {
    this.#draining = true;
    if (this.#listeners.size > 0) {
      for (const l of this.#listeners.values()) l.server.close();
      this.#listeners.clear();
      this.#options.changed();
    }
    if (this.#open === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #closedOne(): void {
    if (this.#open > 0) this.#open--;
    if (this.#open === 0) this.#wakeIdle();
  }

  #wakeIdle(): void {
    for (const wake of this.#idle.splice(0)) wake();
  }

  /**
   * Passes an accepted connection to the Keep process over its IPC channel: from then on the Keep owns the
   * socket and this process holds none of it. `closed` runs once the Keep reports the connection closed (or the
   * hand-off failed). Returns false, having done nothing, when connections are relayed instead or the Keep's IPC
   * channel is gone.
   */
  #handOver(socket: Socket, listener: number, closed: () => void): boolean {
    if (this.#options.config.connections === 'relay') return false;
    const id = this.#nextHandOff++;
    const accept = encodeIpc(handOffAcceptSchema, { t: 'accept', listener, id }, 'hand-off');
    this.#handedOver.set(id, closed);
    const sent = this.#options.send(accept, socket, () => {
      socket.destroy();
      const done = this.#handedOver.get(id);
      this.#handedOver.delete(id);
      done?.();
    });
    if (!sent) this.#handedOver.delete(id);
    return sent;
  }
}
