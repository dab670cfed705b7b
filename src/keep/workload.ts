import { createHash, timingSafeEqual } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { lowerLimits } from '../lib/limits.ts';
import type { KeepConfig } from '../protocol/ipc.ts';
import type { Limits, MessageOf, PortMapping } from '../protocol/messages.ts';
import {
  configDigest,
  DEFAULT_FILE_SPECS,
  type NormalizedFile,
  normalizeFiles,
} from '../protocol/workload.ts';
import {
  startWasi,
  type WasiFile,
  type WasiLimits,
  type WasiRun,
  type WasiStandbyWorker,
  type WasiTree,
  type WasiWorkerScript,
} from '../wasi/index.ts';
import { type KeepKey, type ServiceCertificate, serviceCertificate } from './certificates.ts';
import { preopensOf } from './dirs.ts';
import { KeepError } from './errors.ts';
import type { EvidenceSource } from './gramine.ts';
import type { KeepSockets } from './sockets.ts';

/** The workload's memory limit when neither host nor tenant sets one. */
export const DEFAULT_MEMORY_BYTES = 256 * 1024 * 1024;

/**
 * Most descriptors a workload may hold open, its initial table and pre-opened directories included: the
 * default and the ceiling of every Keep (host and tenant may only lower it). The descriptor table lives on the
 * Keep's heap, outside the workload's memory limit, so it must be bounded on its own; 1024 is the usual soft
 * `RLIMIT_NOFILE` of a POSIX process. Opening one more ends the run with the `fds` limit.
 */
export const DEFAULT_DESCRIPTORS = 1024;

/** The WASI host's limits of a run: the lower of the host's ceilings and the tenant's, with the Keep's defaults. */
export function workloadLimits(
  host: Limits,
  tenant: Limits | undefined,
): WasiLimits & { memoryBytes: number; maxFds: number } {
  const merged = lowerLimits(host, tenant ?? {});
  const out: WasiLimits & { memoryBytes: number; maxFds: number } = {
    memoryBytes: merged.memoryBytes ?? DEFAULT_MEMORY_BYTES,
    maxFds: Math.min(merged.descriptors ?? DEFAULT_DESCRIPTORS, DEFAULT_DESCRIPTORS),
  };
  if (merged.wallTimeMs !== undefined) out.wallTimeMs = merged.wallTimeMs;
  if (merged.outputBytes !== undefined) out.outputBytes = merged.outputBytes;
  return out;
}

/** What starting a workload needs of the Keep. */
export interface WorkloadContext {
  readonly config: KeepConfig;
  readonly key: KeepKey;
  /** Where the evidence of a service's certificate comes from. */
  readonly control: EvidenceSource;
  /** The workload's sockets; the Keep routes connections that arrive during the set-up to it already. */
  readonly sockets: KeepSockets;
  /** The WASI worker's code (see KeepIo). */
  readonly workerUrl: WasiWorkerScript;
  /** The worker thread started while the Keep waited for a workload. */
  readonly standby: WasiStandbyWorker;
  onStdout(data: Uint8Array): void;
  onStderr(data: Uint8Array): void;
}

/** A workload that runs. */
export interface Workload {
  readonly run: WasiRun;
  /** Host ports of its listen files, as the Keep Loader reported them. */
  readonly ports: PortMapping[];
  /** Stops what the Keep runs for it besides the run itself (sockets, certificate renewal). */
  stop(): void;
}

function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/** Whether two byte strings are equal, in time independent of where they differ. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Whether `secret` is the one whose SHA-256 the deployer sent as `owner`. */
export function ownsWith(owner: Uint8Array, secret: Uint8Array): boolean {
  return sameBytes(sha256(secret), owner);
}

/**
 * Checks a deploy message, sets up its descriptor table, sockets and directories, and starts the workload.
 * Throws {@link KeepError} for a deploy the Keep refuses, and the WASI host's errors (ERR_WASM_*) for a
 * module it refuses; nothing is left running then.
 */
