// Over 400 lines: `run` and the workload flags, files and policy it shares with `deploy`.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Policy } from '../attestation/index.ts';
import {
  checkSupportedFiles,
  checkWorkloadModule,
  KeepManagerClient,
  measureRuntime,
  measureSgxRuntime,
  parseEnarxToml,
  type RunEvent,
  type RunOutcome,
  readHostDirectory,
  runWorkload,
  TierHistory,
  type WorkloadConfig,
} from '../client/index.ts';
import { reasonOf } from '../lib/errors.ts';
import type { DirSpec, Limits, PublishedPort } from '../protocol/messages.ts';
import { RatlsError } from '../ratls/index.ts';
import { type Invocation, parseCommand } from './args.ts';
import { CliError, CommandError, EXIT, UsageError } from './errors.ts';
import { dataDir } from './paths.ts';
import { type PulledArgument, pullArgument, pullHelp, pullOptions } from './registry-options.ts';
import { remoteClient, remoteOptions, saveAttachSecret } from './remote.ts';
import { Reporter } from './report.ts';
import { parseDuration, parseSize } from './units.ts';

export const runHelp = `Usage: donjon run [options] WORKLOAD.wasm|REF [-- ARG...]
       donjon run [options] PKGDIR|file:///PATH [-- ARG...]   (main.wasm beside Enarx.toml, as Enarx)

Deploys a WebAssembly (WASI preview1) workload into a fresh attested Keep and streams its stdin, stdout and
stderr through a TLS channel that ends inside the Keep. Without --host, an embedded Keep Manager on this
machine serves the run, with this machine's simulated SEV-SNP root.

Options:
  --backend NAME            sim (default), sgx-sim (simulated SGX) or nil (no attestation: needs
                            --insecure)
  --insecure                accept a Keep without attestation evidence (nil backend)
  --host URL                a Keep Manager to use instead of the embedded one (env DONJON_HOST)
  --token TOKEN             bearer token for --host (env DONJON_TOKEN)
  --host-fingerprint SHA256 the host's TLS certificate fingerprint (else trusted on first use)
  --trust-sim-root SHA256   accept evidence signed by this simulated root (repeatable)
  --expect-measurement HEX  accept this runtime measurement instead of this version's (repeatable;
                            an MRENCLAVE of 64 hex digits for sgx-sim)
  --config FILE             Enarx.toml with args, env and files (alias --wasmcfgfile, as Enarx)
  --env NAME=VALUE          set an environment variable of the workload (repeatable)
  --dir HOST[:GUEST]        copy directory HOST into the Keep, pre-opened at GUEST (default the same
                            path); the workload sees the copy, never the host's files (repeatable;
                            at most 64 MiB and 10000 files and folders each)
  --memory SIZE             linear memory limit, e.g. 64MiB
  --timeout DURATION        wall-time limit, e.g. 30s
  --max-output SIZE         stdout+stderr volume limit
  --publish NAME=HOSTPORT   the host port of listen file NAME (0: any; repeatable); by default each listen
                            file gets its own port when that is free on the host, else any
  --wasm-tier TIER          auto (default: chosen from this module's earlier runs), default (Liftoff
                            first: fast start) or optimizing (TurboFan only: long-running compute kernels)
${pullHelp}
  -q, --quiet               print nothing but the workload's own output
  --json                    report progress on stderr as JSON lines
  -h, --help                show this help

Exit status: the workload's own, or 134 for a trap, 124 for the time limit, 137 for another limit,
2 for a usage error, 3 when the Keep's evidence or the host's certificate is refused, 4 when the host or the
Keep fails, 130 when interrupted.`;

