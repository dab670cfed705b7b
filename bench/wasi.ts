// Benchmark of the WASI host, measured side by side in one run: compute kernels written in Rust
// (bench/wasi/*.rs, built for wasm32-wasi by bench/wasi/build.sh) run natively, under Node's built-in
// node:wasi, under `donjon run --backend nil --insecure`, and under Donjon's host alone with several V8
// compiler tiers; a stdout-heavy program; and the start-up of a large module (Yosys, when the optional
// @yowasp/yosys package is installed). `benchWasi()` returns a Markdown section; run this file alone with
// `node --import tsx bench/wasi.ts` to print it.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { TierHistory } from '../src/client/tiers.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const kernelDir = join(repoRoot, 'bench', 'wasi');
/** The simulated root the tests share; a nil Keep does not use it, but the CLI opens its data directory. */
const donjonHome = join(repoRoot, '.donjon-test', 'home');

interface Kernel {
  name: string;
  args: string[];
  what: string;
  /** The module, when it is not bench/wasi/NAME.wasm. */
  path?: string;
}

const KERNELS: Kernel[] = [
  { name: 'fib', args: [], what: 'recursive fib(40)' },
  { name: 'sieve', args: [], what: 'sieve below 10^7, 10 times' },
  { name: 'matmul', args: [], what: '1000x1000 f64 matrix product' },
  { name: 'sha256', args: [], what: 'SHA-256 of 64 MiB' },
  { name: 'nbody', args: [], what: 'n-body, 5·10^6 steps' },
];
const LINES = { name: 'lines', args: [], what: '1,000,000 lines of println!' };
/** The start-up goal's module: what choosing the optimizing tier for every first run would cost it. */
const HELLO: Kernel = {
  name: 'hello',
  args: [],
  what: 'examples/hello: one line',
  path: join(repoRoot, 'examples', 'hello', 'hello.wasm'),
};
const wasmOf = (k: Kernel): string => k.path ?? join(kernelDir, `${k.name}.wasm`);

/** Most a kernel may take over native (the issue's goal). */
const NATIVE_GOAL = 1.3;
/** Where V8's own code is the floor: most the learned run may take over the best stable tier. */
const FLOOR_GOAL = 1.05;
/** Most a module's first run may take over its learned run. */
const FIRST_RUN_GOAL = 1.5;
/**
 * Measured for the record, never used: V8 11.3's wasm-into-wasm inlining is experimental, and no experimental
 * flag goes into the code that confines a tenant's workload. It shows what fib's floor is made of: calls.
 */
const INLINING = '--no-liftoff --wasm-inlining';

/** The V8 flag sets compared for the host's worker; '' is V8's default. */
const TIERS: { flags: string; label: string }[] = [
  { flags: '', label: 'default (Liftoff, dynamic tier-up)' },
  { flags: '--no-liftoff', label: '`--no-liftoff` (TurboFan only)' },
  { flags: '--liftoff --no-wasm-tier-up', label: '`--liftoff --no-wasm-tier-up` (Liftoff only)' },
  { flags: '--no-wasm-dynamic-tiering', label: '`--no-wasm-dynamic-tiering` (eager tier-up)' },
];

