// Prometheus metrics of the broker, in the text exposition format. Labels are from closed sets (routes,
// statuses, stages, verdicts): never a secret's name or value, a token, a nonce or a key.

type Labels = Record<string, string>;

function key(name: string, labels: Labels): string {
  const parts = Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`);
  return parts.length === 0 ? name : `${name}{${parts.join(',')}}`;
}

const HELP: Record<string, [type: 'counter' | 'gauge', help: string]> = {
  donjon_broker_http_requests_total: ['counter', 'HTTP requests answered, by route and status'],
  donjon_broker_attestations_total: ['counter', 'Evidence appraisals, by verdict'],
  donjon_broker_releases_total: ['counter', 'Secrets released as JWE'],
  donjon_broker_refusals_total: ['counter', 'Requests refused, by stage'],
  donjon_broker_evidence_verify_seconds_sum: ['counter', 'Time spent verifying evidence'],
  donjon_broker_evidence_verify_seconds_count: ['counter', 'Evidence verifications timed'],
  donjon_broker_secrets: ['gauge', 'Secrets held'],
};

/** Counters and gauges, rendered for a scrape. */
export class BrokerMetrics {
  readonly #values = new Map<string, { name: string; value: number }>();

  /** Adds `by` to a counter. */
  inc(name: keyof typeof HELP & string, labels: Labels = {}, by = 1): void {
    const k = key(name, labels);
    const cur = this.#values.get(k);
    if (cur) cur.value += by;
    else this.#values.set(k, { name, value: by });
  }

  /** Sets a gauge. */
  set(name: keyof typeof HELP & string, value: number, labels: Labels = {}): void {
    this.#values.set(key(name, labels), { name, value });
  }

  /** The value of one series (0 when unseen), for tests and benchmarks. */
  get(name: string, labels: Labels = {}): number {
    return this.#values.get(key(name, labels))?.value ?? 0;
  }

  /** The Prometheus text exposition. */
  render(): string {
    const lines: string[] = [];
    for (const [name, [type, help]] of Object.entries(HELP)) {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [k, v] of [...this.#values.entries()].sort(([a], [b]) => a.localeCompare(b))) {
        if (v.name === name) lines.push(`${k} ${v.value}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }
}
