import { KEEP_STATES } from '../../protocol/lifecycle.ts';
import type { KeepStore } from './store.ts';

/**
 * The Keep Manager's counters and their Prometheus text form. Nothing here names a tenant or carries workload
 * data: the endpoint is served without a token.
 */
export class Metrics {
  #created = 0;
  #connectionsRefused = 0;
  readonly #answers = new Map<string, number>();

  /** Counts an API answer by its code ('ok', 'created', or an error code). */
  count(code: string): void {
    this.#answers.set(code, (this.#answers.get(code) ?? 0) + 1);
  }

  /** Counts a Keep handed to a tenant. */
  created(): void {
    this.#created++;
  }

  /** Counts a connection dropped over the connection cap. */
  connectionRefused(): void {
    this.#connectionsRefused++;
  }

  /** The text exposition of every metric, with the current records and pool sizes. */
  render(store: KeepStore, pooled: ReadonlyMap<string, number>): string {
    const states = new Map<string, number>();
    for (const r of store.list()) states.set(r.state, (states.get(r.state) ?? 0) + 1);
    const lines = [
      '# HELP donjon_keeps Keeps by state.',
      '# TYPE donjon_keeps gauge',
      ...KEEP_STATES.map((s) => `donjon_keeps{state="${s}"} ${states.get(s) ?? 0}`),
      '# HELP donjon_keeps_pooled Pre-started Keeps waiting for a tenant.',
      '# TYPE donjon_keeps_pooled gauge',
      ...[...pooled].map(([b, n]) => `donjon_keeps_pooled{backend="${b}"} ${n}`),
      '# HELP donjon_keeps_created_total Keeps handed to tenants since start.',
      '# TYPE donjon_keeps_created_total counter',
      `donjon_keeps_created_total ${this.#created}`,
      '# HELP donjon_api_errors_total API refusals by code since start.',
      '# TYPE donjon_api_errors_total counter',
      ...[...this.#answers]
        .filter(([code]) => code.startsWith('ERR_'))
        .map(([code, n]) => `donjon_api_errors_total{code="${code}"} ${n}`),
      '# HELP donjon_connections_refused_total Connections dropped over the connection cap since start.',
      '# TYPE donjon_connections_refused_total counter',
      `donjon_connections_refused_total ${this.#connectionsRefused}`,
      '# HELP donjon_process_resident_memory_bytes Resident memory of the Keep Manager.',
      '# TYPE donjon_process_resident_memory_bytes gauge',
      `donjon_process_resident_memory_bytes ${process.memoryUsage().rss}`,
    ];
    return `${lines.join('\n')}\n`;
  }
}