interface Measured {
  wallMs: number;
  kernelMs?: number;
  tier?: { startMs: number; runMs: number; firstOutputMs: number | null };
  code: number | null;
  /** SHA-256 of everything the program printed on stdout. */
  stdoutDigest: string;
  stdoutBytes: number;
  /** For `donjon run` with `--wasm-tier auto`: the tier it chose for this run (from its data directory). */
  chosenTier?: string;
  error?: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Runs a command to its end and times it from spawn to exit; parses what the programs report on stderr. */
function measure(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Measured> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, {
      env: { PATH: process.env['PATH'] ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const digest = createHash('sha256');
    let outBytes = 0;
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      outBytes += c.length;
      digest.update(c);
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const wallMs = performance.now() - t0;
      const m: Measured = { wallMs, code, stdoutDigest: digest.digest('hex'), stdoutBytes: outBytes };
      const kernel = /^kernel-ns (\d+)$/m.exec(err);
      if (kernel) m.kernelMs = Number(kernel[1]) / 1e6;
      const tier = /^tier-runner (\{.*\})$/m.exec(err);
      if (tier) m.tier = JSON.parse(tier[1]!) as NonNullable<Measured['tier']>;
      if (code !== 0) {
        const last = err.trim().split('\n').slice(-2).join(' / ');
        m.error = `${code === null ? `killed by ${signal}` : `exit status ${code}`}${last ? `, stderr ends: ${last}` : ''}`;
      }
      resolve(m);
    });
  });
}

/** The first rustc that builds for this machine: $RUSTC, Debian's, or the one on PATH. */
/** The size of a module's code section (id 10), or undefined when it has none. */
function codeSectionBytes(bytes: Uint8Array): number | undefined {
  let i = 8;
  const leb = (): number => {
    let value = 0;
    let shift = 0;
    let byte: number;
    do {
      byte = bytes[i++] ?? 0;
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80 && i < bytes.length);
    return value;
  };
  while (i < bytes.length) {
    const id = bytes[i++]!;
    const size = leb();
    if (id === 10) return size;
    i += size;
  }
  return undefined;
}

