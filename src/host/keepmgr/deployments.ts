// Deployments: services the Keep Manager recreates without their tenant. A deployment is stored (public
// fields only: the reference pinned to its digest, the configuration, the verifying keys); when its Keep
// ends, or when the Keep Manager starts and finds it without a live Keep, a new Keep is created, the
// artifact pulled by digest (through the host's blob cache) and deployed with the artifact attached, so the
// Keep checks digests and signatures itself. Restarts wait a back-off that doubles up to a ceiling, and stop
// after `maxRestarts`.
import { randomBytes } from 'node:crypto';
import { reasonOf } from '../../lib/errors.ts';
import type { Limits, MessageOf } from '../../protocol/messages.ts';
import type { BackendName } from '../backends/index.ts';
import { ApiError } from '../errors.ts';
import type { BlobCache } from './blob-cache.ts';
import { deliverDeploy, pulledDeployMessage } from './host-deploy.ts';
import { pullArtifact, pullFailure } from './puller.ts';
import type { KeepRecords, LogEntry } from './records.ts';
import { type DeploymentRecord, type DeploymentSpec, isTerminal, type KeepRecord } from './store.ts';

/** What the deployments need of the Keep Manager. */
export interface DeploymentsOptions {
  readonly records: KeepRecords;
  /** Creates a Keep for `owner` and resolves to its id once it is ready (throws with the reason). */
  readonly launch: (owner: string, backend: BackendName, limits: Limits) => Promise<string>;
  /** Stops a Keep (one left behind by a failed attempt). */
  readonly stop: (id: string) => Promise<void>;
  readonly cache?: BlobCache | undefined;
  readonly timeouts: { restartBackoff: number; restartBackoffMax: number; hostDeploy: number };
  readonly log: (entry: LogEntry) => void;
}

/** The wait before restart number `n + 1` (n restarts made): doubles from `base`, at most `max`. */
export function restartDelay(n: number, base: number, max: number): number {
  return Math.min(max, base * 2 ** Math.min(n, 20));
}

/** The `deployment` message of a record. */
export function deploymentMessage(d: DeploymentRecord): MessageOf<'deployment'> {
  const m: MessageOf<'deployment'> = {
    v: 1,
    type: 'deployment',
    id: d.id,
    reference: d.spec.reference,
    backend: d.spec.backend,
    restart: d.spec.restart,
    state: d.state,
    restarts: d.restarts,
    createdAt: d.createdAt,
  };
  if (d.spec.maxRestarts !== undefined) m.maxRestarts = d.spec.maxRestarts;
  if (d.keepId !== undefined) m.keepId = d.keepId;
  if (d.lastFailure !== undefined) m.lastFailure = d.lastFailure;
  return m;
}

/** Recreates the Keeps of stored deployments; see the file's head. */
export class Deployments {
  readonly #o: DeploymentsOptions;
  /** Deployments with a restart waiting or under way: a Keep ending meanwhile schedules nothing more. */
  readonly #pending = new Map<string, NodeJS.Timeout | 'running'>();
  #closed = false;

  constructor(options: DeploymentsOptions) {
    this.#o = options;
    options.records.onEnded = (r) => this.#ended(r);
  }

