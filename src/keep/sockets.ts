import { isIP, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SecureContext } from 'node:tls';
import { encode } from '../protocol/cbor.ts';
import {
  connectRequestSchema,
  decodeIpc,
  type HandOffClosed,
  handOffAcceptSchema,
  handOffClosedSchema,
  listenRequestSchema,
} from '../protocol/ipc.ts';
import type { PortMapping } from '../protocol/messages.ts';
import { MUX_CONNECT, MUX_LISTEN, type MuxSession, type MuxStream } from '../protocol/mux.ts';
import { uint } from '../protocol/schema.ts';
import type { NormalizedFile } from '../protocol/workload.ts';
import type { WasiRun } from '../wasi/index.ts';
import { KeepError } from './errors.ts';
import { KEEP_TIMEOUTS } from './timeouts.ts';
import { nodeTls } from './tls.ts';

const HOST_ANSWER_MS = KEEP_TIMEOUTS.hostAnswerMs;
const HANDSHAKE_MS = KEEP_TIMEOUTS.serviceHandshakeMs;
/** Connections completed before the workload runs, per listener, beyond which more are refused. */
const MAX_EARLY = 128;

type ListenFile = Extract<NormalizedFile, { kind: 'listen' }>;
type ConnectFile = Extract<NormalizedFile, { kind: 'connect' }>;

interface Listener {
  /** The listen file's descriptor (its index in the table). */
  readonly fd: number;
  readonly file: ListenFile;
  readonly stream: MuxStream;
  /** Connections ready before the workload ran. */
  readonly early: Duplex[];
}

/** What `tls` files need: the service certificate's context, and its key and certificate for client auth. */
export interface ServiceTls {
  context(): SecureContext;
  key: string;
  cert(): string;
}

/**
 * Reads one message of the Keep's IPC channel, on which the Keep Loader hands over the connections it accepts
 * on listen files: `{ t: 'accept', listener, id }` with the socket attached. `listener` is the id of the file's
 * LISTEN stream; `id` names the hand-off, and once the connection has closed the Keep answers
 * `{ t: 'closed', id }`, so that the Keep Loader can count a listener's open connections. The host is not
 * trusted: a socket that comes with a message of any other shape is closed, as is any other kind of handle.
 */
export function receiveHandOff(
  m: unknown,
  handle: unknown,
  take: (listener: number, socket: Socket) => void,
  report: (id: number) => void = reportClosed,
): void {
  if (!(handle instanceof Socket)) {
    closeHandle(handle);
    return;
  }
  // A listen file's connection ends one direction at a time.
  handle.allowHalfOpen = true;
  handle.on('error', () => handle.destroy());
  // The hand-off is reported by the id it came with, whatever else is wrong with it, so that the Keep Loader's
  // count of open connections stays true.
  const id = handOffId(m);
  if (id !== undefined) handle.once('close', () => report(id));
  let accept: { listener: number };
  try {
    accept = decodeIpc(handOffAcceptSchema, m, 'hand-off');
  } catch {
    handle.destroy();
    return;
  }
  take(accept.listener, handle);
}

/** The `id` of a hand-off message, if it has a well-formed one. */
function handOffId(m: unknown): number | undefined {
  if (typeof m !== 'object' || m === null || !Object.hasOwn(m, 'id')) return undefined;
  try {
    return decodeIpc(uint, (m as { id?: unknown }).id, 'hand-off id');
  } catch {
    return undefined;
  }
}

/** Tells the Keep Loader, if it is still there, that the connection of hand-off `id` closed. */
function reportClosed(id: number): void {
  const closed: HandOffClosed = decodeIpc(handOffClosedSchema, { t: 'closed', id }, 'hand-off closed');
  if (process.connected) process.send?.(closed, undefined, {}, () => {});
}

/** Closes a handle that is not a socket (a server, a datagram socket, a raw handle). */
function closeHandle(handle: unknown): void {
  if (typeof handle !== 'object' || handle === null) return;
  const close = (handle as { close?: unknown }).close;
  if (typeof close !== 'function') return;
  try {
    (close as () => void).call(handle);
  } catch {
    // nothing more can be done with it
  }
}

function waitBound(stream: MuxStream, what: string): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stream.destroy();
      done(new Error(`the host did not answer in time (${what})`));
    }, HOST_ANSWER_MS);
    const done = (error: Error | null, payload?: Uint8Array): void => {
      clearTimeout(timer);
      stream.off('bound', onBound);
      stream.off('close', onClose);
      if (error) reject(error);
      else resolve(payload!);
    };
    const onBound = (payload: Uint8Array): void => done(null, payload);
    const onClose = (): void => done(new Error(stream.resetReason ?? `the host refused (${what})`));
    stream.on('bound', onBound);
    stream.on('close', onClose);
  });
}

/**
 * The workload's sockets, on the Keep's side: listen files become host ports the Keep Loader binds, and each
 * connection it accepts there either arrives here as the TCP socket itself, handed over on the Keep's IPC
 * channel, or is relayed as a mux stream; connect files become connections the Keep Loader opens on the Keep's
 * behalf (the Keep itself has no network). `tls` files are terminated here, with the Keep's key, so the host
 * sees only ciphertext; the workload sees plaintext either way.
 */
export class KeepSockets {
  readonly #session: MuxSession;
  readonly #listeners = new Map<number, Listener>();
  #run: WasiRun | undefined;
  #tls: ServiceTls | undefined;
  #closed = false;

  constructor(session: MuxSession) {
    this.#session = session;
  }

