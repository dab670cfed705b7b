// `donjon run`. Without --host it starts its embedded host and asks it for the Keep before it loads the client
// and reads the workload: the Keep Loader and the Keep (two Node processes) start on other cores meanwhile.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { type HelloSent, sendChannelHello } from '../client/hello.ts';
import type { KeepHost, KeepInfo } from '../client/keepmgr-client.ts';
import type { RunEvent } from '../client/run.ts';
import type { Limits } from '../protocol/messages.ts';
import { type Invocation, parseCommand } from './args.ts';
import type { EmbeddedHost } from './embedded.ts';
import { CliError } from './errors.ts';
import { pullHelp, workloadOptions } from './flags.ts';
import { keepKnownFromFlags } from './keep-ahead.ts';
import { dataDir } from './paths.ts';
import { remoteClient, saveAttachSecret } from './remote.ts';
import { Reporter } from './report.ts';
import { limitsFrom } from './units.ts';

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

/**
 * A Keep asked of the embedded host before the workload was read, what it was asked for, and its channel, whose
 * hello goes out as soon as the channel is open: the Keep makes its evidence and certificate while this process
 * reads the workload and loads the client.
 */
interface EarlyKeep {
  backend: string;
  limits: Limits;
  keep: Promise<KeepInfo>;
  channel: Promise<HelloSent>;
}

/**
 * Asks the embedded host for the Keep the flags describe, when the flags alone say what it is (no --publish,
 * whose names the workload's Enarx.toml must have); undefined when they do not, or are wrong (the workload's
 * own checks then say what is wrong, and no Keep is asked for).
 */
function earlyKeep(
  host: KeepHost,
  values: { backend: string; insecure: boolean; publish: string[] } & Parameters<typeof limitsFrom>[0],
  positionals: readonly string[],
): EarlyKeep | undefined {
  if (!keepKnownFromFlags(values, positionals)) return undefined;
  const { backend } = values;
  let limits: Limits;
  try {
    limits = limitsFrom(values);
  } catch {
    return undefined;
  }
  const keep = host.createKeep(backend, Object.keys(limits).length > 0 ? limits : undefined, undefined, {
    wait: 'started',
  });
  const channel = keep.then((k) => host.openChannel(k.id)).then(sendChannelHello);
  // Whoever uses them hears how they failed; a Keep left unused fails nobody.
  keep.catch(() => {});
  channel.catch(() => {});
  return { backend, limits, keep, channel };
}

/** `donjon run`: returns the workload's status (see `exitCodeOf`); throws for anything else. */
export async function runCommand(argv: string[], invocation?: Invocation): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    command: 'run',
    options: workloadOptions,
    positionals: true,
    invocation,
  });
  const reporter = new Reporter({ quiet: values.quiet, json: values.json });
  const remote = remoteClient(values, (m) => reporter.note(m));
  let embedded: EmbeddedHost | undefined;
  try {
    let early: EarlyKeep | undefined;
    if (!remote) {
      embedded = await (await import('./embedded.ts')).startEmbeddedHost(reporter, values.backend);
      const launched = embedded.nextLaunch();
      early = earlyKeep(embedded.client, values, positionals);
      // The request is served in this process: let it spawn the Keep before the client's code loads.
      if (early) await Promise.race([launched, early.keep.catch(() => {})]);
    }
    // The client, the verifier and TOML load now, while the Keep starts.
    const [w, registry, client] = await Promise.all([
      import('./workload.ts'),
      import('./registry-options.ts'),
      import('../client/index.ts'),
    ]);
    const spec = w.workloadFrom('run', values, positionals, await registry.pullArgument(values, positionals));
    const root = await embedded?.rootFingerprint();
    if (root !== undefined) spec.trustedSimRoots.push(root);
    const fits =
      early !== undefined &&
      early.backend === spec.backend &&
      spec.publish.length === 0 &&
      JSON.stringify(early.limits) === JSON.stringify(spec.limits);
    // A channel to a Keep this run does not use goes now; the Keep goes when the embedded host does.
    if (early !== undefined && !fits)
      void early.channel.then(
        ({ stream }) => stream.destroy(),
        () => {},
      );
    return await runSpec(spec, {
      host: remote ?? embedded!.client,
      remote: remote !== undefined,
      ...(fits ? { keep: early!.keep, channel: early!.channel } : {}),
      reporter,
      insecure: values.insecure,
      w,
      client,
    });
  } finally {
    // The outcome is known and nothing else needs the embedded host: exit once the output is flushed rather
    // than wait for its Keep Loader and Keep to wind down (they end when this process does).
    if (embedded) {
      embedded.release();
      if (invocation) invocation.exitWhenDone = true;
      else await embedded.close();
    }
  }
}

/** Runs a workload read from the command line on `host`, in the Keep `keep` when one was asked for already. */
async function runSpec(
  spec: import('./workload.ts').WorkloadSpec,
  o: {
    host: KeepHost;
    remote: boolean;
    keep?: Promise<KeepInfo>;
    channel?: Promise<HelloSent>;
    reporter: Reporter;
    insecure: boolean;
    w: typeof import('./workload.ts');
    client: typeof import('../client/index.ts');
  },
): Promise<number> {
  const { backend, wasm, config, args, env, dirs, limits, tier, publish } = spec;
  const { reporter, w } = o;
  const stdinWanted = config ? config.files.some((f) => f.kind === 'stdin') : true;
  const controller = new AbortController();
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    controller.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const digest = createHash('sha256').update(wasm).digest('hex');
    const history = new o.client.TierHistory(join(dataDir(), 'tiers.json'));
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
    const policy = w.workloadPolicy(spec);
    const result = await o.client.runWorkload({
      host: o.host,
      ...(o.keep ? { keep: o.keep } : {}),
      ...(o.channel ? { channel: o.channel } : {}),
      backend,
      wasm,
      args,
      env,
      stdin: stdinWanted ? process.stdin : null,
      stdout: process.stdout,
      stderr: reporter.workloadStderr(),
      policy,
      insecure: o.insecure,
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
      ...(o.remote ? { onSecret: saveAttachSecret } : {}),
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
    return w.exitCodeOf(result.outcome);
  } catch (error) {
    if (interrupted)
      throw new CliError('ERR_INTERRUPTED', 'Interrupted: the Keep was stopped', { cause: error });
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (process.stdin.readable) process.stdin.destroy();
  }
}
