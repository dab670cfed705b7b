// Running, deploying and attaching to a workload: over 400 lines because the three share one attested
// channel, one deploy message and one stream loop, whose rules (stop a Keep never used, detach without
// stopping) are easier to keep right side by side.
import { createHash, randomBytes } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Policy, TrustRoots } from '../attestation/index.ts';
import type {
  Backend,
  DirSpec,
  FileSpec,
  Limits,
  Message,
  MessageOf,
  PortMapping,
  PublishedPort,
  SecretSpec,
} from '../protocol/messages.ts';
import { secretRefusalCategory } from '../protocol/secrets.ts';
import { readFrames, writeFrame } from '../protocol/stream.ts';
import { configDigest, DEFAULT_FILE_SPECS, normalizeFiles } from '../protocol/workload.ts';
import type { KeepIdentity } from '../ratls/index.ts';
import { openAttestedChannel } from './channel.ts';
import { ClientError } from './errors.ts';
import type { HelloSent } from './hello.ts';
import type { KeepHost, KeepInfo } from './keepmgr-client.ts';
import { checkWorkloadModule } from './module-check.ts';

/** How a workload ended, as the Keep reported it inside the attested channel. */
export type RunOutcome =
  | { kind: 'exit'; code: number }
  | { kind: 'trap'; message: string }
  | { kind: 'limit'; limit: 'memory' | 'time' | 'output' | 'fds'; message: string };

/** Progress of a run, for a caller that wants to show it. None of it is workload data. */
export type RunEvent =
  | { type: 'keep-created'; keep: KeepInfo }
  | { type: 'evidence-verified'; identity: KeepIdentity }
  | { type: 'workload-sent'; bytes: number; digest: string }
  | { type: 'workload-started'; ports?: PortMapping[]; tier?: 'default' | 'optimizing' }
  | { type: 'attached' }
  | { type: 'notice'; message: string };

/** What every way of talking to a Keep's workload shares. */
export interface StreamOptions {
  /** Streamed into the Keep; null gives the workload an empty stdin (or sends none, on attach). */
  stdin: Readable | null;
  stdout: Writable;
  stderr: Writable;
  policy: Policy;
  roots?: TrustRoots;
  insecure?: boolean;
  onEvent?: (event: RunEvent) => void;
  signal?: AbortSignal;
}

/** What a workload is made of, as the Keep receives it. */
export interface WorkloadOptions {
  host: KeepHost;
  backend: Backend;
  wasm: Uint8Array;
  /** argv, program name first. */
  args: readonly string[];
  env: Readonly<Record<string, string>>;
  limits?: Limits;
  /** The descriptor table (Enarx.toml's `files`); default stdin, stdout, stderr. */
  files?: readonly FileSpec[];
  /** Directories to pre-open, copied into the Keep (see readHostDirectory). */
  dirs?: readonly DirSpec[];
  /** Secrets the Keep fetches from key brokers before the workload starts (Enarx.toml's `[[secrets]]`). */
  secrets?: readonly SecretSpec[];
  /**
   * V8's compiler tier for the module: 'default' (Liftoff first, then tier-up: fast start, but a hot loop in a
   * function called once stays in Liftoff) or 'optimizing' (TurboFan only: a slower start, full speed from
   * the first iteration). bench/RESULTS.md measures both.
   */
  tier?: 'default' | 'optimizing';
  /** Host ports for the workload's listen files, by name (0: any free port); else each file's own when free. */
  publish?: readonly PublishedPort[];
}

export interface RunOptions extends StreamOptions, WorkloadOptions {
  /**
   * The secret that lets this client attach to the workload again later (its SHA-256 goes to the Keep with the
   * workload). Default: fresh random bytes. Called before the workload is sent, so the caller can keep it.
   */
  onSecret?: (keepId: string, secret: Uint8Array) => void;
  /**
   * A Keep already asked of `host` for this run, with this `backend`, `limits` and `publish`: a caller that
   * knows them before it has read the workload asks early, so that the Keep starts while it reads. Default: the
   * Keep is created here, once the module has been checked.
   */
  keep?: Promise<KeepInfo>;
  /**
   * The channel to `keep`, opened and its hello sent already (`sendChannelHello`), so that the Keep
   * works on its certificate while the caller read the workload. Default: opened here.
   */
  channel?: Promise<HelloSent>;
}

