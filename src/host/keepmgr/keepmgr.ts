import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { encodeFrame } from '../../protocol/frames.ts';
import {
  type Backend,
  decodeMessageAs,
  decodeMessageBytes,
  encodeMessage,
  type KeepState,
  type Limits,
  type Message,
  type MessageOf,
} from '../../protocol/messages.ts';
import { readFirstFrame, readFrames } from '../../protocol/stream.ts';
import { BACKENDS, type BackendName, isBackendName } from '../backends/index.ts';
import { ApiError } from '../errors.ts';
import type { KeepLoaderConfig } from '../keepldr/keepldr.ts';
import { isTerminal, type KeepRecord, type KeepStore, MemoryStore } from './store.ts';

/** Lifecycle events, published on `donjon:keepmgr` (never workload data). */
export const keepmgrChannel = diagnostics.channel('donjon:keepmgr');

/** Per-tenant and per-host ceilings; each refusal has its own code. */
export interface Quotas {
  /** Keeps not yet ended, over all tenants. */
  maxKeeps?: number;
  /** Keeps not yet ended, per tenant. */
  maxKeepsPerTenant?: number;
  /** Keep creations per tenant per minute. */
  createsPerMinute?: number;
}

export interface KeepManagerOptions {
  /** The Keep runtime bundle each Keep Loader starts and measures. */
  runtimePath: string;
  /** The Keep Loader program. */
  keepldrPath: string;
  /** Folder for the Keep Loaders' sockets (and logs, for detached ones). Must be private and short. */
  runDir: string;
  /** This host's simulated root (for the `sim` backend). */
  simRootPath?: string;
  /** Backends offered; default all this build has. */
  backends?: readonly BackendName[];
  /** Host ceilings for every Keep; a tenant's own limits may lower them, not raise them. */
  limits?: Limits;
  /** The host's collateral cache (AMD KDS, Intel PCS), for the `cvm` backend. */
  collateralCacheDir?: string;
  /** Largest workload module a Keep accepts (enforced inside the Keep, which alone sees it). */
  maxWasmBytes?: number;
  quotas?: Quotas;
  /** Largest request body accepted, bytes. */
  maxBodyBytes?: number;
  /** How long a Keep may take to become ready. */
  startTimeoutMs?: number;
  /** Records; default in memory. */
  store?: KeepStore;
  /** Require bearer tokens (the store's) and show each tenant only its own Keeps. */
  requireTokens?: boolean;
  /**
   * Start Keep Loaders in their own session so they outlive this process (the daemon); otherwise they end
   * when it does (the Keep Manager embedded in one `donjon run`).
   */
  detachKeeps?: boolean;
  /**
   * How detached Keep Loaders are started: as children in their own session (default), or as transient systemd
   * services through `systemd-run`, so an operator sees and limits each Keep with systemd's own tools.
   */
  launcher?: 'child' | 'systemd';
  /** Serve HTTPS with this identity; plain HTTP without it. */
  tls?: { keyPem: string; certPem: string };
  /** Pre-started Keeps per backend, ready for a tenant's nonce. */
  pool?: Partial<Record<BackendName, number>>;
  /** Structured log lines (lifecycle only). */
  log?: (entry: Record<string, unknown>) => void;
}

type KeepMessage = MessageOf<'keep'>;

/** Every route of the Keep Manager API. docs/api.md documents each; a test checks both against the router. */
export const API_ROUTES = [
  { method: 'POST', path: '/v1/keeps', summary: 'create a Keep (body: create-keep; answer: keep, 201)' },
  { method: 'GET', path: '/v1/keeps', summary: "list the caller's Keeps (answer: keep-list)" },
  { method: 'GET', path: '/v1/keeps/{id}', summary: 'one Keep (answer: keep)' },
  { method: 'DELETE', path: '/v1/keeps/{id}', summary: "remove an ended Keep's record (answer: keep)" },
  { method: 'POST', path: '/v1/keeps/{id}/stop', summary: 'stop a Keep (answer: keep)' },
  { method: 'GET', path: '/v1/keeps/{id}/events', summary: 'lifecycle events (answer: keep-events)' },
  {
    method: 'GET',
    path: '/v1/keeps/{id}/channel',
    summary: 'HTTP Upgrade to donjon-channel/1: the raw byte stream to the Keep (101)',
  },
  { method: 'GET', path: '/metrics', summary: 'Prometheus text metrics (no token needed; no tenant data)' },
] as const;

