import type { KeepState } from './messages.ts';

/**
 * The one lifecycle of a Keep, shared by the Keep (which lives it), the Keep Loader (which reports it) and
 * the Keep Manager (which records it).
 *
 * ```
 * creating ──▶ ready ──▶ running ──▶ exited
 *     │          │          │
 *     └──────────┴──────────┴──▶ failed | stopped
 * ```
 *
 * `creating`: the Keep Loader is starting the Keep. `ready`: the Keep made its key and waits for a channel
 * and a workload (a pooled Keep waits here for a tenant). `running`: a workload was deployed. `exited`: the
 * workload ended and its result was delivered or given up on; `failed`: the Keep or its Keep Loader ended
 * otherwise; `stopped`: someone asked it to stop. The three last are terminal.
 */
export const KEEP_TRANSITIONS: { readonly [S in KeepState]: readonly KeepState[] } = {
  creating: ['ready', 'failed', 'stopped'],
  ready: ['running', 'failed', 'stopped'],
  running: ['exited', 'failed', 'stopped'],
  exited: [],
  failed: [],
  stopped: [],
};

/** Every state, in lifecycle order. */
export const KEEP_STATES = Object.keys(KEEP_TRANSITIONS) as readonly KeepState[];

/** Whether `state` ends the lifecycle. */
export function isTerminalState(state: KeepState): boolean {
  return KEEP_TRANSITIONS[state].length === 0;
}

/** Whether the table allows the step `from` → `to` (staying in a state is not a step). */
export function canTransition(from: KeepState, to: KeepState): boolean {
  return KEEP_TRANSITIONS[from].includes(to);
}

/**
 * Whether `to` can follow `from` through one or more steps. An observer that may miss events (the Keep
 * Manager adopting a Keep after a restart sees `creating` then `running`) checks this, not a single step.
 */
export function canReach(from: KeepState, to: KeepState): boolean {
  const seen = new Set<KeepState>();
  const next = [...KEEP_TRANSITIONS[from]];
  while (next.length > 0) {
    const s = next.pop()!;
    if (s === to) return true;
    if (seen.has(s)) continue;
    seen.add(s);
    next.push(...KEEP_TRANSITIONS[s]);
  }
  return false;
}

/** A refused transition, as {@link KeepLifecycle} reports it. */
export interface RefusedTransition {
  readonly from: KeepState;
  readonly to: KeepState;
}

/**
 * A Keep's current state, changed only along {@link KEEP_TRANSITIONS}. A step the table does not allow is a
 * bug somewhere: it is refused (the state stays), reported to `onRefused`, and `to()` returns false.
 * `observer: true` accepts any state reachable from the current one, for those that may miss events.
 */
export class KeepLifecycle {
  #state: KeepState;
  readonly #observer: boolean;
  readonly #onRefused: (refused: RefusedTransition) => void;

  constructor(
    initial: KeepState = 'creating',
    options: { observer?: boolean; onRefused?: (refused: RefusedTransition) => void } = {},
  ) {
    this.#state = initial;
    this.#observer = options.observer ?? false;
    this.#onRefused = options.onRefused ?? (() => {});
  }

  get state(): KeepState {
    return this.#state;
  }

  get terminal(): boolean {
    return isTerminalState(this.#state);
  }

  /** Moves to `next`; true when the state changed, false when it was already there or the step is refused. */
  to(next: KeepState): boolean {
    if (next === this.#state) return false;
    const allowed = this.#observer ? canReach(this.#state, next) : canTransition(this.#state, next);
    if (!allowed) {
      this.#onRefused({ from: this.#state, to: next });
      return false;
    }
    this.#state = next;
    return true;
  }
}
