import { encodeMessage, type MessageOf } from '../../protocol/messages.ts';
import { keepMessage } from './routes.ts';
import type { DeploymentRecord, KeepStore } from './store.ts';

/** Tenants whose last `keep-list` answer is kept. */
const LISTS_KEPT = 64;

/** A `keep-list` answer with its encoding. */
export interface KeepListAnswer {
  readonly message: MessageOf<'keep-list'>;
  readonly encoded: Uint8Array;
}

/** A deployment as the `keep` message of its current Keep shows it. */
export function keepDeployment(d: DeploymentRecord): NonNullable<MessageOf<'keep'>['deployment']> {
  return {
    id: d.id,
    reference: d.spec.reference,
    restart: d.spec.restart,
    restarts: d.restarts,
    ...(d.lastFailure === undefined ? {} : { lastFailure: d.lastFailure }),
  };
}

/**
 * Each tenant's last `GET /v1/keeps` answer, encoded, kept until the store's generation moves (a Keep record or a
 * deployment changed): listing hundreds of idle Keeps again costs no store read, no check and no encoding.
 */
export class KeepLists {
  readonly #store: KeepStore;
  /** Every deployment that has a current Keep, by that Keep's id (one read of the store). */
  readonly #deploymentsByKeep: () => ReadonlyMap<string, DeploymentRecord>;
  readonly #kept = new Map<string, { generation: number; answer: KeepListAnswer }>();

  constructor(store: KeepStore, deploymentsByKeep: () => ReadonlyMap<string, DeploymentRecord>) {
    this.#store = store;
    this.#deploymentsByKeep = deploymentsByKeep;
  }

  /** The tenant's answer: the one kept while nothing changed, else made (one read of each kind) and kept. */
  of(tenant: string): KeepListAnswer {
    const generation = this.#store.generation;
    const kept = this.#kept.get(tenant);
    if (kept !== undefined && kept.generation === generation) return kept.answer;
    const deployments = this.#deploymentsByKeep();
    const message: MessageOf<'keep-list'> = {
      v: 1,
      type: 'keep-list',
      keeps: this.#store.list(tenant).map((r) => {
        const d = deployments.get(r.id);
        return keepMessage(r, d && keepDeployment(d));
      }),
    };
    const answer = { message, encoded: encodeMessage(message) };
    // A host with more tenants than this listing at once only makes some answers again.
    if (this.#kept.size >= LISTS_KEPT) this.#kept.clear();
    this.#kept.set(tenant, { generation, answer });
    return answer;
  }
}
