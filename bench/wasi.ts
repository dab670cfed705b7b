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
}

const KERNELS: Kernel[] = [
  { name: 'fib', args: [], what: 'recursive fib(40)' },
  { name: 'sieve', args: [], what: 'sieve below 10^7, 10 times' },
  { name: 'matmul', args: [], what: '1000x1000 f64 matrix product' },
  { name: 'sha256', args: [], what: 'SHA-256 of 64 MiB' },
  { name: 'nbody', args: [], what: 'n-body, 5·10^6 steps' },
];
const LINES = { name: 'lines', args: [], what: '1,000,000 lines of println!' };

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
  const rounds = Number(process.env['WASI_BENCH_ROUNDS'] ?? 3);
  const tmp = mkdtempSync(join(tmpdir(), 'donjon-bench-wasi-'));
  try {
    return await benchIn(tmp, rounds);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function benchIn(tmp: string, rounds: number): Promise<string> {
  const node = process.execPath;
  const cli = join(repoRoot, 'bin', 'donjon.cjs');
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
  ];

  for (const k of KERNELS) {
    for (let i = 0; i < 2; i++) {
      const [cmd, args] = donjonArgv(join(kernelDir, `${k.name}.wasm`), k, []);
      await measure(cmd, args, { DONJON_HOME: autoHome });
    }
  }
  const history = new TierHistory(join(autoHome, 'tiers.json'));
  const autoTier = (k: Kernel): string => {
    const wasm = readFileSync(join(kernelDir, `${k.name}.wasm`));
    return history.choose(createHash('sha256').update(wasm).digest('hex'), wasm.length).tier;
  };

  // Interleaved: every runner of every kernel once per round, so that all see the same machine load.
  const results = new Map<string, Measured[]>();
  const add = (key: string, m: Measured): void => {
    results.set(key, [...(results.get(key) ?? []), m]);
  };
  for (let round = 0; round < rounds; round++) {
    for (const k of [...KERNELS, LINES]) {
      const wasm = join(kernelDir, `${k.name}.wasm`);
      for (const r of runners) {
        // The stdout-heavy program is compared on the default tier only.
        if (k === LINES && r.key.startsWith('host') && r.key !== 'host ') continue;
        const argv = r.argv(wasm, k);
        if (argv === undefined) continue;
        add(`${k.name}|${r.key}`, await measure(argv[0], argv[1], { DONJON_HOME: r.home ?? donjonHome }));
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
  const goal = (k: string): string => {
    const d = kernelMs(k, 'donjon auto');
    const n = kernelMs(k, 'native');
    const b = kernelMs(k, 'node:wasi');
    if (d === undefined) return '–';
    const nativeOk = n === undefined ? undefined : d <= 1.3 * n;
    const builtinOk = b === undefined ? undefined : d <= b * 1.02;
    return `${nativeOk === undefined ? '' : nativeOk ? '≤1.3× native ✓' : '>1.3× native ✗'}${builtinOk === undefined ? '' : builtinOk ? ', ≤ built-in ✓' : ', slower than built-in ✗'}`;
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
    '- **donjon run, learned**: the same without `--wasm-tier`, so with `auto`, its default, in a data directory where each kernel already ran twice: the tier comes from those runs (the tier column; see src/client/tiers.ts). The goals are checked on this column, what `donjon run` does from then on.',
  );
  lines.push(
    '- **host, FLAGS**: `bench/wasi/tier-runner.ts` bundled: startWasi() in a plain Node process, no Keep, V8 flags set with `v8.setFlagsFromString` before compiling.',
  );
  lines.push('');
  lines.push(
    '**Kernel time** is what each kernel measures itself with the monotonic clock (`clock_time_get` under WASI) around its computation: process start, compilation and module start-up are outside it. **Wall time** is from spawning the process to its exit.',
  );
  lines.push('');
  lines.push('### Kernel time (ms)');
  lines.push('');
  lines.push(
    '| kernel | native | node:wasi | donjon run, first run | donjon run, learned | tier | learned / native | learned / node:wasi | goals |',
  );
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const k of KERNELS) {
    const n = kernelMs(k.name, 'native');
    const b = kernelMs(k.name, 'node:wasi');
    const first = kernelMs(k.name, 'donjon');
    const d = kernelMs(k.name, 'donjon auto');
    lines.push(
      `| ${k.name} (${k.what}) | ${f0(n)}${mark(k.name, 'native')} | ${f0(b)}${mark(k.name, 'node:wasi')} | ${f0(first)}${mark(k.name, 'donjon')} | ${f0(d)}${mark(k.name, 'donjon auto')} | ${autoTier(k)} | ${ratio(d, n)} | ${ratio(d, b)} | ${goal(k.name)} |`,
    );
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
    'startWasi() until it resolved (compilation on the calling thread, worker start, instantiation), median ms:',
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