export interface RunResult {
  keepId: string;
  identity: KeepIdentity;
  outcome: RunOutcome;
}

const STDIN_CHUNK = 64 * 1024;

async function connect(host: KeepHost, keepId: string, options: StreamOptions, early?: Promise<HelloSent>) {
  const sent = early === undefined ? undefined : await early;
  const stream = sent?.stream ?? (await host.openChannel(keepId));
  const { tls, identity } = await openAttestedChannel(stream, {
    nonce: sent?.nonce ?? new Uint8Array(randomBytes(32)),
    ...(sent ? { helloSent: true } : {}),
    policy: options.policy,
    ...(options.roots ? { roots: options.roots } : {}),
    ...(options.insecure ? { insecure: true } : {}),
  });
  options.onEvent?.({ type: 'evidence-verified', identity });
  return { tls, identity };
}

/** Says why a channel ended early: the Keep died, or the way to it broke while it may still run. */
async function channelEnded(host: KeepHost, keepId: string, cause?: Error): Promise<ClientError> {
  try {
    const keep = await host.getKeep(keepId);
    if (keep.state === 'failed' || keep.state === 'stopped' || keep.state === 'exited') {
      return new ClientError(
        'ERR_KEEP_DIED',
        `The Keep died before the workload finished${keep.error ? `: ${keep.error}` : ''}`,
        cause ? { cause } : {},
      );
    }
  } catch {
    // The host is gone too: the Keep may well be alive.
  }
  return new ClientError(
    'ERR_CHANNEL_LOST',
    `Lost the channel to Keep ${keepId}; it may still be running: donjon keeps attach ${keepId}`,
    cause ? { cause } : {},
  );
}

/** Streams stdin in and output out over an attested channel until the workload's outcome arrives. */
function stream(tls: TLSSocket, host: KeepHost, keepId: string, options: StreamOptions): Promise<RunOutcome> {
  return new Promise<RunOutcome>((resolve, reject) => {
    let done = false;
    const stdin = options.stdin;
    const onData = (chunk: Buffer): void => {
      for (let i = 0; i < chunk.length; i += STDIN_CHUNK) {
        const ok = writeFrame(tls, {
          v: 1,
          type: 'stdin',
          data: new Uint8Array(chunk.subarray(i, i + STDIN_CHUNK)),
        });
        if (!ok) {
          stdin?.pause();
          tls.once('drain', () => stdin?.resume());
        }
      }
    };
    const onEnd = (): void => {
      if (!done) writeFrame(tls, { v: 1, type: 'stdin-end' });
    };
    const settle = (error: unknown, value?: RunOutcome): void => {
      if (done) return;
      done = true;
      stdin?.off('data', onData);
      stdin?.off('end', onEnd);
      stdin?.pause();
      options.signal?.removeEventListener('abort', onAbort);
      if (error) {
        tls.destroy();
        reject(error);
      } else {
        tls.end();
        resolve(value!);
      }
    };
    const ended = (cause?: Error): void => {
      if (done) return;
      channelEnded(host, keepId, cause).then((e) => settle(e));
    };
    const onAbort = (): void =>
      settle(new ClientError('ERR_KEEP_DIED', 'The run was cancelled; the Keep is being stopped'));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (stdin) {
      stdin.on('data', onData);
      stdin.once('end', onEnd);
    }
    readFrames(
      tls,
      (m: Message) => {
        switch (m.type) {
          case 'started':
            options.onEvent?.(startedEvent(m));
            return;
          case 'notice':
            options.onEvent?.({ type: 'notice', message: m.message });
            return;
          case 'stdout':
            options.stdout.write(m.data);
            return;
          case 'stderr':
            options.stderr.write(m.data);
            return;
          case 'exit':
            return settle(null, { kind: 'exit', code: m.code });
          case 'trap':
            return settle(null, { kind: 'trap', message: m.message });
          case 'limit':
            return settle(null, { kind: 'limit', limit: m.limit, message: m.message });
          case 'error':
            return settle(keepRefused(m));
          default:
            return settle(
              new ClientError('ERR_CHANNEL_FAILED', `Cannot continue: the Keep sent an unexpected ${m.type}`),
            );
        }
      },
      { maxFrameBytes: 16 << 20, onError: (cause) => ended(cause), onEnd: () => ended() },
    );
    tls.on('close', () => ended());
  });
}