/** Reads a workload module, refusing what is not WebAssembly 1.0 with a usage error. */
export function readWorkload(path: string): Uint8Array {
  let bytes: Buffer;
  try {
    if (!statSync(path).isFile()) throw new UsageError(`Cannot read workload ${path}: not a file`);
    bytes = readFileSync(path);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      `Cannot read workload ${path}: ${code === 'ENOENT' ? 'no such file' : String(code)}`,
    );
  }
  if (bytes.length < 8 || bytes.readUInt32BE(0) !== 0x0061736d) {
    throw new UsageError(`Cannot run ${path}: not a WebAssembly module (no \\0asm header)`);
  }
  if (bytes.readUInt32LE(4) !== 1) throw new UsageError(`Cannot run ${path}: not a WebAssembly 1.0 module`);
  const wasm = new Uint8Array(bytes);
  // Structure, entry point and imports, checked here rather than inside a Keep made for nothing.
  try {
    checkWorkloadModule(wasm);
  } catch (error) {
    throw CommandError.rephrase(error, `Cannot run ${path}: ${reasonOf(error)}`);
  }
  return wasm;
}

/** Reads each --dir HOST[:GUEST] into the deploy message's form; a usage error names what is wrong. */
export function readDirs(values: readonly string[]): DirSpec[] {
  const dirs: DirSpec[] = [];
  for (const value of values) {
    const colon = value.indexOf(':');
    const host = colon === -1 ? value : value.slice(0, colon);
    const guest = colon === -1 ? value : value.slice(colon + 1);
    if (host === '' || guest === '')
      throw new UsageError(`Cannot read --dir ${value}: expected HOST[:GUEST]`);
    if (dirs.some((d) => d.guest === guest)) {
      throw new UsageError(`Cannot read --dir ${value}: ${guest} is pre-opened twice`);
    }
    try {
      dirs.push({ guest, entries: readHostDirectory(host) });
    } catch (error) {
      throw new UsageError((error as Error).message, { cause: error });
    }
  }
  return dirs;
}

/**
 * Where a workload is, as Enarx's `run` and `deploy` take it: a module file, a package directory
 * (`main.wasm` beside an optional `Enarx.toml`, which is the configuration unless --config names another),
 * or either as a `file://` URL.
 */
export function resolvePackage(workload: string): { wasm: string; config?: string } {
  let path = workload;
  if (/^file:/i.test(workload)) {
    try {
      path = fileURLToPath(workload);
    } catch (error) {
      throw new UsageError(`Cannot read workload ${workload}: ${reasonOf(error)}`, { cause: error });
    }
  } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(workload)) {
    throw new UsageError(`Cannot read workload ${workload}: only files, directories and file:// URLs`);
  }
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    // readWorkload says what is missing
  }
  if (!isDir) return { wasm: path };
  const wasm = join(path, 'main.wasm');
  if (!existsSync(wasm)) {
    throw new UsageError(
      `Cannot read package ${workload}: it has no main.wasm (a package is main.wasm beside Enarx.toml)`,
    );
  }
  const config = join(path, 'Enarx.toml');
  return existsSync(config) ? { wasm, config } : { wasm };
}