const CBOR = 'application/cbor';
const CHANNEL_PROTOCOL = 'donjon-channel/1';
const LOCAL_TENANT = 'local';

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
  if (r.keepldrPid !== undefined) m.keepldrPid = r.keepldrPid;
  if (r.keepPid !== undefined) m.keepPid = r.keepPid;
  if (r.ports !== undefined && r.ports.length > 0) m.ports = r.ports;
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What the Keep Manager holds in memory for a Keep it supervises (beside its record). */
interface Live {
  ldr?: ChildProcess;
  watch?: Socket;
  listeners: Set<() => void>;
}

/**
 * The Keep Manager: the host's API for tenants. It records Keeps, starts one Keep Loader per Keep and relays
 * each Keep's channel as raw bytes. It is not trusted by tenants and never sees workload data in the clear.
 */
export class KeepManager {
  readonly #options: KeepManagerOptions;
  readonly #store: KeepStore;
  readonly #live = new Map<string, Live>();
  readonly #pool = new Map<BackendName, string[]>();
  readonly #creates = new Map<string, number[]>();
  readonly #counters = { created: 0, requests: new Map<string, number>() };
  readonly #sockets = new Set<Duplex>();
  #server: Server | undefined;
  #closing = false;
  /** Set once the store is closed: late events from Keep Loaders are then left for the next start. */
  #closed = false;
  #filling = false;

  constructor(options: KeepManagerOptions) {
    this.#options = options;
    this.#store = options.store ?? new MemoryStore();
    mkdirSync(options.runDir, { recursive: true, mode: 0o700 });
  }

  get store(): KeepStore {
    return this.#store;
  }