/**
 * Runs a workload in a fresh Keep: create it, open its channel with a fresh nonce, verify its evidence, and only
 * then send the workload and stream stdin in and stdout/stderr out, all inside the attested TLS channel.
 */
export async function runWorkload(options: RunOptions): Promise<RunResult> {
  // A module the Keep would refuse is refused here, before a Keep is made and attested for nothing.
  checkWorkloadModule(options.wasm);
  // Answered as soon as the Keep's start has begun: the channel below waits in its Keep Loader until it is ready.
  const keep = await (options.keep ??
    options.host.createKeep(options.backend, options.limits, options.publish, { wait: 'started' }));
  options.onEvent?.({ type: 'keep-created', keep });
  let stopped = false;
  const stopKeep = (): void => {
    if (stopped) return;
    stopped = true;
    options.host.stopKeep(keep.id).catch(() => {});
  };
  options.signal?.addEventListener('abort', stopKeep, { once: true });
  try {
    const { tls, identity } = await connect(options.host, keep.id, options, options.channel).catch(
      async (error: unknown) => {
        // A Keep that was still starting may have failed to: that is said as its creation would have said it.
        const failure = keep.state === 'creating' ? await options.host.startFailure(keep.id) : undefined;
        // A Keep this client will not use is stopped rather than left for the host to run.
        stopKeep();
        throw failure ?? error;
      },
    );
    const secret = new Uint8Array(randomBytes(32));
    options.onSecret?.(keep.id, secret);
    const digest = sendDeploy(tls, options, secret, { stdin: options.stdin !== null, detach: false });
    options.onEvent?.({ type: 'workload-sent', bytes: options.wasm.length, digest });
    let started = false;
    const outcome = await stream(tls, options.host, keep.id, {
      ...options,
      onEvent: (e) => {
        if (e.type === 'workload-started') started = true;
        options.onEvent?.(e);
      },
    }).catch((error: unknown) => {
      // A Keep that never started the workload has nothing to attach to later.
      if (!started) stopKeep();
      throw error;
    });
    return { keepId: keep.id, identity, outcome };
  } finally {
    options.signal?.removeEventListener('abort', stopKeep);
  }
}

/** A Keep's refusal, under the category of its own code when the client knows it better (secrets). */
function keepRefused(m: MessageOf<'error'>): ClientError {
  const category = secretRefusalCategory(m.code);
  return new ClientError('ERR_KEEP_REFUSED', `The Keep refused: ${m.message}`, {
    hostCode: m.code,
    ...(category === undefined ? {} : { category }),
  });
}

/** The progress event for the Keep's `started` message. */
function startedEvent(m: MessageOf<'started'>): RunEvent {
  const e: RunEvent = { type: 'workload-started' };
  if (m.ports !== undefined) e.ports = m.ports;
  if (m.tier !== undefined) e.tier = m.tier;
  return e;
}

/** Sends the deploy message; returns the module's SHA-256 (hex). */
function sendDeploy(
  tls: TLSSocket,
  options: WorkloadOptions,
  secret: Uint8Array,
  flags: { stdin: boolean; detach: boolean },
): string {
  const digest = createHash('sha256').update(options.wasm).digest();
  const deploy: Message = {
    v: 1,
    type: 'deploy',
    wasm: options.wasm,
    digest: new Uint8Array(digest),
    args: [...options.args],
    env: { ...options.env },
    stdin: flags.stdin,
    owner: new Uint8Array(createHash('sha256').update(secret).digest()),
  };
  if (options.limits) deploy.limits = options.limits;
  if (options.files) deploy.files = options.files.map((f) => ({ ...f }));
  if (options.dirs && options.dirs.length > 0) deploy.dirs = [...options.dirs];
  if (options.secrets && options.secrets.length > 0) deploy.secrets = options.secrets.map((s) => ({ ...s }));
  if (flags.detach) deploy.detach = true;
  if (options.tier !== undefined && options.tier !== 'default') deploy.tier = options.tier;
  writeFrame(tls, deploy);
  return digest.toString('hex');
}

