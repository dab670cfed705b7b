import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { encodeFrame } from '../../protocol/frames.ts';
import {
  decodeMessageAs,
  decodeMessageBytes,
  encodeMessage,
  type KeepState,
  type Limits,
  type Message,
} from '../../protocol/messages.ts';
import { readFrames } from '../../protocol/stream.ts';
import { BACKENDS, type BackendName, isBackendName } from '../backends/index.ts';
import { ApiError } from '../errors.ts';
import type { KeepLoaderConfig } from '../keepldr/keepldr.ts';

/** Lifecycle events, published on `donjon:keepmgr` (never workload data). */
export const keepmgrChannel = diagnostics.channel('donjon:keepmgr');

export interface KeepManagerOptions {
  /** The Keep runtime bundle each Keep Loader starts and measures. */
  runtimePath: string;
  /** The Keep Loader program. */
  keepldrPath: string;
  /** This host's simulated root (for the `sim` backend). */
  simRootPath?: string;
  /** Backends offered; default all this build has. */
  backends?: readonly BackendName[];
  /** Host ceilings for every Keep. */
  limits?: Limits;
  /** Largest request body accepted, bytes. */
  maxBodyBytes?: number;
  /** How long a Keep may take to become ready. */
  startTimeoutMs?: number;
}

interface KeepRecord {
  id: string;
  backend: BackendName;
  state: KeepState;
  createdAt: number;
  exitCode?: number;
  error?: string;
  keepPid?: number;
  ldr: ChildProcess;
  socketPath: string;
  events: { at: number; state: KeepState }[];
  watch?: Socket;
  listeners: Set<() => void>;
}

type KeepMessage = Extract<Message, { type: 'keep' }>;

const CBOR = 'application/cbor';
const CHANNEL_PROTOCOL = 'donjon-channel/1';

function keepMessage(r: KeepRecord): KeepMessage {
  const m: KeepMessage = {
    v: 1,
    type: 'keep',
    id: r.id,
    backend: r.backend,
    state: r.state,
    createdAt: r.createdAt,
  };
  if (r.exitCode !== undefined) m.exitCode = r.exitCode;
  if (r.error !== undefined) m.error = r.error;
  return m;
}

function send(res: ServerResponse, status: number, message: Message): void {
  const body = encodeMessage(message);
  res.writeHead(status, { 'content-type': CBOR, 'content-length': body.length });
  res.end(body);
}

function sendError(res: ServerResponse, error: ApiError): void {
  send(res, error.status, { v: 1, type: 'error', code: error.code, message: error.message });
}

/**
 * The Keep Manager: the host's API for tenants. It records Keeps, starts one Keep Loader per Keep and relays
 * each Keep's channel as raw bytes. It is not trusted by tenants and never sees workload data in the clear.
 */
export class KeepManager {
  readonly #options: Required<Omit<KeepManagerOptions, 'simRootPath'>> & { simRootPath?: string };
  readonly #keeps = new Map<string, KeepRecord>();
  readonly #runDir: string;
  #server: Server | undefined;
  #closing = false;