  /**
   * Asks the Keep Loader to bind a host port for each listen file; resolves to the ports it reports.
   * Throws {@link KeepError} `ERR_DEPLOY_LISTEN_FAILED`.
   */
  async listen(files: readonly NormalizedFile[], tls: ServiceTls | undefined): Promise<PortMapping[]> {
    this.#tls = tls;
    const ports: PortMapping[] = [];
    for (const [fd, file] of files.entries()) {
      if (file.kind !== 'listen') continue;
      const request = decodeIpc(
        listenRequestSchema,
        { name: file.name, port: file.port, addr: file.addr },
        'listen request',
      );
      const stream = this.#session.open(MUX_LISTEN, encode(request));
      stream.on('error', () => {});
      // Known before the answer: a connection handed over on the IPC channel may overtake BOUND on the pipe.
      this.#listeners.set(stream.id, { fd, file, stream, early: [] });
      let payload: Uint8Array;
      try {
        payload = await waitBound(stream, `listen ${file.name}`);
      } catch (error) {
        this.close();
        throw new KeepError(
          'ERR_DEPLOY_LISTEN_FAILED',
          `Cannot listen on ${file.name} (port ${file.port}): ${(error as Error).message}`,
          { cause: error },
        );
      }
      const port = payload.length === 2 ? Buffer.from(payload).readUInt16BE(0) : 0;
      ports.push({ name: file.name, port });
    }
    return ports;
  }

  /**
   * Opens each connect file's connection through the Keep Loader (and its TLS, verified against the public
   * roots by the file's host name). Resolves to the streams by descriptor. Throws {@link KeepError}
   * `ERR_DEPLOY_CONNECT_FAILED`.
   */
  async connect(files: readonly NormalizedFile[]): Promise<Map<number, Duplex>> {
    const out = new Map<number, Duplex>();
    try {
      for (const [fd, file] of files.entries()) {
        if (file.kind !== 'connect') continue;
        out.set(fd, await this.#connectOne(file));
      }
    } catch (error) {
      for (const s of out.values()) s.destroy();
      throw error;
    }
    return out;
  }

  async #connectOne(file: ConnectFile): Promise<Duplex> {
    const request = decodeIpc(connectRequestSchema, { host: file.host, port: file.port }, 'connect request');
    const stream = this.#session.open(MUX_CONNECT, encode(request));
    stream.on('error', () => {});
    const fail = (error: unknown): KeepError =>
      new KeepError(
        'ERR_DEPLOY_CONNECT_FAILED',
        `Cannot connect ${file.name} to ${file.host}:${file.port}: ${(error as Error).message}`,
        { cause: error },
      );
    try {
      await waitBound(stream, `connect ${file.name}`);
    } catch (error) {
      throw fail(error);
    }
    if (file.prot === 'tcp') return stream;
    const tls = this.#tls;
    return new Promise<Duplex>((resolve, reject) => {
      const socket = nodeTls().connect({
        socket: stream,
        ...(isIP(file.host) === 0 ? { servername: file.host } : {}),
        host: file.host,
        minVersion: 'TLSv1.2',
        // The Keep's service certificate, for a server that asks who is calling.
        ...(tls ? { key: tls.key, cert: tls.cert() } : {}),
      });
      const timer = setTimeout(
        () => socket.destroy(new Error('the TLS handshake took too long')),
        HOST_ANSWER_MS,
      );
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        socket.on('error', () => socket.destroy());
        resolve(socket);
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        stream.destroy();
        reject(fail(error));
      });
    });
  }

  /**
   * A connection the Keep Loader accepted and relays as a mux stream, on the listener whose LISTEN stream's id
   * is the ACCEPT payload.
   */
  accepted(stream: MuxStream, payload: Uint8Array): void {
    stream.on('error', () => stream.destroy());
    const listener =
      payload.length === 4 ? this.#listeners.get(Buffer.from(payload).readUInt32BE(0)) : undefined;
    if (!listener || this.#closed) {
      stream.reset('no such listener');
      return;
    }
    this.#accept(listener, stream);
  }

  /**
   * A connection the Keep Loader accepted and handed over: the socket itself, now this process's, on the
   * listener whose LISTEN stream's id is `listenerId`. Anything that does not fit is closed.
   */
  handedOver(listenerId: number, socket: Socket): void {
    const listener = this.#listeners.get(listenerId);
    if (!listener || this.#closed) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.#accept(listener, socket);
  }

  #accept(listener: Listener, stream: Duplex): void {
    if (listener.file.prot === 'tcp') {
      this.#hand(listener, stream);
      return;
    }
    const tls = this.#tls;
    if (!tls) {
      stream.destroy();
      return;
    }
    const socket = new (nodeTls().TLSSocket)(stream, { isServer: true, secureContext: tls.context() });
    const timer = setTimeout(() => socket.destroy(), HANDSHAKE_MS);
    socket.once('secure', () => {
      clearTimeout(timer);
      this.#hand(listener, socket);
    });
    socket.on('error', () => {
      clearTimeout(timer);
      socket.destroy();
      stream.destroy();
    });
  }

  /** Starts handing connections to the workload, first those that arrived while it was being set up. */
  attach(run: WasiRun): void {
    this.#run = run;
    for (const l of this.#listeners.values()) {
      for (const s of l.early.splice(0)) this.#hand(l, s);
    }
  }

  #hand(listener: Listener, stream: Duplex): void {
    if (this.#closed) {
      stream.destroy();
      return;
    }
    if (!this.#run) {
      if (listener.early.length >= MAX_EARLY) stream.destroy();
      else listener.early.push(stream);
      return;
    }
    if (!this.#run.offer(listener.fd, stream)) stream.destroy();
  }

  /** Closes every listener (the Keep Loader unbinds its ports) and drops connections not yet handed over. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const l of this.#listeners.values()) {
      l.stream.destroy();
      for (const s of l.early.splice(0)) s.destroy();
    }
    this.#listeners.clear();
  }
}