export async function startWorkload(m: MessageOf<'deploy'>, ctx: WorkloadContext): Promise<Workload> {
  const { config } = ctx;
  if (config.maxWasmBytes !== undefined && m.wasm.length > config.maxWasmBytes) {
    throw new KeepError(
      'ERR_DEPLOY_TOO_LARGE',
      `Cannot run the workload: it is over this host's ${config.maxWasmBytes} bytes`,
    );
  }
  if (!sameBytes(m.digest, sha256(m.wasm))) {
    throw new KeepError(
      'ERR_DEPLOY_DIGEST_MISMATCH',
      'Cannot run the workload: its digest does not match its bytes',
    );
  }
  // Before anything is set up: a module the pinned artifact does not name never gets a descriptor. The registry
  // code (like the broker client below) is evaluated only for a deploy that needs it: an idle Keep holds none.
  const artifact = m.artifact && (await import('./artifact.ts')).checkArtifact(m);
  const limits = workloadLimits(config.limits, m.limits);
  let table: NormalizedFile[];
  try {
    table = normalizeFiles(m.files ?? DEFAULT_FILE_SPECS);
  } catch (error) {
    throw new KeepError('ERR_DEPLOY_CONFIG_INVALID', (error as Error).message, { cause: error });
  }
  const preopens: Record<string, WasiTree> = m.dirs ? preopensOf(m.dirs) : {};
  const secrets = m.secrets?.length
    ? (await import('./secrets.ts')).planSecrets(m.secrets, preopens, m.env)
    : undefined;
  const fixed = table.length + Object.keys(preopens).length + (secrets?.dirs.length ?? 0);
  if (fixed > limits.maxFds) {
    throw new KeepError(
      'ERR_DEPLOY_CONFIG_INVALID',
      `Cannot run the workload: its ${fixed} descriptors are over the limit of ${limits.maxFds}`,
    );
  }
  // The copies live in the workload's memory budget, as everything it stores does.
  const dirBytes = (m.dirs ?? []).reduce(
    (n, d) => n + d.entries.reduce((k, e) => k + (e.data?.length ?? 0), 0),
    0,
  );
  if (dirBytes > limits.memoryBytes) {
    throw new KeepError(
      'ERR_DEPLOY_CONFIG_INVALID',
      `Cannot pre-open the directories: their ${dirBytes} bytes are over the memory limit of ${limits.memoryBytes}`,
    );
  }
  let service: ServiceCertificate | undefined;
  const stop = (): void => {
    service?.stop();
    ctx.sockets.close();
  };
  try {
    const usesTls = table.some((f) => (f.kind === 'listen' || f.kind === 'connect') && f.prot === 'tls');
    const digest =
      usesTls || secrets
        ? configDigest({
            args: m.args,
            env: m.env,
            files: table,
            ...(m.dirs ? { dirs: m.dirs } : {}),
            ...(m.secrets ? { secrets: m.secrets } : {}),
          })
        : undefined;
    // Every secret is in the Keep before anything of the workload's runs or listens.
    const opened = await secrets?.fetch({ ...ctx, workload: m.digest, config: digest! });
    if (usesTls) {
      service = await serviceCertificate(
        ctx.key,
        ctx.control,
        m.digest,
        digest!,
        artifact && new Uint8Array(Buffer.from(artifact.digest.slice('sha256:'.length), 'hex')),
        artifact?.signers,
      );
    }
    const ports = await ctx.sockets.listen(table, service?.tls);
    const connected = await ctx.sockets.connect(table);
    const files = table.map((f, fd): WasiFile => {
      if (f.kind === 'listen') return { kind: 'listen' };
      if (f.kind === 'connect') return { kind: 'socket', stream: connected.get(fd)! };
      return { kind: f.kind };
    });
    // Enarx's convention: the workload finds its descriptors by name. These are the Keep's, not the tenant's.
    const env =
      m.files === undefined
        ? m.env
        : { ...m.env, FD_COUNT: String(table.length), FD_NAMES: table.map((f) => f.name).join(':') };
    // One workload per Keep: the process-wide compiler flag is this workload's alone. It must be set before
    // startWasi compiles the module.
    if (m.tier === 'optimizing') setFlagsFromString('--no-liftoff');
    const run = await startWasi({
      module: m.wasm,
      args: m.args,
      env: opened ? { ...env, ...opened.env } : env,
      stdin: m.stdin ? 'pipe' : 'null',
      onStdout: ctx.onStdout,
      onStderr: ctx.onStderr,
      limits,
      files,
      preopens: opened ? { ...preopens, ...opened.preopens } : preopens,
      ...(secrets ? { readOnlyPreopens: secrets.dirs } : {}),
      workerUrl: ctx.workerUrl,
      standby: ctx.standby,
    });
    ctx.sockets.attach(run);
    return { run, ports, stop };
  } catch (error) {
    stop();
    throw error;
  }
}
