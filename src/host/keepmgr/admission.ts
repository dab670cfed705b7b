import type { IncomingMessage } from 'node:http';
import { type Limits, limitsSchema } from '../../protocol/messages.ts';
import { ApiError } from '../errors.ts';
import { isTerminal, type KeepRecord, type KeepStore } from './store.ts';

/** Per-tenant and per-host ceilings; each refusal has its own code. */
export interface Quotas {
  /** Keeps not yet ended, over all tenants. */
  maxKeeps?: number;
  /** Keeps not yet ended, per tenant. */
  maxKeepsPerTenant?: number;
  /** Keep creations per tenant per minute. */
  createsPerMinute?: number;
}

/** The tenant of every request when tokens are not required (the embedded Keep Manager of `donjon run`). */
export const LOCAL_TENANT = 'local';

/** The window `createsPerMinute` counts over. */
const RATE_WINDOW_MS = 60_000;

/** Every limit a tenant may ask for: those of the wire schema. */
const LIMIT_KEYS = Object.keys(limitsSchema.fields) as (keyof Limits)[];

/**
 * Who may do what: the tenant behind a request (by bearer token), the Keeps it may see, and whether it may
 * create another Keep now (host limits, quotas, rate).
 */
export class Admission {
  readonly #store: KeepStore;
  readonly #requireTokens: boolean;
  readonly #quotas: Quotas;
  readonly #hostLimits: Limits;
  readonly #creates = new Map<string, number[]>();

  constructor(store: KeepStore, options: { requireTokens?: boolean; quotas?: Quotas; limits?: Limits }) {
    this.#store = store;
    this.#requireTokens = options.requireTokens ?? false;
    this.#quotas = options.quotas ?? {};
    this.#hostLimits = options.limits ?? {};
  }

  /** The tenant a request speaks for; ERR_API_UNAUTHORIZED without a known bearer token when tokens are required. */
  tenant(req: IncomingMessage): string {
    if (!this.#requireTokens) return LOCAL_TENANT;
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

  /** The tenant's own Keep; another tenant's Keep is reported exactly as a missing one. */
  ownKeep(tenant: string, id: string): KeepRecord {
    const r = this.#store.get(id);
    if (!r || r.owner !== tenant)
      throw new ApiError('ERR_KEEP_NOT_FOUND', `Cannot find Keep ${id}: no such Keep`);
    return r;
  }

  /** Refuses limits above the host's ceilings (ERR_API_LIMIT_EXCEEDED). */
  checkLimits(limits: Limits): void {
    for (const key of LIMIT_KEYS) {
      const h = this.#hostLimits[key];
      const t = limits[key];
      if (h !== undefined && t !== undefined && t > h) {
        throw new ApiError(
          'ERR_API_LIMIT_EXCEEDED',
          `Cannot create a Keep: ${key} ${t} is over this host's ${h}`,
        );
      }
    }
  }

  /**
   * Refuses a creation over the quotas (ERR_API_QUOTA_EXCEEDED) or the rate (ERR_API_RATE_LIMITED), and
   * counts it against the rate otherwise. Keeps in the pool (no owner yet) count against nobody.
   */
  admitCreate(tenant: string, now = Date.now()): void {
    const q = this.#quotas;
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
      const recent = (this.#creates.get(tenant) ?? []).filter((t) => now - t < RATE_WINDOW_MS);
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
}