/** Reads and checks an Enarx.toml; a usage error says what is wrong. */
export function readConfig(path: string): WorkloadConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(
      `Cannot read config ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  try {
    const config = parseEnarxToml(text);
    checkSupportedFiles(config.files);
    return config;
  } catch (error) {
    throw new UsageError((error as Error).message, { cause: error });
  }
}

/** Reads --env NAME=VALUE pairs. */
export function parseEnv(pairs: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`Cannot read --env ${pair}: expected NAME=VALUE`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

/** Reads hex values of a repeatable flag (colons allowed), each of `length` digits. */
export function hexList(values: readonly string[], flag: string, length: number): string[] {
  return values.map((v) => {
    const hex = v.toLowerCase().replace(/:/g, '');
    if (!new RegExp(`^[0-9a-f]{${length}}$`).test(hex)) {
      throw new UsageError(`Cannot read ${flag} ${v}: expected ${length} hex digits`);
    }
    return hex;
  });
}

/** The exit status of a workload's outcome: its own status, or 134 for a trap, 124 or 137 for a limit. */
export function exitCodeOf(outcome: RunOutcome): number {
  switch (outcome.kind) {
    case 'exit':
      return outcome.code;
    case 'trap':
      return EXIT.trap;
    case 'limit':
      return outcome.limit === 'time' ? EXIT.timeLimit : EXIT.limit;
  }
}

/** The flags `run` and `deploy` share: what to run, where, under which limits and which trust. */
export const workloadOptions = {
  backend: { type: 'string', default: 'sim' },
  insecure: { type: 'boolean', default: false },
  ...remoteOptions,
  'trust-sim-root': { type: 'string', multiple: true, default: [] as string[] },
  'expect-measurement': { type: 'string', multiple: true, default: [] as string[] },
  config: { type: 'string' },
  // Enarx's name for --config (enarx run --wasmcfgfile).
  wasmcfgfile: { type: 'string' },
  env: { type: 'string', multiple: true, default: [] as string[] },
  dir: { type: 'string', multiple: true, default: [] as string[] },
  memory: { type: 'string' },
  timeout: { type: 'string' },
  'max-output': { type: 'string' },
  'wasm-tier': { type: 'string' },
  publish: { type: 'string', multiple: true, default: [] as string[] },
  ...pullOptions,
  quiet: { type: 'boolean', short: 'q', default: false },
  json: { type: 'boolean', default: false },
} as const;

/** The values of {@link workloadOptions} as parseArgs returns them. */
export interface WorkloadValues {
  backend: string;
  insecure: boolean;
  'trust-sim-root': string[];
  'expect-measurement': string[];
  config?: string | undefined;
  wasmcfgfile?: string | undefined;
  env: string[];
  dir: string[];
  memory?: string | undefined;
  timeout?: string | undefined;
  'max-output'?: string | undefined;
  'wasm-tier'?: string | undefined;
  publish: string[];
}

/** A workload as the command line describes it, checked and read. */
export interface WorkloadSpec {
  backend: 'sim' | 'sgx-sim' | 'nil';
  wasm: Uint8Array;
  config: WorkloadConfig | undefined;
  args: string[];
  env: Record<string, string>;
  dirs: DirSpec[];
  limits: Limits;
  measurements: string[];
  trustedSimRoots: string[];
  /** `auto` (only for `run`): chosen from the module's earlier runs, see TierHistory. */
  tier: 'auto' | 'default' | 'optimizing';
  /** Host ports asked for listen files (`--publish NAME=HOSTPORT`). */
  publish: PublishedPort[];
}

/**
 * Reads `--publish NAME=HOSTPORT` (0: any free port), each naming a listen file of the Enarx.toml: a name the
 * workload does not listen on would publish nothing, so it is a mistake to say now.
 */
export function parsePublish(values: readonly string[], config: WorkloadConfig | undefined): PublishedPort[] {
  const listening = new Set((config?.files ?? []).filter((f) => f.kind === 'listen').map((f) => f.name));
  const seen = new Set<string>();
  return values.map((v) => {
    const m = /^([^=]+)=(\d{1,5})$/.exec(v);
    const hostPort = m ? Number(m[2]) : Number.NaN;
    if (!m || hostPort > 65535) {
      throw new UsageError(
        `Cannot read --publish ${v}: expected NAME=HOSTPORT, a listen file's name and a port (0: any)`,
      );
    }
    const name = m[1]!;
    if (!listening.has(name)) {
      const names = [...listening];
      throw new UsageError(
        `Cannot publish ${name}: the Enarx.toml has no listen file of that name${names.length > 0 ? ` (it has ${names.join(', ')})` : ''}`,
      );
    }
    if (seen.has(name)) throw new UsageError(`Cannot publish ${name} twice`);
    seen.add(name);
    return { name, hostPort };
  });
}