  get #store() {
    return this.#o.records.store;
  }

  list(owner: string): DeploymentRecord[] {
    return this.#store.listDeployments(owner);
  }

  /** The tenant's own deployment, or ERR_DEPLOYMENT_NOT_FOUND. */
  own(owner: string, id: string): DeploymentRecord {
    const d = this.#store.getDeployment(id);
    if (!d || d.owner !== owner)
      throw new ApiError('ERR_DEPLOYMENT_NOT_FOUND', `Cannot find deployment ${id}: no such deployment`);
    return d;
  }

  /** The deployment whose current Keep is `keepId`, if any. */
  ofKeep(keepId: string): DeploymentRecord | undefined {
    return this.#store.listDeployments().find((d) => d.keepId === keepId);
  }

  /** Every deployment that has a current Keep, by that Keep's id (one read of the store). */
  byKeep(): Map<string, DeploymentRecord> {
    const out = new Map<string, DeploymentRecord>();
    for (const d of this.#store.listDeployments()) {
      if (d.keepId !== undefined && !out.has(d.keepId)) out.set(d.keepId, d);
    }
    return out;
  }

  /**
   * Stores a deployment and makes its first Keep at once, so that a tenant hears of a refused artifact (a
   * signature that does not verify, a digest that does not match) from its own command. A first Keep that
   * fails leaves no deployment behind.
   */
  async create(owner: string, spec: DeploymentSpec): Promise<DeploymentRecord> {
    if (!/@sha256:[0-9a-f]{64}$/.test(spec.reference)) {
      throw new ApiError(
        'ERR_API_BODY_INVALID',
        `Cannot store deployment of ${spec.reference}: its reference is not pinned to a digest`,
      );
    }
    const now = Date.now();
    const d: DeploymentRecord = {
      id: `d${randomBytes(7).toString('hex')}`,
      owner,
      state: 'active',
      createdAt: now,
      updatedAt: now,
      restarts: 0,
      spec,
    };
    this.#store.insertDeployment(d);
    this.#pending.set(d.id, 'running');
    try {
      await this.#attempt(d);
    } catch (error) {
      this.#store.removeDeployment(d.id);
      throw new ApiError('ERR_KEEP_START_FAILED', `Cannot deploy ${spec.reference}: ${reasonOf(error)}`, {
        cause: error,
      });
    } finally {
      this.#pending.delete(d.id);
    }
    this.#o.log({ event: 'deployment-created', id: d.id, reference: spec.reference });
    return this.#store.getDeployment(d.id) ?? d;
  }

  /** Stops recreating a deployment and stops its Keep. */
  async stop(d: DeploymentRecord): Promise<DeploymentRecord> {
    this.#cancel(d.id);
    this.#store.updateDeployment(d.id, { state: 'stopped', updatedAt: Date.now() });
    const keep = d.keepId === undefined ? undefined : this.#o.records.get(d.keepId);
    if (keep && !isTerminal(keep.state)) await this.#o.stop(keep.id);
    this.#o.log({ event: 'deployment-stopped', id: d.id });
    return this.#store.getDeployment(d.id) ?? d;
  }

  /** Removes a deployment's record (stopping it first). */
  async remove(d: DeploymentRecord): Promise<DeploymentRecord> {
    const stopped = await this.stop(d);
    this.#store.removeDeployment(d.id);
    return stopped;
  }

  /**
   * After a start (and the adoption of the Keeps a previous run left): every active deployment without a
   * live Keep is recreated, after the back-off its restarts so far call for.
   */
  resume(): number {
    let n = 0;
    for (const d of this.#store.listDeployments()) {
      if (d.state !== 'active' || this.#pending.has(d.id)) continue;
      const keep = d.keepId === undefined ? undefined : this.#o.records.get(d.keepId);
      if (keep && !isTerminal(keep.state)) continue;
      this.#schedule(d, 0);
      n++;
    }
    return n;
  }

  close(): void {
    this.#closed = true;
    for (const id of [...this.#pending.keys()]) this.#cancel(id);
  }

  #cancel(id: string): void {
    const p = this.#pending.get(id);
    if (p !== undefined && p !== 'running') clearTimeout(p);
    if (p !== 'running') this.#pending.delete(id);
  }

  /** A Keep ended: when it is a deployment's current Keep, its policy decides whether it is recreated. */
  #ended(r: KeepRecord): void {
    if (this.#closed) return;
    const d = this.ofKeep(r.id);
    if (d?.state !== 'active' || this.#pending.has(d.id)) return;
    const failure = r.state === 'failed' ? (r.error ?? 'the Keep failed') : undefined;
    if (failure !== undefined)
      this.#store.updateDeployment(d.id, { lastFailure: failure, updatedAt: Date.now() });
    // A Keep its tenant stopped (`keeps stop`) ends the deployment under either policy, as `docker stop` does.
    if (r.state === 'stopped' || (d.spec.restart === 'on-failure' && r.state === 'exited')) {
      this.#store.updateDeployment(d.id, { state: 'stopped', updatedAt: Date.now() });
      return;
    }
    const t = this.#o.timeouts;
    this.#schedule(d, restartDelay(d.restarts, t.restartBackoff, t.restartBackoffMax));
  }

  #schedule(d: DeploymentRecord, delayMs: number): void {
    const max = d.spec.maxRestarts;
    if (max !== undefined && d.restarts >= max) {
      this.#store.updateDeployment(d.id, { state: 'given-up', updatedAt: Date.now() });
      this.#o.log({ event: 'deployment-given-up', id: d.id, restarts: d.restarts });
      return;
    }
    this.#o.log({ event: 'deployment-restart-scheduled', id: d.id, inMs: delayMs });
    const timer = setTimeout(() => void this.#restart(d.id), delayMs);
    timer.unref();
    this.#pending.set(d.id, timer);
  }

  async #restart(id: string): Promise<void> {
    this.#pending.set(id, 'running');
    const d = this.#store.getDeployment(id);
    if (d?.state !== 'active' || this.#closed) {
      this.#pending.delete(id);
      return;
    }
    this.#store.updateDeployment(id, { restarts: d.restarts + 1, updatedAt: Date.now() });
    try {
      await this.#attempt({ ...d, restarts: d.restarts + 1 });
      this.#o.log({ event: 'deployment-restarted', id, restarts: d.restarts + 1 });
      this.#pending.delete(id);
    } catch (error) {
      this.#pending.delete(id);
      if (this.#closed) return;
      const failure = reasonOf(error);
      this.#store.updateDeployment(id, { lastFailure: failure, updatedAt: Date.now() });
      this.#o.log({ event: 'deployment-restart-failed', id, error: failure });
      const now = this.#store.getDeployment(id);
      const t = this.#o.timeouts;
      if (now && now.state === 'active')
        this.#schedule(now, restartDelay(now.restarts, t.restartBackoff, t.restartBackoffMax));
    }
  }

  /** Pulls, makes a Keep and deploys into it; a Keep left by a failure is stopped. */
  async #attempt(d: DeploymentRecord): Promise<void> {
    const { spec } = d;
    const pulled = await pullArtifact(
      { reference: spec.reference, keys: spec.keys, ...(spec.plainHttp ? { plainHttp: true } : {}) },
      { cache: this.#o.cache },
    ).catch((error: unknown) => {
      throw new Error(pullFailure(error), { cause: error });
    });
    const keepId = await this.#o.launch(d.owner, spec.backend as BackendName, spec.limits ?? {});
    this.#store.updateDeployment(d.id, { keepId, updatedAt: Date.now() });
    const record = this.#o.records.get(keepId);
    if (!record) throw new Error('its Keep record was removed');
    const deploy = pulledDeployMessage(pulled, spec.keys, {
      args: spec.args,
      env: spec.env,
      ...(spec.limits ? { limits: spec.limits } : {}),
      ...(spec.files ? { files: spec.files } : {}),
      ...(spec.secrets ? { secrets: spec.secrets } : {}),
      ...(spec.tier ? { tier: spec.tier } : {}),
    });
    try {
      await deliverDeploy(record.socketPath, deploy, this.#o.timeouts.hostDeploy);
    } catch (error) {
      await this.#o.stop(keepId).catch(() => {});
      throw error;
    }
  }
}
