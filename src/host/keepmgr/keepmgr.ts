import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { reasonOf } from '../../lib/errors.ts';
import { lowerLimits } from '../../lib/limits.ts';
import type { Limits, MessageOf } from '../../protocol/messages.ts';
import { BACKENDS, type BackendName, isBackendName } from '../backends/index.ts';
import { ApiError } from '../errors.ts';
import type { KeepLoaderConfig } from '../keepldr/keepldr.ts';
import { TIMEOUTS } from '../timeouts.ts';
import { Admission, LOCAL_TENANT, type Quotas } from './admission.ts';
import { ApiServer } from './api-server.ts';
import { BlobCache } from './blob-cache.ts';
import { Deployments, deploymentMessage } from './deployments.ts';
import { KeepLists, keepDeployment } from './keep-lists.ts';
import { launcherFor } from './launchers.ts';
import { Metrics } from './metrics.ts';
import { Pool } from './pool.ts';
import { KeepRecords, type LogEntry } from './records.ts';
import { connectChannel, openChannel } from './relay.ts';
import { API_ROUTES, channelable, type KeepApi, requestAs, shown } from './routes.ts';
import { isTerminal, type KeepRecord, type KeepStore, MemoryStore } from './store.ts';
import { Supervisor, type Timeouts } from './supervisor.ts';

export type { Quotas } from './admission.ts';
export { keepmgrChannel } from './records.ts';
export { API_ROUTES } from './routes.ts';

/** Default largest request body, bytes. */
const MAX_BODY_BYTES = 64 * 1024;

export interface KeepManagerOptions {
  /** The Keep runtime bundle each Keep Loader starts and measures. */
  runtimePath: string;
  /** The Keep Loader program. */
  keepldrPath: string;
  /** Folder for the Keep Loaders' sockets (and logs, for detached ones). Must be private and short. */
  runDir: string;
  /** This host's simulated root (for the `sim` backend). */
  simRootPath?: string;
  /** This host's simulated Intel platform (for the `sgx-sim` backend). */
  simSgxRootPath?: string;
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
  /** How long a Keep may take to become ready (default `TIMEOUTS.keepStart`). */
  startTimeoutMs?: number;
  /** Timeouts to use instead of those of src/host/timeouts.ts (tests shorten them). */
  timeouts?: Partial<Timeouts>;
  /** Connections open at once on the API; more are dropped (default `MAX_CONNECTIONS`). */
  maxConnections?: number;
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
   * `in-process`: the Keep Manager embedded in one `donjon run` plays the Keep Loader's role itself (see
   * inprocess-launcher.ts); each Keep is still a process of its own.
   */
  launcher?: 'child' | 'systemd' | 'in-process';
  /** Serve HTTPS with this identity; plain HTTP without it. */
  tls?: { keyPem: string; certPem: string };
  /** Pre-started Keeps per backend, ready for a tenant's nonce. */
  pool?: Partial<Record<BackendName, number>>;
  /** Structured log lines (lifecycle only). */
  log?: (entry: Record<string, unknown>) => void;
  /** The host's cache of registry blobs, shared by every deployment's Keeps; none: every pull fetches. */
  blobCache?: { dir: string; maxBytes?: number };
}

/** A Keep Manager's API for a client in its own process: see {@link KeepManager.local}. */
export interface LocalKeepApi {
  create(request: MessageOf<'create-keep'>): Promise<MessageOf<'keep'>>;
  get(id: string): MessageOf<'keep'>;
  stop(id: string): Promise<MessageOf<'keep'>>;
  /** The Keep's channel: a byte stream to the Keep, relayed by its Keep Loader only. */
  channel(id: string): Promise<Socket>;
}

/**
 * The Keep Manager: the host's API for tenants. It records Keeps, starts one Keep Loader per Keep and relays
 * each Keep's channel as raw bytes. It is not trusted by tenants and never sees workload data in the clear.
 *
 * It ties together one part per concern: {@link ApiServer} (serving and the route table), `Admission` (tokens,
 * quotas, rates), `Pool`, `Supervisor` (launching, watching and ending Keep Loaders), `KeepRecords` (the
 * records along the lifecycle table), the channel relay and `Metrics`.
 *
 * A daemon listens first and adopts after: it never holds Keeps it cannot serve.
 */