function findRustc(): string | undefined {
  for (const rc of [process.env['RUSTC'], '/usr/bin/rustc', 'rustc']) {
    if (rc === undefined || rc === '') continue;
    const r = spawnSync(rc, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return rc;
  }
  return undefined;
}

const f0 = (x: number | undefined): string => (x === undefined ? '–' : x.toFixed(0));

/** Runs the whole WASI benchmark and returns its Markdown section. */
export async function benchWasi(): Promise<string> {
  const rounds = Number(process.env['WASI_BENCH_ROUNDS'] ?? 5);
  const tmp = mkdtempSync(join(tmpdir(), 'donjon-bench-wasi-'));
  try {
    return await benchIn(tmp, rounds);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function benchIn(tmp: string, rounds: number): Promise<string> {
  const node = process.execPath;
  const cli = join(repoRoot, 'bin', 'donjon.js');
  const nodeWasi = join(kernelDir, 'node-wasi.mjs');
  const tierRunner = join(tmp, 'tier-runner.mjs');
  await build({
    entryPoints: [join(kernelDir, 'tier-runner.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: tierRunner,
    logLevel: 'silent',
  });
  const notes: string[] = [];

  // Native builds, made now with the compiler and flags of build.sh minus the target.
  const rustc = findRustc();
  const native = new Map<string, string>();
  let rustcVersion = 'none';
  if (rustc === undefined) notes.push('No rustc was found, so the native column is empty.');
  else {
    rustcVersion = spawnSync(rustc, ['--version'], { encoding: 'utf8' }).stdout.trim();
    for (const k of [...KERNELS, LINES]) {
      const out = join(tmp, k.name);
      const r = spawnSync(
        rustc,
        [
          '--edition',
          '2021',
          '-O',
          '-C',
          'codegen-units=1',
          '-C',
          'lto',
          join(kernelDir, `${k.name}.rs`),
          '-o',
          out,
        ],
        { encoding: 'utf8' },
      );
      if (r.status === 0) native.set(k.name, out);
      else notes.push(`The native ${k.name} did not build: ${r.stderr.trim().split('\n')[0]}`);
    }
  }

  // `donjon run` chooses the compiler tier from a module's earlier runs (--wasm-tier auto, its default): one
  // runner always uses the default tier (a module's first run), another a data directory of its own in which
  // each kernel ran twice before the rounds (its first run, then the try of the other tier if it was long).
  const autoHome = join(tmp, 'auto-home');
  const simRoot = join(donjonHome, 'sim-root.cbor');
  if (existsSync(simRoot)) {
    mkdirSync(autoHome, { recursive: true });
    copyFileSync(simRoot, join(autoHome, 'sim-root.cbor'));
  }
  const donjonArgv = (w: string, k: Kernel, tier: string[]): [string, string[]] => [
    node,
    [cli, 'run', '-q', '--backend', 'nil', '--insecure', ...tier, w, '--', ...k.args],
  ];
  type Runner = {
    key: string;
    argv: (wasm: string, k: Kernel) => [string, string[]] | undefined;
    home?: string;
  };
  const runners: Runner[] = [
    { key: 'native', argv: (_w, k) => (native.has(k.name) ? [native.get(k.name)!, k.args] : undefined) },
    { key: 'node:wasi', argv: (w, k) => [node, [nodeWasi, w, ...k.args]] },
    { key: 'donjon', argv: (w, k) => donjonArgv(w, k, ['--wasm-tier', 'default']) },
    { key: 'donjon auto', argv: (w, k) => (k === LINES ? undefined : donjonArgv(w, k, [])), home: autoHome },
    ...TIERS.map(
      (t): Runner => ({
        key: `host ${t.flags}`,
        argv: (w, k) => [node, [tierRunner, t.flags, w, ...k.args]],
      }),
    ),
    // The same flag given on Node's command line: shows whether setFlagsFromString has the same effect.
    { key: 'host-cli --no-liftoff', argv: (w, k) => [node, ['--no-liftoff', tierRunner, '', w, ...k.args]] },
    {
      key: `host ${INLINING}`,
      argv: (w, k) => (k.name === 'fib' ? [node, [tierRunner, INLINING, w, ...k.args]] : undefined),
    },
  ];

  for (const k of KERNELS) {
    for (let i = 0; i < 2; i++) {
      const [cmd, args] = donjonArgv(wasmOf(k), k, []);
      await measure(cmd, args, { DONJON_HOME: autoHome });
    }
  }
  const history = new TierHistory(join(autoHome, 'tiers.json'));
  const autoTier = (k: Kernel): string => {
    const wasm = readFileSync(wasmOf(k));
    return history.choose(createHash('sha256').update(wasm).digest('hex'), wasm.length).tier;
  };

  // Interleaved: every runner of every kernel once per round, so that all see the same machine load.
  const results = new Map<string, Measured[]>();
  const add = (key: string, m: Measured): void => {
    results.set(key, [...(results.get(key) ?? []), m]);
  };
  for (let round = 0; round < rounds; round++) {
    for (const k of [...KERNELS, LINES, HELLO]) {
      const wasm = wasmOf(k);
      for (const r of runners) {
        // The stdout-heavy program is compared on the default tier only; hello only under the host, on the
        // two tiers a first run could use.
        if (k === LINES && r.key.startsWith('host') && r.key !== 'host ') continue;
        if (k === HELLO && r.key !== 'host ' && r.key !== 'host --no-liftoff') continue;
        const argv = r.argv(wasm, k);
        if (argv === undefined) continue;
        // Every learned run records its time, which may change the next choice: each run's tier is kept.
        const chosenTier = r.key === 'donjon auto' ? autoTier(k) : undefined;
        const m = await measure(argv[0], argv[1], { DONJON_HOME: r.home ?? donjonHome });
        add(`${k.name}|${r.key}`, chosenTier === undefined ? m : { ...m, chosenTier });
      }
    }
  }

  const get = (k: string, r: string): Measured[] => results.get(`${k}|${r}`) ?? [];
  // A process that failed after its kernel reported (node:wasi can crash on exit) keeps its kernel time.
  const kernelMs = (k: string, r: string): number | undefined => {
    const ms = get(k, r).flatMap((m) => (m.kernelMs === undefined ? [] : [m.kernelMs]));
    return ms.length > 0 ? median(ms) : undefined;
  };
  const mark = (k: string, r: string): string => (get(k, r).some((m) => m.error) ? '†' : '');
  const wallMs = (k: string, r: string): number | undefined => {
    const ms = get(k, r).flatMap((m) => (m.error ? [] : [m.wallMs]));
    return ms.length > 0 ? median(ms) : undefined;
  };
  // Every runner must print what the first one printed; a wrong answer is no speed.
  for (const k of [...KERNELS, LINES]) {
    const all = runners.flatMap((r) => get(k.name, r.key).map((m) => ({ r: r.key, m })));
    const failed = all.find(({ m }) => m.error !== undefined);
    if (failed) notes.push(`† ${k.name} under ${failed.r}: ${failed.m.error}`);
    const ok = all.filter(({ m }) => m.error === undefined);
    const first = ok[0];
    const differing = ok.find(({ m }) => m.stdoutDigest !== first?.m.stdoutDigest);
    if (first && differing) notes.push(`${k.name}: ${differing.r} printed something else than ${first.r}`);
  }

  const ratio = (a: number | undefined, b: number | undefined): string =>
    a === undefined || b === undefined ? '–' : `${(a / b).toFixed(2)}×`;
  /**
   * Two runners' kernel times paired round by round (both ran under the same machine load), as the median of
   * their ratios: steadier than a ratio of medians on a shared machine.
   */
  const paired = (k: string, a: string, b: string | ((m: Measured) => string)): number | undefined => {
    const xs = get(k, a);
    const rs: number[] = [];
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i]!.kernelMs;
      const y = get(k, typeof b === 'string' ? b : b(xs[i]!))[i]?.kernelMs;
      if (x !== undefined && y !== undefined && y > 0) rs.push(x / y);
    }
    return rs.length > 0 ? median(rs) : undefined;
  };
  const pairedRatio = (k: string, a: string, b: string | ((m: Measured) => string)): string => {
    const r = paired(k, a, b);
    return r === undefined ? '–' : `${r.toFixed(2)}×`;
  };
  /** The host runner with the tier a learned `donjon run` used. */
  const sameTier = (m: Measured): string => (m.chosenTier === 'optimizing' ? 'host --no-liftoff' : 'host ');
  /** The tiers the learned runs of a kernel used, e.g. `optimizing` or `optimizing 4, default 1`. */
  const tiersUsed = (k: string): string => {
    const n = new Map<string, number>();
    for (const m of get(k, 'donjon auto')) n.set(m.chosenTier ?? '?', (n.get(m.chosenTier ?? '?') ?? 0) + 1);
    return n.size === 1 ? [...n.keys()][0]! : [...n].map(([t, c]) => `${t} ${c}`).join(', ') || '–';
  };
  /** The fastest of the stable V8 tiers under the host alone (medians). */
  const bestTier = (k: string): { flags: string; key: string; ms: number } | undefined => {
    let best: { flags: string; key: string; ms: number } | undefined;
    for (const t of TIERS) {
      const ms = kernelMs(k, `host ${t.flags}`);
      if (ms !== undefined && (best === undefined || ms < best.ms))
        best = { flags: t.flags, key: `host ${t.flags}`, ms };
    }
    return best;
  };
  /** Whether V8's own code is the floor: even its best stable tier is over the native goal. */
  const v8Floor = (k: string): boolean => {
    const n = kernelMs(k, 'native');
    const best = bestTier(k);
    return n !== undefined && best !== undefined && best.ms > NATIVE_GOAL * n;
  };
  const goal = (k: string): string => {
    const d = kernelMs(k, 'donjon auto');
    const n = kernelMs(k, 'native');
    const b = kernelMs(k, 'node:wasi');
    const first = kernelMs(k, 'donjon');
    if (d === undefined) return '–';
    const out: string[] = [];
    if (n !== undefined) {
      if (d <= NATIVE_GOAL * n) out.push(`≤${NATIVE_GOAL}× native ✓`);
      else if (v8Floor(k)) {
        const best = bestTier(k)!;
        const r = paired(k, 'donjon auto', best.key);
        out.push(
          r !== undefined && r <= FLOOR_GOAL
            ? `V8 floor: ≤${FLOOR_GOAL}× its best tier ✓`
            : `V8 floor: >${FLOOR_GOAL}× its best tier ✗`,
        );
      } else out.push(`>${NATIVE_GOAL}× native ✗`);
    }
    if (first !== undefined) {
      out.push(
        first <= FIRST_RUN_GOAL * d
          ? `first run ≤${FIRST_RUN_GOAL}× learned ✓`
          : `first run >${FIRST_RUN_GOAL}× learned ✗`,
      );
    }
    if (b !== undefined) out.push(d <= b * 1.02 ? '≤ built-in ✓' : 'slower than built-in ✗');
    return out.join(', ');
  };

  const lines: string[] = [];
  lines.push('## WASI host: compute kernels, stdout, compiler tiers');
  lines.push('');
  lines.push(
    `Recorded by \`bench/wasi.ts\` on ${new Date().toISOString().slice(0, 10)}: ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node.js ${process.version}. Medians of ${rounds} rounds, every runner of every kernel once per round (interleaved). Kernels: \`bench/wasi/*.rs\`, built for wasm32-wasi by \`bench/wasi/build.sh\` (see \`bench/wasi/build-info.txt\`); native builds made now by ${rustcVersion} with the same flags minus the target.`,
  );
  lines.push('');
  lines.push('What each runner includes:');
  lines.push('');
  lines.push('- **native**: the Rust program, built for this machine.');
  lines.push(
    '- **node:wasi**: `node bench/wasi/node-wasi.mjs K.wasm`, Node’s built-in WASI with default V8 flags, on the main thread.',
  );
  lines.push(
    '- **donjon run, first run**: `donjon run -q --backend nil --insecure --wasm-tier default K.wasm`: the CLI with an embedded Keep Manager and Keep Loader, a Keep process, the TLS channel, the deploy message, compilation, and the WASI worker thread with default V8 flags. No attestation (nil backend). This is what `donjon run` does the first time it sees a module.',
  );
  lines.push(
    '- **donjon run, learned**: the same without `--wasm-tier`, so with `auto`, its default, in a data directory where each kernel already ran twice: the tier comes from the runs before (the tier column: the tier of each of its runs; see src/client/tiers.ts). The goals are checked on this column, what `donjon run` does from then on.',
  );
  lines.push(
    '- **host, FLAGS**: `bench/wasi/tier-runner.ts` bundled: startWasi() in a plain Node process, no Keep, with the Keep’s steps in the Keep’s order (worker thread started ahead and host warmed up, a pause for the deploy, then V8 flags set with `v8.setFlagsFromString`, then compilation).',
  );
  lines.push('');
  lines.push(
    '**Kernel time** is what each kernel measures itself with the monotonic clock (`clock_time_get` under WASI) around its computation: process start, compilation and module start-up are outside it. **Wall time** is from spawning the process to its exit.',
  );
  lines.push('');
  lines.push(
    `Goals (issue 15), checked on the learned column: each kernel within ${NATIVE_GOAL}× native or, where V8’s own code is the floor (its best stable tier under the host alone is over ${NATIVE_GOAL}× native), within ${FLOOR_GOAL}× that tier; a module’s first run within ${FIRST_RUN_GOAL}× its learned run; and no slower than the built-in WASI. Ratios marked *paired* are medians of the per-round ratios (both runners under the same load).`,
  );
  lines.push('');
  lines.push('### Kernel time (ms)');
  lines.push('');
  lines.push(
    '| kernel | native | node:wasi | donjon run, first run | donjon run, learned | tier | learned / native | learned / host, same tier (paired) | first / learned | goals |',
  );
  lines.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const k of KERNELS) {
    const n = kernelMs(k.name, 'native');
    const b = kernelMs(k.name, 'node:wasi');
    const first = kernelMs(k.name, 'donjon');
    const d = kernelMs(k.name, 'donjon auto');
    lines.push(
      `| ${k.name} (${k.what}) | ${f0(n)}${mark(k.name, 'native')} | ${f0(b)}${mark(k.name, 'node:wasi')} | ${f0(first)}${mark(k.name, 'donjon')} | ${f0(d)}${mark(k.name, 'donjon auto')} | ${tiersUsed(k.name)} | ${ratio(d, n)} | ${pairedRatio(k.name, 'donjon auto', sameTier)} | ${ratio(first, d)} | ${goal(k.name)} |`,
    );
  }
  // The floor, where there is one: the best stable tier, and what the experimental inlining gives for the record.
  for (const k of KERNELS.filter((x) => v8Floor(x.name))) {
    const n = kernelMs(k.name, 'native')!;
    const best = bestTier(k.name)!;
    const inl = kernelMs(k.name, `host ${INLINING}`);
    const learned = paired(k.name, 'donjon auto', best.key);
    let why = `V8’s best stable tier for ${k.name} is \`${best.flags || 'default'}\`: ${f0(best.ms)} ms, ${ratio(best.ms, n)} native (the learned run: ${learned === undefined ? '–' : `${learned.toFixed(2)}×`} that tier, paired).`;
    if (inl !== undefined) {
      why += ` With wasm-into-wasm inlining (\`${INLINING}\`, experimental in V8 ${process.versions.v8.split('-')[0]}, measured only, never used in a Keep) it takes ${f0(inl)} ms, ${ratio(inl, n)} native`;
      why +=
        k.name === 'fib'
          ? inl < 0.9 * best.ms
            ? ': fib(40) makes 3.3·10^8 calls, and what its stable tiers cannot remove is their cost.'
            : ': no faster beyond the noise, so calls are not what holds it back here.'
          : '.';
    }
    lines.push('');
    lines.push(why);
  }
  lines.push('');
  lines.push('### Wall time of the whole process (ms)');
  lines.push('');
  lines.push(
    '| kernel | native | node:wasi | donjon run, first run | donjon run, learned | learned / native | learned / node:wasi |',
  );
  lines.push('|---|---|---|---|---|---|---|');
  for (const k of KERNELS) {
    const n = wallMs(k.name, 'native');
    const b = wallMs(k.name, 'node:wasi');
    const d = wallMs(k.name, 'donjon auto');
    lines.push(
      `| ${k.name} | ${f0(n)} | ${f0(b)} | ${f0(wallMs(k.name, 'donjon'))} | ${f0(d)} | ${ratio(d, n)} | ${ratio(d, b)} |`,
    );
  }
  lines.push('');
  lines.push('### Compiler tiers: kernel time under the host alone (ms)');
  lines.push('');
  lines.push(
    `| kernel | ${TIERS.map((t) => t.label).join(' | ')} | \`node --no-liftoff\` (command line) | native | best |`,
  );
  lines.push(`|---|${TIERS.map(() => '---|').join('')}---|---|---|`);
  for (const k of KERNELS) {
    const times = TIERS.map((t) => kernelMs(k.name, `host ${t.flags}`));
    const best = TIERS.map((t, i) => ({ t, ms: times[i] })).reduce<
      { t: (typeof TIERS)[number]; ms: number } | undefined
    >(
      (acc, x) => (x.ms !== undefined && (acc === undefined || x.ms < acc.ms) ? { t: x.t, ms: x.ms } : acc),
      undefined,
    );
    lines.push(
      `| ${k.name} | ${times.map(f0).join(' | ')} | ${f0(kernelMs(k.name, 'host-cli --no-liftoff'))} | ${f0(kernelMs(k.name, 'native'))} | ${best ? best.t.flags || 'default' : '–'} |`,
    );
  }
  lines.push('');
  lines.push(
    'startWasi() until it resolved (compilation on the calling thread, hand-over to the worker started ahead, instantiation), median ms. V8 compiles a module’s functions lazily, each on its first call (`--wasm-lazy-compilation` is on by default in Node 20’s V8), so what a tier spends compiling lands mostly in the run, not here:',
  );
  lines.push('');
  lines.push(`| kernel | ${TIERS.map((t) => t.flags || 'default').join(' | ')} |`);
  lines.push(`|---|${TIERS.map(() => '---|').join('')}`);
  for (const k of KERNELS) {
    const starts = TIERS.map((t) => {
      const ms = get(k.name, `host ${t.flags}`).flatMap((m) => (m.tier ? [m.tier.startMs] : []));
      return ms.length > 0 ? median(ms) : undefined;
    });
    lines.push(`| ${k.name} | ${starts.map(f0).join(' | ')} |`);
  }

  // What the optimizing tier would cost and give on a module's first run, which uses the default tier.
  lines.push('');
  lines.push('### A module’s first run: default tier or optimizing');
  lines.push('');
  lines.push(
    'Under the host alone, from startWasi() to the result (compilation included, lazy or not), median ms; the difference is paired by round. hello is the start-up goal’s module (`donjon run -q examples/hello/hello.wasm`, whose whole fixed cost the issue wants down to a few Node starts).',
  );
  lines.push('');
  lines.push('| module | bytes | code section bytes | default | `--no-liftoff` | `--no-liftoff` − default |');
  lines.push('|---|---|---|---|---|---|');
  const total = (k: string, key: string): (number | undefined)[] =>
    get(k, key).map((m) => (m.tier ? m.tier.startMs + m.tier.runMs : undefined));
  const cost = new Map<string, number>();
  for (const k of [HELLO, ...KERNELS]) {
    const bytes = readFileSync(wasmOf(k));
    const a = total(k.name, 'host ');
    const b = total(k.name, 'host --no-liftoff');
    const diffs: number[] = [];
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      if (a[i] !== undefined && b[i] !== undefined) diffs.push(b[i]! - a[i]!);
    }
    const some = (xs: (number | undefined)[]): number | undefined => {
      const ok = xs.filter((x): x is number => x !== undefined);
      return ok.length > 0 ? median(ok) : undefined;
    };
    const diff = diffs.length > 0 ? median(diffs) : undefined;
    if (diff !== undefined) cost.set(k.name, diff);
    lines.push(
      `| ${k.name} | ${bytes.length} | ${codeSectionBytes(bytes) ?? '–'} | ${f0(some(a))} | ${f0(some(b))} | ${diff === undefined ? '–' : `${diff > 0 ? '+' : ''}${diff.toFixed(0)}`} |`,
    );
  }
  const helloCost = cost.get('hello');
  const sizes = KERNELS.map((k) => readFileSync(wasmOf(k)).length);
  const helloBytes = readFileSync(wasmOf(HELLO)).length;
  const slowFirst = KERNELS.filter((k) => {
    const first = kernelMs(k.name, 'donjon');
    const learned = kernelMs(k.name, 'donjon auto');
    return first !== undefined && learned !== undefined && first > FIRST_RUN_GOAL * learned;
  }).map((k) => k.name);
  lines.push('');
  lines.push(
    `A first run stays on the default tier${helloCost === undefined ? '.' : `: the optimizing tier would add ${helloCost.toFixed(0)} ms to hello (the start-up goal allows about 2 ms), each function it calls being compiled by TurboFan on its first call.`} Size does not tell the two kinds apart: hello is ${Math.round(helloBytes / 1024)} KiB, the kernels ${Math.round(Math.min(...sizes) / 1024)}–${Math.round(Math.max(...sizes) / 1024)} KiB, and a long loop can sit in any module. V8 has no on-stack replacement for wasm, so a default-tier run cannot move a running loop to TurboFan; the tier is learned from the module’s runs instead (src/client/tiers.ts).${slowFirst.length > 0 ? ` So the first-run goal is not met for ${slowFirst.join(', ')}, whose first run is over ${FIRST_RUN_GOAL}× the learned one.` : ''}`,
  );

  // A large module: how long the first output takes, per tier. Yosys -V prints its version and exits.
  const yosys = join(repoRoot, 'node_modules', '@yowasp', 'yosys', 'gen', 'yosys.core.wasm');
  lines.push('');
  lines.push('### Start-up of a large module: `yosys -V` (ms)');
  lines.push('');
  if (!existsSync(yosys)) {
    lines.push('Skipped: @yowasp/yosys is not installed (it is an optional development dependency).');
  } else {
    const size = (readFileSync(yosys).length / 2 ** 20).toFixed(1);
    const big: { label: string; argv: [string, string[]] }[] = [
      { label: 'node:wasi', argv: [node, [nodeWasi, yosys, '-V']] },
      {
        label: 'donjon run',
        argv: [
          node,
          [cli, 'run', '-q', '--backend', 'nil', '--insecure', '--wasm-tier', 'default', yosys, '--', '-V'],
        ],
      },
      ...TIERS.map((t) => ({
        label: `host, ${t.flags || 'default'}`,
        argv: [node, [tierRunner, t.flags, yosys, '-V']] as [string, string[]],
      })),
      {
        label: 'host, `node --no-liftoff` on the command line',
        argv: [node, ['--no-liftoff', tierRunner, '', yosys, '-V']],
      },
    ];
    const got = new Map<string, Measured[]>();
    for (let round = 0; round < rounds; round++) {
      for (const b of big)
        got.set(b.label, [
          ...(got.get(b.label) ?? []),
          await measure(b.argv[0], b.argv[1], { DONJON_HOME: donjonHome }),
        ]);
    }
    lines.push(`yosys.core.wasm is ${size} MiB.`);
    lines.push('');
    lines.push('| runner | wall | startWasi() resolved | first output |');
    lines.push('|---|---|---|---|');
    for (const b of big) {
      const ms = got.get(b.label) ?? [];
      const bad = ms.find((m) => m.error);
      if (bad) {
        lines.push(`| ${b.label} | failed: ${bad.error} | | |`);
        continue;
      }
      const tiers = ms.flatMap((m) => (m.tier ? [m.tier] : []));
      const firsts = tiers.flatMap((t) => (t.firstOutputMs === null ? [] : [t.firstOutputMs]));
      lines.push(
        `| ${b.label} | ${f0(median(ms.map((m) => m.wallMs)))} | ${tiers.length ? f0(median(tiers.map((t) => t.startMs))) : '–'} | ${firsts.length ? f0(median(firsts)) : '–'} |`,
      );
    }
  }

  lines.push('');
  lines.push('### stdout-heavy: 1,000,000 lines, one `fd_write` each');
  lines.push('');
  lines.push('| runner | wall ms | kernel ms | bytes | vs node:wasi (wall) |');
  lines.push('|---|---|---|---|---|');
  const lw = wallMs('lines', 'node:wasi');
  for (const [key, label] of [
    ['native', 'native'],
    ['node:wasi', 'node:wasi'],
    ['donjon', 'donjon run (default tier)'],
    ['host ', 'host alone, default flags'],
  ] as const) {
    const ms = get('lines', key);
    if (ms.length === 0) continue;
    lines.push(
      `| ${label} | ${f0(wallMs('lines', key))} | ${f0(kernelMs('lines', key))} | ${ms[0]!.stdoutBytes} | ${ratio(wallMs('lines', key), lw)} |`,
    );
  }
  if (notes.length > 0) {
    lines.push('');
    lines.push('Notes:');
    lines.push('');
    for (const n of notes) lines.push(`- ${n}`);
  }
  lines.push('');
  return lines.join('\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(await benchWasi());
}
