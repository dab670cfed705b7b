import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

// Choosing V8's compiler tier for a workload from how its earlier runs went. V8 starts a module in Liftoff
// (its baseline compiler) and moves a function to TurboFan once it is hot, but only for the function's next
// call: a hot loop in a function called once (a compute kernel in `main`) stays in Liftoff to the end, up to
// 2.8x slower (bench/RESULTS.md). Compiling with TurboFan only fixes that but costs start-up: V8 compiles
// each function on its first call, with TurboFan then, which adds tens of ms to a hello world and about
// +290 ms to the first output of the 29 MiB Yosys. Nothing in a module says beforehand which kind of
// workload it is (hello and the benchmark's kernels are all 70-110 KiB), and V8 has no on-stack replacement
// for wasm, so a default-tier run cannot move a running loop to TurboFan: the choice is made from
// measurements. A module's first run uses the default tier, which keeps short runs fast; a run long enough
// that the optimizing tier could save several times what it costs is tried with it next time; once both
// tiers have been timed, the faster one is used. Times run from the module's hand-over to the workload's
// end, so they include what each tier spends compiling. Between tiers, a tier's time is the fastest of its
// last few runs: on a shared machine, load only ever adds time, and with the latest run alone one slow run
// under load sent a compute kernel (bench/wasi.ts's nbody) back to the default tier, 1.7x slower, until a
// slow default run sent it forth again.

/** The compiler tiers a Keep offers. */
export type Tier = 'default' | 'optimizing';

/**
 * What compiling with the optimizing tier first costs a module of `bytes`, over the default tier, in ms: a
 * fit of bench/RESULTS.md's start-up measurements (40 ms for a 70 KB module, 290 ms for a 29 MiB one).
 */
export function optimizingCostMs(bytes: number): number {
  return 40 + (10 * bytes) / 2 ** 20;
}

/** A default-tier run this many times the optimizing tier's cost is worth one try with the optimizing tier. */
export const TRY_FACTOR = 5;
/** The optimizing tier is kept only if it runs the workload at least this much faster than the default one. */
const MIN_GAIN = 0.9;
/** Modules remembered; the least recently used are forgotten first. */
const MAX_ENTRIES = 512;
/** Runs remembered per module and tier; the tier's time is the fastest of them. */
export const RUNS_KEPT = 3;

/** What is remembered of one module: its latest run times under each tier (oldest first), and when it last ran. */
interface Entry {
  default?: number[];
  optimizing?: number[];
  at: number;
}

/** Why a tier was chosen, for the user. */
export interface TierChoice {
  tier: Tier;
  reason: string;
}

const isMs = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0;

/** One tier's runs as stored: a list of times, or one time (as files written before lists held). */
function runsOf(x: unknown): number[] | undefined | false {
  if (x === undefined) return undefined;
  if (isMs(x)) return [x];
  if (Array.isArray(x) && x.length > 0 && x.length <= RUNS_KEPT && x.every(isMs)) return x;
  return false;
}

/** The entry stored as `v`, or undefined when it is not a well-formed one. */
function entryOf(v: unknown): Entry | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const e = v as Record<string, unknown>;
  const d = runsOf(e['default']);
  const o = runsOf(e['optimizing']);
  if (typeof e['at'] !== 'number' || d === false || o === false) return undefined;
  return { at: e['at'], ...(d ? { default: d } : {}), ...(o ? { optimizing: o } : {}) };
}

/** A tier's time: the fastest of its remembered runs. */
const best = (runs: number[] | undefined): number | undefined =>
  runs === undefined ? undefined : Math.min(...runs);

const seconds = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);

/**
 * Run times per module digest (SHA-256, hex), kept in a small JSON file, and the tier choice made from them.
 * The file is a cache: one that is missing, unreadable or damaged counts as empty and is rewritten whole
 * (to a temporary file, then renamed) at the next record.
 *
 * @example
 * const history = new TierHistory(join(dataDir(), 'tiers.json'));
 * const { tier } = history.choose(digest, wasm.length);
 * // ... run the workload with `tier`, timing it from the deploy to its end ...
 * history.record(digest, tier, runMs);
 */
export class TierHistory {
  readonly #path: string;

  constructor(path: string) {
    this.#path = path;
  }

  #load(): Map<string, Entry> {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(this.#path, 'utf8'));
    } catch {
      return new Map();
    }
    const out = new Map<string, Entry>();
    if (typeof json !== 'object' || json === null || Array.isArray(json)) return out;
    for (const [digest, raw] of Object.entries(json)) {
      const entry = entryOf(raw);
      if (/^[0-9a-f]{64}$/.test(digest) && entry) out.set(digest, entry);
    }
    return out;
  }

  /** The tier for the next run of the module with this digest and size, and why. */
  choose(digest: string, moduleBytes: number): TierChoice {
    const e = this.#load().get(digest);
    const d = best(e?.default);
    const o = best(e?.optimizing);
    if (d === undefined && o === undefined) {
      return { tier: 'default', reason: 'first run of this module' };
    }
    if (d !== undefined && o !== undefined) {
      return o <= d * MIN_GAIN
        ? { tier: 'optimizing', reason: `it ran in ${seconds(o)} optimizing, ${seconds(d)} default` }
        : { tier: 'default', reason: `it ran in ${seconds(d)} default, ${seconds(o)} optimizing` };
    }
    const worth = TRY_FACTOR * optimizingCostMs(moduleBytes);
    // One tier timed so far: the threshold is the same whichever it was, and its latest run decides (a run
    // that got long is worth a try at once; a try that was wrong is undone by the comparison above).
    const timed: Tier = d !== undefined ? 'default' : 'optimizing';
    const ms = e![timed]!.at(-1)!;
    const took = `its last run took ${seconds(ms)}${timed === 'optimizing' ? ' optimizing' : ''}`;
    if (ms < worth) return { tier: 'default', reason: took };
    return { tier: 'optimizing', reason: timed === 'default' ? `${took}: trying the optimizing tier` : took };
  }

  /**
   * Records how long a run of the module took under `tier`, from the module's hand-over to the workload's end;
   * the oldest of the tier's remembered runs is forgotten beyond {@link RUNS_KEPT}.
   */
  record(digest: string, tier: Tier, runMs: number): void {
    if (!/^[0-9a-f]{64}$/.test(digest))
      throw new TypeError('Cannot record a run: the digest is not 64 hex digits');
    if (!Number.isFinite(runMs) || runMs < 0) throw new TypeError('Cannot record a run: bad run time');
    const entries = this.#load();
    const entry: Entry = { ...(entries.get(digest) ?? {}), at: Date.now() };
    entry[tier] = [...(entry[tier] ?? []), Math.round(runMs)].slice(-RUNS_KEPT);
    entries.delete(digest);
    entries.set(digest, entry);
    // The map keeps the file's order, which is the order of last use: the most recently run last.
    const kept = [...entries].slice(-MAX_ENTRIES);
    const tmp = `${this.#path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      mkdirSync(dirname(this.#path), { recursive: true, mode: 0o700 });
      writeFileSync(tmp, `${JSON.stringify(Object.fromEntries(kept))}\n`, { mode: 0o600 });
      renameSync(tmp, this.#path);
    } catch (error) {
      rmSync(tmp, { force: true });
      throw error;
    }
  }
}