/**
 * The SHA-256 (hex) of a workload's configuration as the Keep computes it and a service's evidence binds it:
 * over its args (program name first), env, descriptor table (defaults filled in), pre-opened directories and
 * secrets (a broker policy's `configs` names it). Throws ProtocolError for a descriptor table the Keep would
 * refuse.
 */
export function workloadConfigDigest(
  options: Pick<WorkloadOptions, 'args' | 'env' | 'files' | 'dirs' | 'secrets'>,
): string {
  const files = normalizeFiles(options.files ?? DEFAULT_FILE_SPECS);
  const dirs = options.dirs && options.dirs.length > 0 ? { dirs: options.dirs } : {};
  const secrets = options.secrets && options.secrets.length > 0 ? { secrets: options.secrets } : {};
  return Buffer.from(
    configDigest({ args: options.args, env: options.env, files, ...dirs, ...secrets }),
  ).toString('hex');
}

/** What {@link deployWorkload} deploys, where, and under which policy. */
export interface DeployOptions extends WorkloadOptions {
  policy: Policy;
  roots?: TrustRoots;
  insecure?: boolean;
  onEvent?: (event: RunEvent) => void;
  /** As for runWorkload; a deployed workload is typically attached to again later. */
  onSecret?: (keepId: string, secret: Uint8Array) => void;
  /**
   * Keep the channel: the workload's output streams to `follow` until it ends or `signal` aborts (which
   * detaches, leaving the workload running). Without it, the call returns once the workload runs.
   */
  follow?: { stdout: Writable; stderr: Writable; signal?: AbortSignal };
}

/** A running service, as its deployer learns it. */
export interface DeployResult {
  keepId: string;
  identity: KeepIdentity;
  /** The secret that attaches to the workload again (also handed to onSecret). */
  secret: Uint8Array;
  /** Host ports of the workload's listen files, as the host reported them (untrusted: public routing data). */
  ports: PortMapping[];
  /** SHA-256 of the module (hex), as a service's certificate names it. */
  workloadDigest: string;
  /** SHA-256 of the configuration (hex), as a service's certificate names it. */
  configDigest: string;
  /** With `follow`: how the workload ended, or undefined when the caller detached first. */
  outcome?: RunOutcome;
}

/**
 * Deploys a long-running workload (a service) into a fresh Keep: like {@link runWorkload} up to the Keep's
 * `started`, which names the host ports of its listen files; then either returns, leaving the workload
 * running with its output kept for a later attach, or (`follow`) streams its output until it ends or the
 * caller detaches.
 */