/** Checks and reads what `run` and `deploy` are asked to run (`verb` names the command in messages). */
export function workloadFrom(
  verb: string,
  values: WorkloadValues,
  positionals: readonly string[],
  pulled?: PulledArgument,
): WorkloadSpec {
  const [workload, ...workloadArgs] = positionals;
  if (workload === undefined) {
    throw new UsageError(`Cannot ${verb}: no workload given (donjon ${verb} WORKLOAD.wasm)`);
  }
  if (
    values.config !== undefined &&
    values.wasmcfgfile !== undefined &&
    values.config !== values.wasmcfgfile
  ) {
    throw new UsageError(`Cannot ${verb}: --config and --wasmcfgfile name two files; give one`);
  }
  // A registry reference was pulled already; anything else is a file, a package directory or a file:// URL.
  const pkg = pulled ? { wasm: workload } : resolvePackage(workload);
  const wasmPath = pkg.wasm;
  const configPath = values.config ?? values.wasmcfgfile ?? pkg.config;
  const backend = values.backend;
  if (backend !== 'sim' && backend !== 'sgx-sim' && backend !== 'nil') {
    throw new UsageError(`Cannot use backend ${backend}: this version offers sim, sgx-sim and nil`);
  }
  if (backend === 'nil' && !values.insecure) {
    // The same refusal the channel would make once the Keep presents no evidence, made before any Keep exists.
    throw new RatlsError(
      'ERR_KEEP_NOT_ATTESTED',
      'Cannot trust a nil Keep: it has no attestation, so nothing proves what runs it; pass --insecure to accept that',
    );
  }
  // `run` learns from a module's earlier runs; a service has no end to time, so `deploy` takes a fixed tier.
  const tiers: readonly string[] =
    verb === 'run' ? ['auto', 'default', 'optimizing'] : ['default', 'optimizing'];
  const tier = values['wasm-tier'] ?? tiers[0]!;
  if (!tiers.includes(tier)) {
    throw new UsageError(`Cannot use --wasm-tier ${tier}: use ${tiers.join(', ')}`);
  }
  const wasm = pulled?.wasm ?? readWorkload(wasmPath);
  const config = configPath ? readConfig(configPath) : pulled?.config;
  const limits: Limits = {};
  if (values.memory) limits.memoryBytes = parseSize(values.memory, '--memory');
  if (values.timeout) limits.wallTimeMs = parseDuration(values.timeout, '--timeout');
  if (values['max-output']) limits.outputBytes = parseSize(values['max-output'], '--max-output');
  return {
    backend,
    wasm,
    config,
    args: [basename(wasmPath), ...(config?.args ?? []), ...workloadArgs],
    env: { ...(config?.env ?? {}), ...parseEnv(values.env) },
    dirs: readDirs(values.dir),
    limits,
    measurements:
      values['expect-measurement'].length > 0
        ? hexList(values['expect-measurement'], '--expect-measurement', backend === 'sgx-sim' ? 64 : 96)
        : [backend === 'sgx-sim' ? measureSgxRuntime() : measureRuntime()],
    trustedSimRoots: hexList(values['trust-sim-root'], '--trust-sim-root', 64),
    tier: tier as WorkloadSpec['tier'],
    publish: parsePublish(values.publish, config),
  };
}

/**
 * The policy a workload's Keep must meet: its runtime measurement (MRENCLAVE on `sgx-sim`, the SEV-SNP
 * measurement otherwise), under the simulated roots opted into.
 */
export function workloadPolicy(
  spec: Pick<WorkloadSpec, 'backend' | 'measurements' | 'trustedSimRoots'>,
): Policy {
  const base: Policy =
    spec.backend === 'sgx-sim' ? { mrEnclaves: spec.measurements } : { measurements: spec.measurements };
  return spec.trustedSimRoots.length > 0 ? { ...base, trustSimulatedRoots: spec.trustedSimRoots } : base;
}

/** The simulated root of the embedded host that a Keep on `backend` is attested under. */
export function embeddedRoot(
  embedded: { simRootFingerprint: string; simSgxRootFingerprint: string },
  backend: WorkloadSpec['backend'],
): string {
  return backend === 'sgx-sim' ? embedded.simSgxRootFingerprint : embedded.simRootFingerprint;
}

