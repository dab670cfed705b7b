// One service replica as a Kubernetes container runs it: the Keep Loader and the Keep for one workload,
// pulled by digest, deployed as the Keep Manager deploys a stored deployment (the artifact attached, so the
// Keep checks digests and signatures itself), with probes, and a drain on SIGTERM. Everything it is given is
// public (reference, Enarx.toml, verifying keys, the simulated root of a development cluster); what it logs
// and keeps in its state folder is public too: lifecycle events, and the Keep Loader's socket.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { isDonjonError, reasonOf } from '../../lib/errors.ts';
import type { FileSpec, MessageOf, SecretSpec } from '../../protocol/messages.ts';
import type { Credentials } from '../../registry/index.ts';
import type { KeepLoaderConfig } from '../keepldr/keepldr.ts';
import { deliverDeploy, pulledDeployMessage } from '../keepmgr/host-deploy.ts';
import { attachedLauncher, type Launched } from '../keepmgr/launchers.ts';
import { type PulledArtifact, pullArtifact } from '../keepmgr/puller.ts';
import { TIMEOUTS } from '../timeouts.ts';
import { KeepPodError } from './errors.ts';
import { HealthServer } from './health.ts';
import { drainLoader, stopLoader, watchLoader } from './loader.ts';

/** The backends a replica runs on: a simulated one for development clusters, or a confidential VM node. */
export type PodBackend = 'sim' | 'cvm';

/** The downward API's view of the Pod (each optional: a plain process has none). */
export interface PodIdentity {
  name?: string | undefined;
  namespace?: string | undefined;
  ip?: string | undefined;
  node?: string | undefined;
}

/** Everything one replica needs; public values only. */
export interface KeepPodOptions {
  /** `host/repo[:tag]@sha256:…`: pinned. */
  reference: string;
  /** PEM public keys its signature must verify under; none: it runs unsigned. */
  keys: readonly string[];
  backend: PodBackend;
  /** What the Enarx.toml gives the workload. */
  workload: { args: string[]; env: Record<string, string>; files: FileSpec[]; secrets?: SecretSpec[] };
  /** `sim`: the shared simulated root (`sim-root.cbor`). */
  simRootPath?: string | undefined;
  /** The Keep Loader's socket goes here (and for `cvm` the cache of public collateral); nothing else. */
  stateDir: string;
  /** Where the listen files' ports are bound, each on exactly its Enarx.toml port. */
  listenAddress: string;
  health: { host: string; port: number };
  /** How long a drain may take after SIGTERM, the Keep's stop included. */
  gracePeriodMs: number;
  plainHttp?: boolean | undefined;
  credentials?: Credentials | undefined;
  pod: PodIdentity;
  /** The Keep runtime bundle and the Keep Loader program (dist/keep.cjs, dist/keepldr.cjs). */
  runtimePath: string;
  keepldrPath: string;
  /** One lifecycle event (a JSON line on stderr at the command line). */
  log: (entry: Record<string, unknown>) => void;
  /** Aborted by SIGTERM or SIGINT: the drain begins. */
  signal: AbortSignal;
  /** The probes' port once bound (port 0 picks one). */
  onHealth?: (port: number) => void;
}

/** Where a replica is in its life. */
export type PodState = 'starting' | 'ready' | 'draining' | 'stopped' | 'failed';

/** After SIGTERM, the part of the grace period kept for stopping the Keep (at most half of it). */
const STOP_RESERVE_MS = TIMEOUTS.killAfter + TIMEOUTS.finalFlush;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)).unref());
}