export async function deployWorkload(options: DeployOptions): Promise<DeployResult> {
  const workloadConfig = workloadConfigDigest(options);
  checkWorkloadModule(options.wasm);
  const keep = await options.host.createKeep(options.backend, options.limits, options.publish);
  options.onEvent?.({ type: 'keep-created', keep });
  const stopKeep = (): void => {
    options.host.stopKeep(keep.id).catch(() => {});
  };
  const streamOptions: StreamOptions = {
    stdin: null,
    stdout: options.follow?.stdout ?? process.stdout,
    stderr: options.follow?.stderr ?? process.stderr,
    policy: options.policy,
    ...(options.roots ? { roots: options.roots } : {}),
    ...(options.insecure ? { insecure: true } : {}),
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
  };
  const { tls, identity } = await connect(options.host, keep.id, streamOptions).catch((error: unknown) => {
    stopKeep();
    throw error;
  });
  const secret = new Uint8Array(randomBytes(32));
  options.onSecret?.(keep.id, secret);
  const workloadDigest = sendDeploy(tls, options, secret, { stdin: false, detach: !options.follow });
  options.onEvent?.({ type: 'workload-sent', bytes: options.wasm.length, digest: workloadDigest });
  const result = { keepId: keep.id, identity, secret, workloadDigest, configDigest: workloadConfig };
  if (options.follow) {
    let ports: PortMapping[] = [];
    const controller = new AbortController();
    const detached = new Promise<undefined>((resolve) => {
      options.follow?.signal?.addEventListener('abort', () => resolve(undefined), { once: true });
    });
    const streaming = stream(tls, options.host, keep.id, {
      ...streamOptions,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'workload-started') ports = e.ports ?? [];
        options.onEvent?.(e);
      },
    });
    // After a detach the stream still settles (the channel closes); nobody waits for it then.
    streaming.catch(() => {});
    const outcome = await Promise.race([streaming, detached]).catch((error: unknown) => {
      if (ports.length === 0 && !(error instanceof ClientError && error.code === 'ERR_CHANNEL_LOST')) {
        stopKeep();
      }
      throw error;
    });
    if (outcome === undefined) tls.end();
    return outcome === undefined ? { ...result, ports } : { ...result, ports, outcome };
  }
  const ports = await new Promise<PortMapping[]>((resolve, reject) => {
    let done = false;
    const settle = (error: Error | null, value?: PortMapping[]): void => {
      if (done) return;
      done = true;
      tls.end();
      // A Keep whose workload never started is of no use to anyone: stop it rather than leave it.
      if (error) {
        stopKeep();
        reject(error);
      } else resolve(value!);
    };
    readFrames(
      tls,
      (m) => {
        if (m.type === 'started') {
          options.onEvent?.(startedEvent(m));
          settle(null, m.ports ?? []);
        } else if (m.type === 'error') {
          settle(keepRefused(m));
        }
      },
      {
        maxFrameBytes: 16 << 20,
        onError: (cause) =>
          settle(new ClientError('ERR_CHANNEL_FAILED', 'Cannot deploy: the channel broke', { cause })),
        onEnd: () =>
          settle(new ClientError('ERR_CHANNEL_FAILED', 'Cannot deploy: the Keep closed the channel')),
      },
    );
  });
  return { ...result, ports };
}

export interface AttachOptions extends StreamOptions {
  host: KeepHost;
  keepId: string;
  /** The secret the deploying client kept. */
  secret: Uint8Array;
}

/** How an attach ended: the workload's outcome, or none when the caller detached (`signal`). */
export interface AttachResult {
  keepId: string;
  identity: KeepIdentity;
  /** Undefined when `signal` aborted first: the channel is closed and the workload runs on. */
  outcome?: RunOutcome;
}

/**
 * Re-attaches to a running workload through a fresh attested channel (fresh nonce, fresh evidence): receives
 * the output kept while nobody was attached, then streams as `runWorkload` does. Aborting `signal` detaches:
 * the channel closes and the workload runs on (stopping it is the caller's explicit `stopKeep`).
 */
export async function attachWorkload(options: AttachOptions): Promise<AttachResult> {
  const { signal, ...streamOptions } = options;
  const { tls, identity } = await connect(options.host, options.keepId, streamOptions);
  writeFrame(tls, { v: 1, type: 'attach', secret: options.secret });
  options.onEvent?.({ type: 'attached' });
  const streaming = stream(tls, options.host, options.keepId, streamOptions);
  if (!signal) return { keepId: options.keepId, identity, outcome: await streaming };
  let onAbort = (): void => {};
  const detached = new Promise<undefined>((resolve) => {
    onAbort = () => resolve(undefined);
    if (signal.aborted) resolve(undefined);
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  // After a detach the stream still settles (the channel closes); nobody waits for it then.
  streaming.catch(() => {});
  try {
    const outcome = await Promise.race([streaming, detached]);
    if (outcome === undefined) {
      tls.end();
      return { keepId: options.keepId, identity };
    }
    return { keepId: options.keepId, identity, outcome };
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
