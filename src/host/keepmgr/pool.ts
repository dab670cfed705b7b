import type { BackendName } from '../backends/index.ts';
import type { KeepStore } from './store.ts';

/**
 * Pre-started Keeps per backend, ready for a tenant's nonce: a Keep in the pool has no owner (`''`) and waits
 * in `ready`. The pool is filled in the background, one Keep at a time, and topped up after each hand-out.
 */
export class Pool {
  readonly #wanted: Partial<Record<BackendName, number>>;
  readonly #store: KeepStore;
  readonly #start: (backend: BackendName) => Promise<string>;
  readonly #onError: (backend: BackendName, error: unknown) => void;
  readonly #retryMs: number;
  readonly #ready = new Map<BackendName, string[]>();
  #filling = false;
  #stopped = false;

  constructor(options: {
    wanted: Partial<Record<BackendName, number>>;
    store: KeepStore;
    /** Starts one Keep with no owner; resolves to its id once ready. */
    start: (backend: BackendName) => Promise<string>;
    onError: (backend: BackendName, error: unknown) => void;
    /** After a failed start: how long before the next attempt (a host that cannot start Keeps is not spun on). */
    retryMs: number;
  }) {
    this.#retryMs = options.retryMs;
    this.#wanted = options.wanted;
    this.#store = options.store;
    this.#start = options.start;
    this.#onError = options.onError;
  }

  #list(backend: BackendName): string[] {
    let list = this.#ready.get(backend);
    if (!list) {
      list = [];
      this.#ready.set(backend, list);
    }
    return list;
  }

  /** Adds a ready Keep (one adopted after a restart). */
  add(backend: BackendName, id: string): void {
    this.#list(backend).push(id);
  }

  /** Takes a Keep still ready, if any. */
  take(backend: BackendName): string | undefined {
    const list = this.#list(backend);
    while (list.length > 0) {
      const id = list.shift()!;
      if (this.#store.get(id)?.state === 'ready') return id;
    }
    return undefined;
  }

  /** Pool sizes by backend, for the metrics. */
  sizes(): Map<string, number> {
    return new Map([...this.#ready].map(([b, l]) => [b, l.length]));
  }

  /** Tops the pools up in the background, one Keep at a time. */
  fill(): void {
    if (this.#filling || this.#stopped) return;
    const wanted = Object.entries(this.#wanted).find(
      ([backend, size]) => (size ?? 0) > this.#list(backend as BackendName).length,
    );
    if (!wanted) return;
    const backend = wanted[0] as BackendName;
    this.#filling = true;
    this.#start(backend).then(
      (id) => {
        this.#list(backend).push(id);
        this.#filling = false;
        setImmediate(() => this.fill());
      },
      (error: unknown) => {
        this.#onError(backend, error);
        setTimeout(() => {
          this.#filling = false;
          this.fill();
        }, this.#retryMs).unref();
      },
    );
  }

  /** No more filling (the Keep Manager is closing). */
  stop(): void {
    this.#stopped = true;
  }
}