function kill(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/**
 * One replica: `run()` resolves after a drain (the container exits 0) and rejects when the pull, the deploy,
 * the Keep Loader or the Keep fails (a non-zero exit: Kubernetes restarts the container).
 */
export class KeepPod {
  readonly #o: KeepPodOptions;
  readonly #health: HealthServer;
  readonly #socketPath: string;
  #state: PodState = 'starting';
  #child: Launched | undefined;
  /** The Keep Loader's process has ended (told by the launcher's `onEnd`). */
  #loaderGone = false;
  #loaderEnded: Promise<void> | undefined;
  #keepPid: number | undefined;
  #ports: { name: string; port: number }[] = [];
  /** Rejects the current wait when the Keep Loader or the Keep ends unasked. */
  #fail: (error: Error) => void = () => {};
  readonly #failed: Promise<never>;
  #tail: string[] = [];

  constructor(options: KeepPodOptions) {
    this.#o = options;
    this.#socketPath = join(options.stateDir, 'keepldr.sock');
    this.#health = new HealthServer({
      alive: () => this.#state !== 'failed' && this.#state !== 'stopped',
      ready: () => this.#state === 'ready',
    });
    this.#failed = new Promise<never>((_, reject) => {
      this.#fail = reject;
    });
    this.#failed.catch(() => {});
  }

  get state(): PodState {
    return this.#state;
  }

  async run(): Promise<void> {
    const o = this.#o;
    o.log({
      event: 'startup',
      pod: o.pod.name ?? null,
      namespace: o.pod.namespace ?? null,
      node: o.pod.node ?? null,
      podIp: o.pod.ip ?? null,
      reference: o.reference,
      backend: o.backend,
      gracePeriodSeconds: o.gracePeriodMs / 1000,
    });
    const port = await this.#health.listen(o.health.host, o.health.port);
    o.onHealth?.(port);
    o.log({ event: 'probes', address: `${o.health.host}:${port}` });
    const interrupted = new Promise<'signal'>((resolve) => {
      if (o.signal.aborted) resolve('signal');
      else o.signal.addEventListener('abort', () => resolve('signal'), { once: true });
    });
    try {
      const first = await Promise.race([this.#start(), interrupted, this.#failed]);
      if (first !== 'signal') {
        this.#state = 'ready';
        o.log({ event: 'ready', ports: this.#ports, keepPid: this.#keepPid ?? null });
        await Promise.race([interrupted, this.#failed]);
      }
      await this.#drain();
    } catch (error) {
      this.#state = 'failed';
      await this.#stop(Date.now() + STOP_RESERVE_MS + TIMEOUTS.finalFlush);
      throw error;
    } finally {
      await this.#health.close();
    }
  }

  /** Pulls, starts the Keep Loader and deploys into its Keep; resolves once the workload started. */
  async #start(): Promise<'started'> {
    const o = this.#o;
    const pulled = await this.#pull();
    // A drain that began meanwhile has stopped what there was: nothing more is started (or logged).
    if (this.#stopping()) return 'started';
    o.log({
      event: 'pulled',
      reference: o.reference,
      digest: pulled.digest,
      moduleBytes: pulled.wasm.byteLength,
      signed: o.keys.length > 0,
    });
    await this.#launch();
    const deploy = pulledDeployMessage(pulled, o.keys, {
      args: o.workload.args,
      env: o.workload.env,
      files: o.workload.files,
      ...(o.workload.secrets ? { secrets: o.workload.secrets } : {}),
    });
    if (this.#stopping()) return 'started';
    try {
      await deliverDeploy(this.#socketPath, deploy, TIMEOUTS.hostDeploy);
    } catch (error) {
      throw new KeepPodError('ERR_POD_KEEP_FAILED', `Cannot deploy ${o.reference}: ${reasonOf(error)}`, {
        cause: error,
      });
    }
    return 'started';
  }

  #stopping(): boolean {
    return this.#o.signal.aborted || this.#state === 'failed';
  }

  async #pull(): Promise<PulledArtifact> {
    const o = this.#o;
    try {
      return await pullArtifact(
        { reference: o.reference, keys: o.keys, ...(o.plainHttp ? { plainHttp: true } : {}) },
        { credentials: o.credentials },
      );
    } catch (error) {
      // A registry's own refusal keeps its code (a signature that does not verify is `refused`).
      if (isDonjonError(error)) throw error;
      throw new KeepPodError('ERR_POD_KEEP_FAILED', `Cannot pull ${o.reference}: ${reasonOf(error)}`, {
        cause: error,
      });
    }
  }

  /** Starts the Keep Loader (attached: it stops its Keep when this process ends) and waits for its Keep. */
  async #launch(): Promise<void> {
    const o = this.#o;
    const config: KeepLoaderConfig = {
      id: randomBytes(8).toString('hex'),
      backend: o.backend,
      socketPath: this.#socketPath,
      runtimePath: o.runtimePath,
      limits: {},
      listenAddress: o.listenAddress,
      // The Service's targetPort is the Enarx.toml's port: a listen file gets that port or none.
      hostPorts: 'same',
    };
    if (o.simRootPath !== undefined) config.simRootPath = o.simRootPath;
    if (o.backend === 'cvm') config.collateralCacheDir = join(o.stateDir, 'collateral');
    let ended!: () => void;
    this.#loaderEnded = new Promise((resolve) => {
      ended = resolve;
    });
    const child = await attachedLauncher.launch({
      config,
      keepldrPath: o.keepldrPath,
      runDir: o.stateDir,
      onLine: (line) => {
        this.#tail.push(line);
        if (this.#tail.length > 20) this.#tail.shift();
        o.log({ event: 'keepldr-log', line });
      },
      onEnd: ({ code, signal, error }) => {
        this.#loaderGone = true;
        ended();
        if (this.#state === 'draining' || this.#state === 'stopped') return;
        const how = error ? reasonOf(error) : signal ? `signal ${signal}` : `status ${code}`;
        const said = [...this.#tail].reverse().find((l) => l.startsWith('donjon keepldr: '));
        this.#fail(
          new KeepPodError(
            'ERR_POD_KEEP_FAILED',
            `Cannot serve ${o.reference}: the Keep Loader ended (${how})${said ? `: ${said}` : ''}`,
          ),
        );
      },
    });
    this.#child = child;
    const deadline = Date.now() + TIMEOUTS.keepStart;
    let ready!: () => void;
    const isReady = new Promise<void>((resolve) => {
      ready = resolve;
    });
    for (;;) {
      try {
        await watchLoader(
          this.#socketPath,
          (e) => this.#onEvent(e, ready),
          () => {},
        );
        break;
      } catch {
        if (this.#stopping()) return;
        if (Date.now() >= deadline)
          throw new KeepPodError(
            'ERR_POD_KEEP_FAILED',
            'Cannot start the Keep: its Keep Loader did not open its socket in time',
          );
        await Promise.race([sleep(TIMEOUTS.watchRetry * 4), this.#failed]);
      }
    }
    const left = deadline - Date.now();
    const timer = sleep(left).then(() => {
      throw new KeepPodError('ERR_POD_KEEP_FAILED', 'Cannot start the Keep: it did not become ready in time');
    });
    await Promise.race([isReady, this.#failed, timer]);
  }

  #onEvent(e: MessageOf<'ldr-event'>, ready: () => void): void {
    if (e.keepPid !== undefined) this.#keepPid = e.keepPid;
    this.#ports = (e.ports ?? []).map((p) => ({ name: p.name, port: p.port }));
    if (e.state === 'ready' || e.state === 'running') {
      ready();
      return;
    }
    if (e.state === 'creating' || this.#state === 'draining' || this.#state === 'stopped') return;
    this.#fail(
      new KeepPodError(
        'ERR_POD_KEEP_FAILED',
        `Cannot serve ${this.#o.reference}: the Keep ${e.state}${e.error ? `: ${e.error}` : ''}`,
      ),
    );
  }

  /**
   * SIGTERM: not ready at once, the listen files stop accepting, open connections may finish until the grace
   * period nearly ends, then the Keep is stopped; all within the grace period.
   */
  async #drain(): Promise<void> {
    const o = this.#o;
    const began = Date.now();
    const deadline = began + o.gracePeriodMs;
    this.#state = 'draining';
    o.log({ event: 'draining', gracePeriodSeconds: o.gracePeriodMs / 1000 });
    let drained = true;
    if (this.#child) {
      const until = deadline - Math.min(STOP_RESERVE_MS, o.gracePeriodMs / 2);
      drained = await Promise.race([
        drainLoader(this.#socketPath).then(() => true),
        sleep(until - Date.now()).then(() => false),
      ]);
    }
    await this.#stop(deadline);
    this.#state = 'stopped';
    o.log({ event: 'stopped', drained, ms: Date.now() - began });
  }

  /** Stops the Keep through its Keep Loader; kills both if they are not gone by `deadline`. */
  async #stop(deadline: number): Promise<void> {
    const child = this.#child;
    if (!child || !this.#loaderEnded) return;
    if (!this.#loaderGone && !(await stopLoader(this.#socketPath)) && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
    }
    const gone = await Promise.race([
      this.#loaderEnded.then(() => true),
      sleep(deadline - Date.now()).then(() => false),
    ]);
    if (!gone) {
      this.#o.log({ event: 'killed', reason: 'the Keep did not stop within the grace period' });
      kill(child.pid);
      kill(this.#keepPid);
    }
  }
}
