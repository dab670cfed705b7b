import diagnostics from 'node:diagnostics_channel';
import { isTerminalState, KeepLifecycle } from '../../protocol/lifecycle.ts';
import type { KeepState } from '../../protocol/messages.ts';
import type { KeepRecord, KeepStore } from './store.ts';

/** Lifecycle events, published on `donjon:keepmgr` (never workload data). */
export const keepmgrChannel = diagnostics.channel('donjon:keepmgr');

/** A structured log line's fields (lifecycle only, never workload data). */
export type LogEntry = Record<string, unknown>;

/**
 * The Keep Manager's records, changed only along the Keep lifecycle (src/protocol/lifecycle.ts). The manager
 * observes Keeps through their Keep Loaders and may miss events (across its own restarts, or when a watch
 * socket drops), so any state reachable from the recorded one is accepted; a step back (a `failed` Keep
 * reported `running`, an `exited` one `ready`) is a bug somewhere: it is logged as `transition-refused` and
 * the record stays as it was.
 *
 * Each change is stored, added to the Keep's events, logged, published on {@link keepmgrChannel}, and told to
 * the listeners of that Keep (the create and stop requests waiting for a state).
 */
export class KeepRecords {
  readonly store: KeepStore;
  readonly #log: (entry: LogEntry) => void;
  readonly #listeners = new Map<string, Set<() => void>>();
  /** Set once the store is closed: late reports are then left for the next start to observe. */
  #closed = false;

  /** Told of each record that has just ended (for the deployments, which recreate their Keeps). */
  onEnded: ((record: KeepRecord) => void) | undefined;

  constructor(store: KeepStore, log: (entry: LogEntry) => void) {
    this.store = store;
    this.#log = log;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The record, or undefined once the store is closed (late timers of a closing manager read nothing). */
  get(id: string): KeepRecord | undefined {
    return this.#closed ? undefined : this.store.get(id);
  }

  insert(record: KeepRecord): void {
    this.store.insert(record);
    this.event(record.id, record.state);
  }

  /**
   * Moves a record to `state` with the fields of `extra`. Staying in the same state only updates the fields.
   * Returns false when the record is gone, the store closed, or the step refused.
   */
  setState(id: string, state: KeepState, extra: Partial<Omit<KeepRecord, 'id' | 'state'>> = {}): boolean {
    if (this.#closed) return false;
    const before = this.store.get(id);
    if (!before) return false;
    const lifecycle = new KeepLifecycle(before.state, {
      observer: true,
      onRefused: ({ from, to }) => this.#log({ event: 'transition-refused', id, from, to }),
    });
    if (before.state !== state && !lifecycle.to(state)) return false;
    this.store.update(id, { ...extra, state, updatedAt: Date.now() });
    if (before.state !== state) {
      this.event(id, state, extra.error);
      if (isTerminalState(state) && this.onEnded) {
        const after = this.store.get(id);
        if (after) this.onEnded(after);
      }
    }
    return true;
  }

  /** Ends a record that is not yet ended as `failed` with `reason`; a record already ended stays as it is. */
  fail(id: string, reason: string): void {
    const r = this.get(id);
    if (r && !isTerminalState(r.state)) this.setState(id, 'failed', { error: r.error ?? reason });
  }

  /** Fields that are not the state (pids, owner); the state only ever changes through {@link setState}. */
  patch(id: string, patch: Partial<Omit<KeepRecord, 'id' | 'state'>>): void {
    if (this.#closed) return;
    this.store.update(id, { ...patch, updatedAt: Date.now() });
  }

  /** Adds an event (a change of state, or a note such as an assignment from the pool) and tells listeners. */
  event(id: string, state: KeepState, message?: string): void {
    if (this.#closed) return;
    this.store.addEvent(
      id,
      message === undefined ? { at: Date.now(), state } : { at: Date.now(), state, message },
    );
    const r = this.store.get(id);
    this.#log({ event: 'keep', id, state, ...(message === undefined ? {} : { message }) });
    if (keepmgrChannel.hasSubscribers)
      keepmgrChannel.publish({ id, state, backend: r?.backend, error: r?.error });
    for (const listener of [...(this.#listeners.get(id) ?? [])]) listener();
  }

  /**
   * Resolves with the record once `done(record)` holds (checked now and on each change), or with the record as
   * it is after `timeoutMs`. Resolves with undefined when the record is removed. With `background`, the wait
   * does not keep the process alive by itself (nobody awaits it; a closing process need not stay for it).
   */
  waitFor(
    id: string,
    done: (r: KeepRecord) => boolean,
    timeoutMs: number,
    { background = false }: { background?: boolean } = {},
  ): Promise<KeepRecord | undefined> {
    return new Promise((resolve) => {
      let listeners = this.#listeners.get(id);
      if (!listeners) {
        listeners = new Set();
        this.#listeners.set(id, listeners);
      }
      const set = listeners;
      const finish = (): void => {
        clearTimeout(timer);
        set.delete(check);
        if (set.size === 0 && this.#listeners.get(id) === set) this.#listeners.delete(id);
        resolve(this.#closed ? undefined : this.store.get(id));
      };
      const check = (): void => {
        const r = this.#closed ? undefined : this.store.get(id);
        if (!r || done(r)) finish();
      };
      const timer = setTimeout(finish, timeoutMs);
      if (background) timer.unref();
      set.add(check);
      check();
    });
  }

  remove(id: string): void {
    this.store.remove(id);
    this.#listeners.delete(id);
  }

  close(): void {
    this.#closed = true;
    this.store.close();
  }
}