  constructor(options: KeepManagerOptions) {
    this.#options = {
      backends: BACKENDS,
      limits: {},
      maxBodyBytes: 1 << 20,
      startTimeoutMs: 30_000,
      ...options,
    };
    // Unix socket paths are limited to about 100 bytes, so they live in a short private folder.
    this.#runDir = mkdtempSync(join(tmpdir(), 'donjon-'));
  }

  /** Starts serving on host:port (port 0 picks one); resolves to the base URL. */
  listen(host = '127.0.0.1', port = 0): Promise<string> {
    const server = createServer((req, res) => {
      this.#route(req, res).catch((error: unknown) => {
        const e =
          error instanceof ApiError
            ? error
            : new ApiError('ERR_HOST_INTERNAL', 'Cannot answer: internal error', { cause: error });
        if (!res.headersSent) sendError(res, e);
        else res.destroy();
      });
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.#upgrade(req, socket, head),
    );
    server.on('clientError', (_error, socket) => socket.destroy());
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        const address = server.address();
        if (address === null || typeof address === 'string') throw new Error('Cannot listen: no TCP address');
        resolve(`http://${host.includes(':') ? `[${host}]` : host}:${address.port}`);
      });
    });
  }

  /** Stops every Keep and the server. */
  async close(): Promise<void> {
    this.#closing = true;
    const exits = [...this.#keeps.values()]
      .filter((r) => r.ldr.exitCode === null && r.ldr.signalCode === null)
      .map(
        (r) =>
          new Promise<void>((resolve) => {
            r.ldr.once('exit', () => resolve());
            r.ldr.kill('SIGTERM');
            setTimeout(() => r.ldr.kill('SIGKILL'), 2000).unref();
          }),
      );
    await Promise.all(exits);
    await new Promise<void>((resolve) => {
      if (!this.#server) resolve();
      else {
        this.#server.close(() => resolve());
        this.#server.closeAllConnections();
      }
    });
    rmSync(this.#runDir, { recursive: true, force: true });
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://keepmgr');
    const parts = url.pathname.split('/').filter(Boolean);
    if (parts[0] !== 'v1' || parts[1] !== 'keeps' || parts.length > 4) {
      throw new ApiError('ERR_API_ROUTE_NOT_FOUND', `Cannot find ${url.pathname}: no such route`);
    }
    if (parts.length === 2) {
      if (req.method === 'POST') return this.#create(req, res);
      if (req.method === 'GET') {
        return send(res, 200, { v: 1, type: 'keep-list', keeps: [...this.#keeps.values()].map(keepMessage) });
      }
      throw new ApiError('ERR_API_METHOD_NOT_ALLOWED', `Cannot ${req.method} /v1/keeps: use GET or POST`);
    }
    const record = this.#keeps.get(parts[2]!);
    if (!record) throw new ApiError('ERR_KEEP_NOT_FOUND', `Cannot find Keep ${parts[2]}: no such Keep`);
    if (parts.length === 3) {
      if (req.method === 'GET') return send(res, 200, keepMessage(record));
      if (req.method === 'DELETE') {
        this.#stop(record);
        return send(res, 200, keepMessage(record));
      }
      throw new ApiError('ERR_API_METHOD_NOT_ALLOWED', `Cannot ${req.method} a Keep: use GET or DELETE`);
    }
    if (parts[3] === 'channel') {
      throw new ApiError(
        'ERR_API_BODY_INVALID',
        'Cannot open a channel without an HTTP Upgrade to donjon-channel/1',
      );
    }
    throw new ApiError('ERR_API_ROUTE_NOT_FOUND', `Cannot find ${url.pathname}: no such route`);
  }

  async #readBody(req: IncomingMessage): Promise<Uint8Array> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
    if (type !== CBOR)
      throw new ApiError('ERR_API_MEDIA_TYPE', `Cannot read a ${type || 'untyped'} body: send ${CBOR}`);
    const max = this.#options.maxBodyBytes;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max)
      throw new ApiError('ERR_API_BODY_TOO_LARGE', `Cannot read the body: over ${max} bytes`);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > max) throw new ApiError('ERR_API_BODY_TOO_LARGE', `Cannot read the body: over ${max} bytes`);
      chunks.push(chunk);
    }
    return new Uint8Array(Buffer.concat(chunks));
  }

  async #create(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.#closing)
      throw new ApiError('ERR_HOST_SHUTTING_DOWN', 'Cannot create a Keep: the host is shutting down');
    const body = await this.#readBody(req);
    let request: Extract<Message, { type: 'create-keep' }>;
    try {
      request = decodeMessageAs(decodeMessageBytes(body), 'create-keep');
    } catch (cause) {
      throw new ApiError('ERR_API_BODY_INVALID', `Cannot create a Keep: ${(cause as Error).message}`, {
        cause,
      });
    }
    const backend = request.backend;
    if (!isBackendName(backend) || !this.#options.backends.includes(backend)) {
      throw new ApiError(
        'ERR_API_BACKEND_UNAVAILABLE',
        `Cannot create a Keep on backend ${backend}: this host offers ${this.#options.backends.join(', ')}`,
      );
    }
    if (backend === 'sim' && !this.#options.simRootPath) {
      throw new ApiError(
        'ERR_API_BACKEND_UNAVAILABLE',
        'Cannot create a sim Keep: this host has no simulated root',
      );
    }
    const record = await this.#launch(
      backend,
      Buffer.from(request.nonce).toString('hex'),
      request.limits ?? {},
    );
    send(res, 201, keepMessage(record));
  }

  #limits(tenant: Limits): Limits {
    const host = this.#options.limits;
    const out: Limits = {};
    for (const key of ['memoryBytes', 'wallTimeMs', 'outputBytes'] as const) {
      const h = host[key];
      const t = tenant[key];
      const v = h === undefined ? t : t === undefined ? h : Math.min(h, t);
      if (v !== undefined) out[key] = v;
    }
    return out;
  }

  async #launch(backend: BackendName, nonce: string, limits: Limits): Promise<KeepRecord> {
    const id = randomBytes(8).toString('hex');
    const socketPath = join(this.#runDir, `${id}.sock`);
    const config: KeepLoaderConfig = {
      id,
      backend,
      nonce,
      socketPath,
      runtimePath: this.#options.runtimePath,
      limits: this.#limits(limits),
    };
    if (this.#options.simRootPath) config.simRootPath = this.#options.simRootPath;
    const ldr = spawn(process.execPath, [this.#options.keepldrPath, JSON.stringify(config)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: {},
    });
    const record: KeepRecord = {
      id,
      backend,
      state: 'creating',
      createdAt: Date.now(),
      ldr,
      socketPath,
      events: [],
      listeners: new Set(),
    };
    this.#keeps.set(id, record);
    this.#publish(record);
    ldr.stdin?.on('error', () => {});
    ldr.stderr?.on('data', (chunk: Buffer) => keepmgrChannel.publish({ id, log: chunk.toString('utf8') }));
    ldr.on('exit', () => {
      // The Keep Loader's last word arrives on the watch socket, which may still be draining.
      const judge = (): void => {
        if (record.state === 'creating' || record.state === 'ready' || record.state === 'running') {
          record.state = 'failed';
          record.error ??= 'the Keep Loader ended unexpectedly';
          this.#publish(record);
        }
      };
      if (record.watch && !record.watch.closed) {
        record.watch.once('close', judge);
        setTimeout(judge, 1000).unref();
      } else judge();
    });

    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new ApiError('ERR_KEEP_START_FAILED', 'Cannot start the Keep: it did not become ready in time'),
          ),
        this.#options.startTimeoutMs,
      );
      const settle = (): void => {
        if (record.state === 'ready' || record.state === 'running') {
          clearTimeout(timer);
          record.listeners.delete(settle);
          resolve();
        } else if (record.state !== 'creating') {
          clearTimeout(timer);
          record.listeners.delete(settle);
          reject(
            new ApiError('ERR_KEEP_START_FAILED', `Cannot start the Keep: ${record.error ?? record.state}`),
          );
        }
      };
      let out = '';
      ldr.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        if (out.includes('listening\n')) {
          out = '';
          this.#watch(record);
        }
      });
      record.listeners.add(settle);
    });
    try {
      await ready;
    } catch (error) {
      this.#stop(record);
      throw error;
    }
    return record;
  }

  #watch(record: KeepRecord): void {
    const socket = connect(record.socketPath);
    record.watch = socket;
    socket.on('error', () => socket.destroy());
    socket.write(encodeFrame({ v: 1, type: 'ldr-watch' }));
    readFrames(
      socket,
      (m) => {
        if (m.type !== 'ldr-event') return;
        record.state = m.state;
        if (m.keepPid !== undefined) record.keepPid = m.keepPid;
        if (m.exitCode !== undefined) record.exitCode = m.exitCode;
        if (m.error !== undefined) record.error = m.error;
        this.#publish(record);
      },
      { onError: () => socket.destroy() },
    );
  }

  #publish(record: KeepRecord): void {
    const last = record.events.at(-1);
    if (last?.state !== record.state) record.events.push({ at: Date.now(), state: record.state });
    for (const listener of [...record.listeners]) listener();
    if (keepmgrChannel.hasSubscribers) {
      keepmgrChannel.publish({
        id: record.id,
        backend: record.backend,
        state: record.state,
        error: record.error,
      });
    }
  }

  #stop(record: KeepRecord): void {
    if (record.ldr.exitCode !== null || record.ldr.signalCode !== null) return;
    const socket = connect(record.socketPath);
    socket.on('error', () => record.ldr.kill('SIGTERM'));
    socket.end(encodeFrame({ v: 1, type: 'ldr-stop' }));
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const refuse = (error: ApiError): void => {
      const body = encodeMessage({ v: 1, type: 'error', code: error.code, message: error.message });
      socket.end(
        Buffer.concat([
          Buffer.from(
            `HTTP/1.1 ${error.status} Error\r\ncontent-type: ${CBOR}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`,
          ),
          body,
        ]),
      );
    };
    socket.on('error', () => socket.destroy());
    const parts = new URL(req.url ?? '/', 'http://keepmgr').pathname.split('/').filter(Boolean);
    if (parts.length !== 4 || parts[0] !== 'v1' || parts[1] !== 'keeps' || parts[3] !== 'channel') {
      refuse(new ApiError('ERR_API_ROUTE_NOT_FOUND', 'Cannot upgrade: no such route'));
      return;
    }
    if ((req.headers.upgrade ?? '').toLowerCase() !== CHANNEL_PROTOCOL) {
      refuse(
        new ApiError('ERR_API_BODY_INVALID', `Cannot upgrade: the protocol must be ${CHANNEL_PROTOCOL}`),
      );
      return;
    }
    const record = this.#keeps.get(parts[2]!);
    if (!record) {
      refuse(new ApiError('ERR_KEEP_NOT_FOUND', `Cannot find Keep ${parts[2]}: no such Keep`));
      return;
    }
    if (record.state !== 'ready') {
      refuse(
        new ApiError(
          'ERR_KEEP_NOT_READY',
          `Cannot open a channel to Keep ${record.id}: it is ${record.state}`,
        ),
      );
      return;
    }
    const ldr: Socket = connect(record.socketPath);
    ldr.on('error', () => {
      ldr.destroy();
      socket.destroy();
    });
    ldr.on('connect', () => {
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${CHANNEL_PROTOCOL}\r\n\r\n`,
      );
      ldr.write(encodeFrame({ v: 1, type: 'ldr-channel' }));
      if (head.length > 0) ldr.write(head);
      // Raw relay: TLS records between the tenant and the Keep. Nothing here can read them.
      socket.pipe(ldr);
      ldr.pipe(socket);
      socket.on('close', () => ldr.destroy());
      ldr.on('close', () => socket.destroy());
    });
  }
}
