// What `run` and `deploy` share: the workload's flags read into what to run, the files it names, the policy its
// Keep must meet and the exit status of its outcome. It loads the client, the verifier and TOML; `run` starts
// its embedded host and Keep before it loads this.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Policy } from '../attestation/index.ts';
import {
  checkSupportedFiles,
  checkWorkloadModule,
  measureRuntime,
  measureSgxRuntime,
  parseEnarxToml,
  type RunOutcome,
  readHostDirectory,
  type WorkloadConfig,
} from '../client/index.ts';
import { reasonOf } from '../lib/errors.ts';
import type { DirSpec, Limits, PublishedPort } from '../protocol/messages.ts';
import { RatlsError } from '../ratls/index.ts';
import { CommandError, EXIT, UsageError } from './errors.ts';
import type { PulledArgument } from './registry-options.ts';
import { limitsFrom } from './units.ts';

export { workloadOptions } from './flags.ts';

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
  const limits = limitsFrom(values);
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