/** `donjon run`: returns the workload's status (see {@link exitCodeOf}); throws for anything else. */
export async function runCommand(argv: string[], invocation?: Invocation): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    command: 'run',
    options: workloadOptions,
    positionals: true,
    invocation,
  });
  const { backend, wasm, config, args, env, dirs, limits, measurements, trustedSimRoots, tier, publish } =
    workloadFrom('run', values, positionals, await pullArgument(values, positionals));
  const stdinWanted = config ? config.files.some((f) => f.kind === 'stdin') : true;
  const reporter = new Reporter({ quiet: values.quiet, json: values.json });

  const remote = remoteClient(values, (m) => reporter.note(m));
  // The embedded Keep Manager is loaded only when it runs: a run against --host does not parse the daemon.
  const embedded = remote ? undefined : await (await import('./embedded.ts')).startEmbeddedHost(reporter);
  if (embedded) trustedSimRoots.push(embeddedRoot(embedded, backend));

  const controller = new AbortController();
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const host: KeepManagerClient = remote ?? new KeepManagerClient(embedded!.url);
    const digest = createHash('sha256').update(wasm).digest('hex');
    const history = new TierHistory(join(dataDir(), 'tiers.json'));
    let chosen: 'default' | 'optimizing';
    // Said once the workload starts: a run that fails before then has no tier to speak of.
    let tierNote: string | undefined;
    if (tier === 'auto') {
      const choice = history.choose(digest, wasm.length);
      chosen = choice.tier;
      tierNote = `compiler tier ${choice.tier}: ${choice.reason}`;
    } else chosen = tier;
    // Timed from the hand-over of the module (right after the evidence is verified) to the workload's end, so
    // that each tier's compilation counts.
    let handedOverAt: number | undefined;
    let started = false;
    let startedTier: 'default' | 'optimizing' = 'default';
    const policy = workloadPolicy({ backend, measurements, trustedSimRoots });
    const result = await runWorkload({
      host,
      backend,
      wasm,
      args,
      env,
      stdin: stdinWanted ? process.stdin : null,
      stdout: process.stdout,
      stderr: reporter.workloadStderr(),
      policy,
      insecure: values.insecure,
      ...(Object.keys(limits).length > 0 ? { limits } : {}),
      ...(publish.length > 0 ? { publish } : {}),
      ...(config ? { files: config.files } : {}),
      ...(config?.secrets ? { secrets: config.secrets } : {}),
      ...(dirs.length > 0 ? { dirs } : {}),
      tier: chosen,
      onEvent: (e: RunEvent) => {
        reporter.event(e);
        if (e.type === 'evidence-verified') handedOverAt = performance.now();
        if (e.type === 'workload-started') {
          if (tierNote !== undefined) reporter.note(tierNote);
          started = true;
          startedTier = e.tier ?? 'default';
          for (const p of e.ports ?? []) reporter.note(`listen file ${p.name} is on host port ${p.port}`);
        }
      },
      signal: controller.signal,
      // A remote Keep may outlive this command (a lost connection); keep the way back in.
      ...(remote ? { onSecret: saveAttachSecret } : {}),
    });
    // A finished run teaches the tier choice; a trap or a limit says nothing about how long it would take.
    if (result.outcome.kind === 'exit' && started && handedOverAt !== undefined) {
      try {
        history.record(digest, startedTier, performance.now() - handedOverAt);
      } catch (error) {
        reporter.note(`could not record the run time: ${(error as Error).message}`);
      }
    }
    reporter.outcome(result.outcome);
    return exitCodeOf(result.outcome);
  } catch (error) {
    if (interrupted)
      throw new CliError('ERR_INTERRUPTED', 'Interrupted: the Keep was stopped', { cause: error });
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (process.stdin.readable) process.stdin.destroy();
    // The outcome is known and nothing else needs the embedded host: exit once the output is flushed rather
    // than wait for its Keep Loader and Keep to wind down (they end when this process does).
    if (embedded) {
      embedded.release();
      if (invocation) invocation.exitWhenDone = true;
      else await embedded.close();
    }
  }
}