export class KeepManager {
  readonly #options: KeepManagerOptions;
  readonly #timeouts: Timeouts;
  readonly #records: KeepRecords;
  readonly #admission: Admission;
  readonly #metrics = new Metrics();
  readonly #pool: Pool;
  readonly #supervisor: Supervisor;
  readonly #server: ApiServer<KeepApi>;
  readonly #deployments: Deployments;
  #closing = false;
  #adopting = false;
  readonly #lists: KeepLists;

  constructor(options: KeepManagerOptions) {
    this.#options = options;
    this.#timeouts = { ...TIMEOUTS, ...options.timeouts };
    if (options.startTimeoutMs !== undefined)
      this.#timeouts = { ...this.#timeouts, keepStart: options.startTimeoutMs };
    const log = (entry: LogEntry): void => this.#log(entry);
    const store = options.store ?? new MemoryStore();
    mkdirSync(options.runDir, { recursive: true, mode: 0o700 });
    this.#records = new KeepRecords(store, log);
    this.#admission = new Admission(store, options);
    this.#supervisor = new Supervisor({
      launcher: launcherFor(options),
      keepldrPath: options.keepldrPath,
      runDir: options.runDir,
      records: this.#records,
      timeouts: this.#timeouts,
      log,
    });
    this.#pool = new Pool({
      wanted: options.pool ?? {},
      store,
      start: (backend) => this.#launch('', backend, {}),
      onError: (backend, error) => this.#log({ event: 'pool-fill-failed', backend, error: reasonOf(error) }),
      retryMs: this.#timeouts.poolRetry,
    });
    this.#deployments = new Deployments({
      records: this.#records,
      launch: (owner, backend, limits) => this.#launch(owner, backend, limits),
      stop: (id) => this.#supervisor.stop(id),
      cache: options.blobCache && new BlobCache(options.blobCache.dir, options.blobCache.maxBytes),
      timeouts: this.#timeouts,
      log,
    });
    this.#lists = new KeepLists(store, () => this.#deployments.byKeep());
    this.#server = new ApiServer<KeepApi>({
      routes: API_ROUTES,
      api: this.#api(),
      authenticate: (req) => this.#admission.tenant(req),
      tls: options.tls,
      timeouts: this.#timeouts,
      maxConnections: options.maxConnections,
      onAnswer: (code) => this.#metrics.count(code),
      onDrop: () => this.#metrics.connectionRefused(),
      log,
    });
  }

  get store(): KeepStore {
    return this.#records.store;
  }

  #log(entry: LogEntry): void {
    this.#options.log?.({ time: new Date().toISOString(), ...entry });
  }

  /**
   * Finds the Keeps a previous run of this Keep Manager left: those whose Keep Loader still answers are
   * watched again; the others died while nobody watched and are marked failed. Files in the run folder that
   * belong to no record are removed. Call it after {@link listen}: a daemon that cannot serve adopts nothing.
   */
  async adopt(): Promise<{ adopted: number; lost: number }> {
    let adopted = 0;
    let lost = 0;
    this.#adopting = true;
    try {
      const records = this.#records.store.list();
      this.#supervisor.sweep(new Set(records.map((r) => r.id)));
      for (const r of records) {
        if (isTerminal(r.state)) continue;
        if (await this.#supervisor.adopt(r)) {
          adopted++;
          if (r.owner === '' && r.state === 'ready' && isBackendName(r.backend))
            this.#pool.add(r.backend, r.id);
        } else {
          this.#records.fail(r.id, 'the Keep ended while the Keep Manager was away');
          lost++;
        }
      }
    } finally {
      this.#adopting = false;
    }
    this.#log({ event: 'adopted', adopted, lost });
    // Deployments whose Keep did not survive the Keep Manager's absence are recreated without their tenant.
    const recreating = this.#deployments.resume();
    if (recreating > 0) this.#log({ event: 'deployments-resumed', recreating });
    this.#fillPool();
    return { adopted, lost };
  }

  /**
   * Starts serving on host:port (port 0 picks one); resolves to the base URL. Rejects with a KeepManagerError
   * ERR_LISTEN_FAILED ("Cannot listen on 127.0.0.1:8787: the address is in use") when it cannot bind.
   */
  async listen(host = '127.0.0.1', port = 0): Promise<string> {
    const url = await this.#server.listen(host, port);
    // After the caller's adopt() has begun, if it adopts: the pool counts the Keeps adopted into it first.
    setImmediate(() => this.#fillPool());
    return url;
  }

  /**
   * This host's Keep API for a client in its own process (the host `donjon run` embeds): what the routes do,
   * called directly as the local tenant, with no HTTP between, and a Keep's channel is its Keep Loader's
   * connection itself, with no relay of this process in the way. Requests are checked as the routes check them;
   * refusals are thrown as ApiErrors.
   */
  local(): LocalKeepApi {
    const api = this.#api();
    return {
      create: async (request) =>
        shown(api, await api.create(LOCAL_TENANT, requestAs(request, 'create-keep', 'create a Keep'))),
      get: (id) => shown(api, api.ownKeep(LOCAL_TENANT, id)),
      stop: async (id) => shown(api, await api.stop(api.ownKeep(LOCAL_TENANT, id))),
      channel: async (id) => {
        const record = channelable(api.ownKeep(LOCAL_TENANT, id));
        const socket = await connectChannel(record, this.#timeouts.channelAnswer);
        this.#log({ event: 'channel-opened', id: record.id });
        return socket;
      },
    };
  }

  /**
   * Stops serving. Keeps started detached are left running for the next start to adopt; attached ones are
   * stopped and waited for.
   */
  async close(): Promise<void> {
    this.#closing = true;
    this.#deployments.close();
    this.#pool.stop();
    await this.#supervisor.close();
    await this.#server.close();
    this.#records.close();
  }

  #fillPool(): void {
    if (!this.#adopting && !this.#closing) this.#pool.fill();
  }

  /** What the routes act on. */
  #api(): KeepApi {
    return {
      ownKeep: (tenant, id) => this.#admission.ownKeep(tenant, id),
      keepList: (tenant) => this.#lists.of(tenant),
      create: (tenant, request) => this.#create(tenant, request),
      stop: async (record) => {
        await this.#supervisor.stop(record.id);
        return this.#records.get(record.id) ?? record;
      },
      remove: (record) => {
        this.#records.remove(record.id);
        this.#supervisor.forget(record);
        this.#log({ event: 'removed', id: record.id });
      },
      events: (id) => this.#records.store.events(id),
      channel: async (record: KeepRecord, socket: Duplex, head: Buffer) => {
        await openChannel(record, socket, head, this.#timeouts.channelAnswer);
        this.#log({ event: 'channel-opened', id: record.id });
      },
      metrics: () => this.#metrics.render(this.#records.store, this.#pool.sizes()),
      maxBodyBytes: this.#options.maxBodyBytes ?? MAX_BODY_BYTES,
      deploymentOf: (keepId) => {
        const d = this.#deployments.ofKeep(keepId);
        return d && keepDeployment(d);
      },

      createDeployment: async (tenant, request) => {
        if (this.#closing)
          throw new ApiError(
            'ERR_HOST_SHUTTING_DOWN',
            'Cannot store a deployment: the host is shutting down',
          );
        const { v: _v, type: _type, ...spec } = request;
        this.#offered(spec.backend);
        this.#admission.checkLimits(spec.limits ?? {});
        this.#admission.admitCreate(tenant);
        return deploymentMessage(await this.#deployments.create(tenant, spec));
      },
      listDeployments: (tenant) => this.#deployments.list(tenant).map(deploymentMessage),
      ownDeployment: (tenant, id) => deploymentMessage(this.#deployments.own(tenant, id)),
      removeDeployment: async (tenant, id) =>
        deploymentMessage(await this.#deployments.remove(this.#deployments.own(tenant, id))),
    };
  }

  /** The backend if this host offers it, else ERR_API_BACKEND_UNAVAILABLE. */
  #offered(backend: string): BackendName {
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
    if (backend === 'sgx-sim' && !this.#options.simSgxRootPath) {
      throw new ApiError(
        'ERR_API_BACKEND_UNAVAILABLE',
        'Cannot create an sgx-sim Keep: this host has no simulated Intel platform',
      );
    }
    return backend;
  }

  async #create(tenant: string, request: MessageOf<'create-keep'>): Promise<KeepRecord> {
    if (this.#closing)
      throw new ApiError('ERR_HOST_SHUTTING_DOWN', 'Cannot create a Keep: the host is shutting down');
    const backend = this.#offered(request.backend);
    const limits = request.limits ?? {};
    this.#admission.checkLimits(limits);
    this.#admission.admitCreate(tenant);
    const publish = request.publish ?? [];
    // A pooled Keep was started with no limits of the tenant's and no ports asked for.
    const pooled =
      Object.keys(limits).length === 0 && publish.length === 0 ? this.#pool.take(backend) : undefined;
    let id: string;
    if (pooled) {
      id = pooled;
      this.#records.patch(id, { owner: tenant });
      this.#records.event(id, 'ready', 'assigned from the pool');
      // Its replacement starts once it ended, or has run for `poolRefillRunning`, or after `poolRefill`: a Keep
      // Loader and a Keep starting meanwhile would take the cores from this Keep on its way to the tenant's
      // first bytes (its start, then its first output).
      const assigned = Date.now();
      const t = this.#timeouts;
      void this.#records
        .waitFor(id, (r) => r.state !== 'ready', t.poolRefill, { background: true })
        .then((r) =>
          r?.state === 'running'
            ? this.#records.waitFor(
                id,
                (x) => x.state !== 'running',
                Math.max(0, Math.min(t.poolRefillRunning, assigned + t.poolRefill - Date.now())),
                { background: true },
              )
            : r,
        )
        .then(() => this.#fillPool());
    } else {
      id = await this.#launch(tenant, backend, limits, publish, request.wait ?? 'ready');
      this.#fillPool();
    }
    this.#metrics.created();
    const record = this.#records.get(id);
    if (!record) throw new ApiError('ERR_KEEP_START_FAILED', 'Cannot start the Keep: its record was removed');
    return record;
  }

  /**
   * Records a new Keep and starts its Keep Loader; resolves to its id once it is ready, or with `wait`
   * `started` once its Keep Loader runs (the Keep still `creating`: a channel opened now waits in the Keep
   * Loader until the Keep is ready). Either way a Keep that never becomes ready ends `failed`.
   */
  async #launch(
    owner: string,
    backend: BackendName,
    limits: Limits,
    publish: MessageOf<'create-keep'>['publish'] = [],
    wait: 'ready' | 'started' = 'ready',
  ): Promise<string> {
    const o = this.#options;
    const id = randomBytes(8).toString('hex');
    const socketPath = join(o.runDir, `${id}.sock`);
    const config: KeepLoaderConfig = {
      id,
      backend,
      socketPath,
      runtimePath: o.runtimePath,
      limits: lowerLimits(o.limits ?? {}, limits),
    };
    if (publish.length > 0) config.publish = publish;
    if (o.simRootPath) config.simRootPath = o.simRootPath;
    if (o.simSgxRootPath) config.simSgxRootPath = o.simSgxRootPath;
    if (o.maxWasmBytes !== undefined) config.maxWasmBytes = o.maxWasmBytes;
    if (o.collateralCacheDir !== undefined) config.collateralCacheDir = o.collateralCacheDir;
    const now = Date.now();
    this.#records.insert({
      id,
      owner,
      backend,
      state: 'creating',
      createdAt: now,
      updatedAt: now,
      socketPath,
      limits,
    });
    // From here on, every failure ends the record `failed` with its reason: a record left `creating` would
    // count against its tenant's quotas for ever.
    const deadline = Date.now() + this.#timeouts.keepStart;
    const failed = async (error: unknown): Promise<ApiError> => {
      let reason = reasonOf(error);
      try {
        this.#records.fail(id, reason);
        reason = this.#records.get(id)?.error ?? reason;
      } catch (storeError) {
        this.#log({ event: 'record-failed-unrecorded', id, error: reasonOf(storeError) });
      }
      await this.#supervisor.abandon(id).catch(() => {});
      return new ApiError('ERR_KEEP_START_FAILED', `Cannot start the Keep: ${reason}`, { cause: error });
    };
    const ready = async (): Promise<void> => {
      const r = await this.#records.waitFor(
        id,
        (x) => x.state !== 'creating',
        Math.max(0, deadline - Date.now()),
      );
      if (!r) throw new Error('its record was removed');
      if (r.state === 'creating') throw new Error('it did not become ready in time');
      if (r.state !== 'ready' && r.state !== 'running') throw new Error(r.error ?? `it is ${r.state}`);
    };
    try {
      await this.#supervisor.start(config, deadline);
    } catch (error) {
      throw await failed(error);
    }
    if (wait === 'started') {
      // Answered now; a Keep that does not become ready still ends `failed`, as below.
      void ready().catch((error: unknown) => (this.#closing ? undefined : failed(error)));
      return id;
    }
    try {
      await ready();
      return id;
    } catch (error) {
      throw await failed(error);
    }
  }
}