  #log(entry: Record<string, unknown>): void {
    this.#options.log?.({ time: new Date().toISOString(), ...entry });
  }

  /**
   * Finds the Keeps a previous run of this Keep Manager left: those whose Keep Loader still answers are
   * watched again; the others died while nobody watched and are marked failed.
   */
  async adopt(): Promise<{ adopted: number; lost: number }> {
    let adopted = 0;
    let lost = 0;
    for (const r of this.#store.list()) {
      if (isTerminal(r.state)) continue;
      const live: Live = { listeners: new Set() };
      this.#live.set(r.id, live);
      try {
        await this.#watch(r.id, live, 1);
        adopted++;
        if (r.owner === '' && r.state === 'ready') this.#poolOf(r.backend as BackendName).push(r.id);
      } catch {
        this.#live.delete(r.id);
        this.#setState(r.id, 'failed', { error: 'the Keep ended while the Keep Manager was away' });
        lost++;
      }
    }
    this.#log({ event: 'adopted', adopted, lost });
    return { adopted, lost };
  }

  /** Starts serving on host:port (port 0 picks one); resolves to the base URL. */
  listen(host = '127.0.0.1', port = 0): Promise<string> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.#route(req, res).catch((error: unknown) => {
        const e =
          error instanceof ApiError
            ? error
            : new ApiError('ERR_HOST_INTERNAL', 'Cannot answer: internal error', { cause: error });
        if (!(error instanceof ApiError)) this.#log({ event: 'internal-error', error: String(error) });
        this.#count(e.code);
        if (!res.headersSent) sendError(res, e);
        else res.destroy();
      });
    };
    const tls = this.#options.tls;
    const server = tls
      ? createHttpsServer({ key: tls.keyPem, cert: tls.certPem, minVersion: 'TLSv1.2' }, handler)
      : createHttpServer(handler);
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.#upgrade(req, socket, head);
    });
    server.on('clientError', (_error, socket) => socket.destroy());
    server.on('connection', (socket: Duplex) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        const address = server.address();
        if (address === null || typeof address === 'string') throw new Error('Cannot listen: no TCP address');
        this.#fillPool();
        resolve(`${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${address.port}`);
      });
    });
  }

  /**
   * Stops serving. Keeps started detached are left running for the next start to adopt; attached ones are
   * stopped and waited for.
   */
  async close(): Promise<void> {
    this.#closing = true;
    const waits: Promise<void>[] = [];
    for (const [id, live] of this.#live) {
      live.watch?.destroy();
      const ldr = live.ldr;
      if (this.#options.detachKeeps || !ldr || ldr.exitCode !== null || ldr.signalCode !== null) continue;
      waits.push(
        new Promise<void>((resolve) => {
          ldr.once('exit', () => resolve());
          ldr.kill('SIGTERM');
          setTimeout(() => ldr.kill('SIGKILL'), 2000).unref();
        }).then(() => {
          const r = this.#store.get(id);
          if (r && !isTerminal(r.state)) this.#setState(id, 'stopped');
        }),
      );
    }
    await Promise.all(waits);
    await new Promise<void>((resolve) => {
      if (!this.#server) resolve();
      else {
        this.#server.close(() => resolve());
        for (const s of this.#sockets) s.destroy();
      }
    });
    this.#closed = true;
    this.#store.close();
  }

  #count(code: string): void {
    this.#counters.requests.set(code, (this.#counters.requests.get(code) ?? 0) + 1);
  }

  #tenant(req: IncomingMessage): string {
    if (!this.#options.requireTokens) return LOCAL_TENANT;
    const header = req.headers.authorization ?? '';
    const m = /^Bearer ([A-Za-z0-9_-]{1,200})$/.exec(header);
    const tenant = m ? this.#store.tenantOf(m[1]!) : undefined;
    if (tenant === undefined) {
      throw new ApiError(
        'ERR_API_UNAUTHORIZED',
        'Cannot serve this request: a valid bearer token is required',
      );
    }
    return tenant;
  }

  #ownKeep(tenant: string, id: string): KeepRecord {
    const r = this.#store.get(id);
    // Another tenant's Keep is reported exactly as a missing one.
    if (!r || r.owner !== tenant)
      throw new ApiError('ERR_KEEP_NOT_FOUND', `Cannot find Keep ${id}: no such Keep`);
    return r;
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://keepmgr');
    if (url.pathname === '/metrics' && req.method === 'GET') {
      const body = this.#metrics();
      res.writeHead(200, {
        'content-type': 'text/plain; version=0.0.4',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
      return;
    }
    const parts = url.pathname.split('/').filter(Boolean);
    if (parts[0] !== 'v1' || parts[1] !== 'keeps' || parts.length > 4) {
      throw new ApiError('ERR_API_ROUTE_NOT_FOUND', `Cannot find ${url.pathname}: no such route`);
    }
    const tenant = this.#tenant(req);
    if (parts.length === 2) {
      if (req.method === 'POST') return this.#create(tenant, req, res);
      if (req.method === 'GET') {
        this.#count('ok');
        return send(res, 200, { v: 1, type: 'keep-list', keeps: this.#store.list(tenant).map(keepMessage) });
      }
      throw new ApiError('ERR_API_METHOD_NOT_ALLOWED', `Cannot ${req.method} /v1/keeps: use GET or POST`);
    }
    const record = this.#ownKeep(tenant, parts[2]!);
    if (parts.length === 3) {
      if (req.method === 'GET') return send(res, 200, keepMessage(record));
      if (req.method === 'DELETE') {
        if (!isTerminal(record.state)) {
          throw new ApiError(
            'ERR_KEEP_STILL_RUNNING',
            `Cannot remove Keep ${record.id}: it is ${record.state}; stop it first`,
          );
        }
        this.#store.remove(record.id);
        this.#live.delete(record.id);
        this.#log({ event: 'removed', id: record.id });
        return send(res, 200, keepMessage(record));
      }
      throw new ApiError('ERR_API_METHOD_NOT_ALLOWED', `Cannot ${req.method} a Keep: use GET or DELETE`);
    }
    switch (parts[3]) {
      case 'stop':
        if (req.method !== 'POST')
          throw new ApiError('ERR_API_METHOD_NOT_ALLOWED', 'Cannot stop a Keep: use POST');
        await this.#stop(record.id);
        return send(res, 200, keepMessage(this.#store.get(record.id) ?? record));
      case 'events':
        if (req.method !== 'GET')
          throw new ApiError('ERR_API_METHOD_NOT_ALLOWED', 'Cannot change events: use GET');
        return send(res, 200, {
          v: 1,
          type: 'keep-events',
          id: record.id,
          events: this.#store.events(record.id),
        });
      case 'channel':
        throw new ApiError(
          'ERR_API_BODY_INVALID',
          `Cannot open a channel without an HTTP Upgrade to ${CHANNEL_PROTOCOL}`,
        );
      default:
        throw new ApiError('ERR_API_ROUTE_NOT_FOUND', `Cannot find ${url.pathname}: no such route`);
    }
  }

  async #readBody(req: IncomingMessage): Promise<Uint8Array> {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
    if (type !== CBOR)
      throw new ApiError('ERR_API_MEDIA_TYPE', `Cannot read a ${type || 'untyped'} body: send ${CBOR}`);
    const max = this.#options.maxBodyBytes ?? 64 * 1024;
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

  #checkQuotas(tenant: string): void {
    const q = this.#options.quotas ?? {};
    const active = this.#store.list().filter((r) => !isTerminal(r.state) && r.owner !== '');
    if (q.maxKeeps !== undefined && active.length >= q.maxKeeps) {
      throw new ApiError(
        'ERR_API_QUOTA_EXCEEDED',
        `Cannot create a Keep: this host runs its maximum of ${q.maxKeeps}`,
      );
    }
    if (
      q.maxKeepsPerTenant !== undefined &&
      active.filter((r) => r.owner === tenant).length >= q.maxKeepsPerTenant
    ) {
      throw new ApiError(
        'ERR_API_QUOTA_EXCEEDED',
        `Cannot create a Keep: you run your maximum of ${q.maxKeepsPerTenant}; stop one first`,
      );
    }
    if (q.createsPerMinute !== undefined) {
      const now = Date.now();
      const recent = (this.#creates.get(tenant) ?? []).filter((t) => now - t < 60_000);
      if (recent.length >= q.createsPerMinute) {
        throw new ApiError(
          'ERR_API_RATE_LIMITED',
          `Cannot create a Keep: over ${q.createsPerMinute} per minute`,
        );
      }
      recent.push(now);
      this.#creates.set(tenant, recent);
    }
  }

  #checkLimits(limits: Limits): void {
    const host = this.#options.limits ?? {};
    for (const key of ['memoryBytes', 'wallTimeMs', 'outputBytes'] as const) {
      const h = host[key];
      const t = limits[key];
      if (h !== undefined && t !== undefined && t > h) {
        throw new ApiError(
          'ERR_API_LIMIT_EXCEEDED',
          `Cannot create a Keep: ${key} ${t} is over this host's ${h}`,
        );
      }
    }
  }

  async #create(tenant: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.#closing)
      throw new ApiError('ERR_HOST_SHUTTING_DOWN', 'Cannot create a Keep: the host is shutting down');
    const body = await this.#readBody(req);
    let request: MessageOf<'create-keep'>;
    try {
      request = decodeMessageAs(
        decodeMessageBytes(body, { maxBytes: body.length, maxDepth: 4, maxItems: 64, maxStringBytes: 4096 }),
        'create-keep',
      );
    } catch (cause) {
      throw new ApiError('ERR_API_BODY_INVALID', `Cannot create a Keep: ${(cause as Error).message}`, {
        cause,
      });
    }
    const backend = request.backend;
    const offered = this.#options.backends ?? BACKENDS;
    if (!isBackendName(backend) || !offered.includes(backend)) {
      throw new ApiError(
        'ERR_API_BACKEND_UNAVAILABLE',
        `Cannot create a Keep on backend ${backend}: this host offers ${offered.join(', ')}`,
      );
    }
    if (backend === 'sim' && !this.#options.simRootPath) {
      throw new ApiError(
        'ERR_API_BACKEND_UNAVAILABLE',
        'Cannot create a sim Keep: this host has no simulated root',
      );
    }
    const limits = request.limits ?? {};
    this.#checkLimits(limits);
    this.#checkQuotas(tenant);
    const pooled = Object.keys(limits).length === 0 ? this.#takePooled(backend) : undefined;
    let id: string;
    if (pooled) {
      id = pooled;
      this.#store.update(id, { owner: tenant, updatedAt: Date.now() });
      this.#event(id, 'ready', 'assigned from the pool');
    } else {
      id = await this.#launch(tenant, backend, limits);
    }
    this.#counters.created++;
    this.#count('created');
    this.#fillPool();
    send(res, 201, keepMessage(this.#store.get(id)!));
  }

  #poolOf(backend: BackendName): string[] {
    let list = this.#pool.get(backend);
    if (!list) {
      list = [];
      this.#pool.set(backend, list);
    }
    return list;
  }

  #takePooled(backend: BackendName): string | undefined {
    const list = this.#poolOf(backend);
    while (list.length > 0) {
      const id = list.shift()!;
      if (this.#store.get(id)?.state === 'ready') return id;
    }
    return undefined;
  }

  /** Tops the pools up in the background, one Keep at a time. */
  #fillPool(): void {
    if (this.#filling || this.#closing) return;
    const wanted = Object.entries(this.#options.pool ?? {}).find(
      ([backend, size]) => (size ?? 0) > this.#poolOf(backend as BackendName).length,
    );
    if (!wanted) return;
    const backend = wanted[0] as BackendName;
    this.#filling = true;
    this.#launch('', backend, {})
      .then((id) => this.#poolOf(backend).push(id))
      .catch((error: unknown) => this.#log({ event: 'pool-fill-failed', backend, error: String(error) }))
      .finally(() => {
        this.#filling = false;
        setImmediate(() => this.#fillPool());
      });
  }

  #limits(tenant: Limits): Limits {
    const host = this.#options.limits ?? {};
    const out: Limits = {};
    for (const key of ['memoryBytes', 'wallTimeMs', 'outputBytes'] as const) {
      const h = host[key];
      const t = tenant[key];
      const v = h === undefined ? t : t === undefined ? h : Math.min(h, t);
      if (v !== undefined) out[key] = v;
    }
    return out;
  }

  #event(id: string, state: KeepState, message?: string): void {
    if (this.#closed) return;
    this.#store.addEvent(
      id,
      message === undefined ? { at: Date.now(), state } : { at: Date.now(), state, message },
    );
    const r = this.#store.get(id);
    this.#log({ event: 'keep', id, state, ...(message === undefined ? {} : { message }) });
    if (keepmgrChannel.hasSubscribers)
      keepmgrChannel.publish({ id, state, backend: r?.backend, error: r?.error });
    for (const listener of [...(this.#live.get(id)?.listeners ?? [])]) listener();
  }

  #setState(id: string, state: KeepState, extra: Partial<KeepRecord> = {}): void {
    if (this.#closed) return;
    const before = this.#store.get(id);
    if (!before) return;
    this.#store.update(id, { ...extra, state, updatedAt: Date.now() });
    if (before.state !== state) this.#event(id, state, extra.error);
  }

  async #launch(owner: string, backend: BackendName, limits: Limits): Promise<string> {
    const id = randomBytes(8).toString('hex');
    const socketPath = join(this.#options.runDir, `${id}.sock`);
    const config: KeepLoaderConfig & { attached?: boolean } = {
      id,
      backend,
      socketPath,
      runtimePath: this.#options.runtimePath,
      limits: this.#limits(limits),
    };
    if (this.#options.simRootPath) config.simRootPath = this.#options.simRootPath;
    if (this.#options.maxWasmBytes !== undefined) config.maxWasmBytes = this.#options.maxWasmBytes;
    if (this.#options.collateralCacheDir !== undefined)
      config.collateralCacheDir = this.#options.collateralCacheDir;
    const now = Date.now();
    this.#store.insert({
      id,
      owner,
      backend: backend as Backend,
      state: 'creating',
      createdAt: now,
      updatedAt: now,
      socketPath,
      limits,
    });
    this.#event(id, 'creating');
    const live: Live = { listeners: new Set() };
    this.#live.set(id, live);

    let ldr: ChildProcess | undefined;
    if (this.#options.launcher === 'systemd') {
      // systemd starts the Keep Loader as its own transient service and returns; its pid arrives on the watch socket.
      const args = [
        `--unit=donjon-keep-${id}`,
        '--collect',
        '--quiet',
        '--property=KillMode=mixed',
        `--description=Donjon Keep ${id} (${backend})`,
      ];
      const memory = config.limits.memoryBytes;
      if (memory !== undefined) args.push(`--property=MemoryMax=${memory + 512 * 1024 * 1024}`);
      const launcher = spawn(
        'systemd-run',
        [...args, '--', process.execPath, this.#options.keepldrPath, JSON.stringify(config)],
        {
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      launcher.stderr?.on('data', (c: Buffer) => {
        stderr += c.toString('utf8');
      });
      const code = await new Promise<number | null>((resolve) => {
        launcher.on('error', () => resolve(-1));
        launcher.on('exit', (c) => resolve(c));
      });
      if (code !== 0) {
        this.#setState(id, 'failed', { error: `systemd-run failed: ${stderr.trim() || `status ${code}`}` });
        throw new ApiError(
          'ERR_KEEP_START_FAILED',
          `Cannot start the Keep: systemd-run failed (${stderr.trim() || code})`,
        );
      }
    } else if (this.#options.detachKeeps) {
      const logFd = openSync(join(this.#options.runDir, `${id}.log`), 'a', 0o600);
      ldr = spawn(process.execPath, [this.#options.keepldrPath, JSON.stringify(config)], {
        stdio: ['ignore', 'ignore', logFd],
        env: {},
        detached: true,
      });
      closeSync(logFd);
      ldr.unref();
    } else {
      config.attached = true;
      ldr = spawn(process.execPath, [this.#options.keepldrPath, JSON.stringify(config)], {
        stdio: ['pipe', 'ignore', 'pipe'],
        env: {},
      });
      ldr.stdin?.on('error', () => {});
      ldr.stderr?.on('data', (chunk: Buffer) =>
        this.#log({ event: 'keepldr-log', id, line: chunk.toString('utf8').trim() }),
      );
    }
    const startTimeout = this.#options.startTimeoutMs ?? 30_000;
    let exited = false;
    if (ldr) live.ldr = ldr;
    if (ldr?.pid !== undefined) this.#store.update(id, { keepldrPid: ldr.pid });
    ldr?.once('exit', () => {
      exited = true;
      // The Keep Loader's last word arrives on the watch socket, which may still be draining.
      setTimeout(() => {
        if (this.#closing) return;
        const r = this.#store.get(id);
        if (r && !isTerminal(r.state) && (!live.watch || live.watch.destroyed)) {
          this.#setState(id, 'failed', { error: r.error ?? 'the Keep Loader ended unexpectedly' });
        }
      }, 200).unref();
    });

    try {
      await this.#watch(id, live, startTimeout / 5, () => exited);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new ApiError('ERR_KEEP_START_FAILED', 'Cannot start the Keep: it did not become ready in time'),
            ),
          startTimeout,
        );
        const settle = (): void => {
          const r = this.#store.get(id);
          if (!r) return;
          if (r.state === 'ready' || r.state === 'running') {
            clearTimeout(timer);
            live.listeners.delete(settle);
            resolve();
          } else if (r.state !== 'creating') {
            clearTimeout(timer);
            live.listeners.delete(settle);
            reject(new ApiError('ERR_KEEP_START_FAILED', `Cannot start the Keep: ${r.error ?? r.state}`));
          }
        };
        live.listeners.add(settle);
        settle();
      });
    } catch (error) {
      await this.#stop(id);
      if (error instanceof ApiError) throw error;
      throw new ApiError('ERR_KEEP_START_FAILED', `Cannot start the Keep: ${(error as Error).message}`, {
        cause: error,
      });
    }
    return id;
  }

  /** Connects to a Keep Loader's socket, retrying while it starts; resolves once it is watched. */
  async #watch(id: string, live: Live, attempts: number, gaveUp: () => boolean = () => false): Promise<void> {
    const r = this.#store.get(id);
    if (!r) throw new Error('no such Keep');
    let socket: Socket | undefined;
    for (let i = 0; ; i++) {
      try {
        socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(r.socketPath);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        break;
      } catch (error) {
        if (i + 1 >= attempts || gaveUp()) throw error;
        await sleep(5);
      }
    }
    live.watch = socket;
    socket.on('error', () => socket.destroy());
    socket.write(encodeFrame({ v: 1, type: 'ldr-watch' }));
    readFrames(
      socket,
      (m) => {
        if (m.type !== 'ldr-event') return;
        const patch: Partial<KeepRecord> = {};
        if (m.ldrPid !== undefined) patch.keepldrPid = m.ldrPid;
        if (m.keepPid !== undefined) patch.keepPid = m.keepPid;
        if (m.exitCode !== undefined) patch.exitCode = m.exitCode;
        if (m.error !== undefined) patch.error = m.error;
        // Every ldr-event carries the whole current list; none means no ports (any more).
        patch.ports = m.ports ?? [];
        this.#setState(id, m.state, patch);
      },
      {
        onError: () => socket.destroy(),
        onEnd: () => socket.destroy(),
      },
    );
    socket.on('close', () => {
      // A Keep Loader that vanished without saying how its Keep ended: the Keep is gone with it.
      setTimeout(() => {
        if (this.#closing) return;
        const now = this.#store.get(id);
        if (now && !isTerminal(now.state)) {
          this.#setState(id, 'failed', { error: 'the Keep Loader ended unexpectedly' });
        }
      }, 50).unref();
    });
  }

  async #stop(id: string): Promise<void> {
    const r = this.#store.get(id);
    if (!r || isTerminal(r.state)) return;
    await new Promise<void>((resolve) => {
      const socket = connect(r.socketPath);
      socket.on('error', () => {
        const pid = r.keepldrPid;
        if (pid !== undefined) {
          try {
            process.kill(pid, 'SIGTERM');
          } catch {
            // already gone
          }
        }
        resolve();
      });
      socket.on('close', () => resolve());
      socket.end(encodeFrame({ v: 1, type: 'ldr-stop' }));
    });
    // The Keep Loader reports `stopped` on its watch socket; wait for it briefly so the answer is current.
    const live = this.#live.get(id);
    if (!live) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, 2000);
      function done(): void {
        clearTimeout(timer);
        live?.listeners.delete(check);
        resolve();
      }
      const check = (): void => {
        const now = this.#store.get(id);
        if (!now || isTerminal(now.state)) done();
      };
      live.listeners.add(check);
      check();
    });
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const refuse = (error: ApiError): void => {
      this.#count(error.code);
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
    let record: KeepRecord;
    try {
      const parts = new URL(req.url ?? '/', 'http://keepmgr').pathname.split('/').filter(Boolean);
      if (parts.length !== 4 || parts[0] !== 'v1' || parts[1] !== 'keeps' || parts[3] !== 'channel') {
        throw new ApiError('ERR_API_ROUTE_NOT_FOUND', 'Cannot upgrade: no such route');
      }
      if ((req.headers.upgrade ?? '').toLowerCase() !== CHANNEL_PROTOCOL) {
        throw new ApiError(
          'ERR_API_BODY_INVALID',
          `Cannot upgrade: the protocol must be ${CHANNEL_PROTOCOL}`,
        );
      }
      record = this.#ownKeep(this.#tenant(req), parts[2]!);
      if (record.state !== 'ready' && record.state !== 'running') {
        throw new ApiError(
          'ERR_KEEP_NOT_READY',
          `Cannot open a channel to Keep ${record.id}: it is ${record.state}`,
        );
      }
    } catch (error) {
      refuse(
        error instanceof ApiError
          ? error
          : new ApiError('ERR_HOST_INTERNAL', 'Cannot upgrade: internal error'),
      );
      return;
    }
    const ldr: Socket = connect(record.socketPath);
    ldr.on('error', () => {
      ldr.destroy();
      socket.destroy();
    });
    ldr.write(encodeFrame({ v: 1, type: 'ldr-channel' }));
    let answer: { message: Message; rest: Buffer };
    try {
      answer = await readFirstFrame(ldr, { timeoutMs: 10_000 });
    } catch {
      ldr.destroy();
      refuse(
        new ApiError(
          'ERR_KEEP_NOT_READY',
          `Cannot open a channel to Keep ${record.id}: its Keep Loader did not answer`,
        ),
      );
      return;
    }
    if (answer.message.type === 'error') {
      ldr.destroy();
      const code =
        answer.message.code === 'ERR_KEEP_CHANNEL_BUSY' ? 'ERR_KEEP_CHANNEL_BUSY' : 'ERR_KEEP_NOT_READY';
      refuse(new ApiError(code, `Cannot open a channel to Keep ${record.id}: ${answer.message.message}`));
      return;
    }
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${CHANNEL_PROTOCOL}\r\n\r\n`,
    );
    if (answer.rest.length > 0) socket.write(answer.rest);
    if (head.length > 0) ldr.write(head);
    // Raw relay: a plaintext hello, then TLS records between the tenant and the Keep. Nothing here can read them.
    socket.pipe(ldr);
    ldr.pipe(socket);
    ldr.resume();
    socket.on('close', () => ldr.destroy());
    ldr.on('close', () => socket.destroy());
    this.#log({ event: 'channel-opened', id: record.id });
  }

  #metrics(): string {
    const states = new Map<string, number>();
    for (const r of this.#store.list()) states.set(r.state, (states.get(r.state) ?? 0) + 1);
    const lines = [
      '# HELP donjon_keeps Keeps by state.',
      '# TYPE donjon_keeps gauge',
      ...['creating', 'ready', 'running', 'exited', 'failed', 'stopped'].map(
        (s) => `donjon_keeps{state="${s}"} ${states.get(s) ?? 0}`,
      ),
      '# HELP donjon_keeps_pooled Pre-started Keeps waiting for a tenant.',
      '# TYPE donjon_keeps_pooled gauge',
      ...[...this.#pool].map(([b, l]) => `donjon_keeps_pooled{backend="${b}"} ${l.length}`),
      '# HELP donjon_keeps_created_total Keeps handed to tenants since start.',
      '# TYPE donjon_keeps_created_total counter',
      `donjon_keeps_created_total ${this.#counters.created}`,
      '# HELP donjon_api_errors_total API refusals by code since start.',
      '# TYPE donjon_api_errors_total counter',
      ...[...this.#counters.requests]
        .filter(([code]) => code.startsWith('ERR_'))
        .map(([code, n]) => `donjon_api_errors_total{code="${code}"} ${n}`),
      '# HELP donjon_process_resident_memory_bytes Resident memory of the Keep Manager.',
      '# TYPE donjon_process_resident_memory_bytes gauge',
      `donjon_process_resident_memory_bytes ${process.memoryUsage().rss}`,
    ];
    return `${lines.join('\n')}\n`;
  }
}
