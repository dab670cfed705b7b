import { readFileSync } from 'node:fs';
import { type DeployResult, deployWorkload, type KeepHost, type RunEvent } from '../client/index.ts';
import { type Invocation, parseCommand } from './args.ts';
import { startEmbeddedHost } from './embedded.ts';
import { EXIT, UsageError } from './errors.ts';
import { pullArgument, pullHelp } from './registry-options.ts';
import { remoteClient, saveAttachSecret } from './remote.ts';
import { Reporter } from './report.ts';
import { exitCodeOf, workloadFrom, workloadOptions, workloadPolicy } from './workload.ts';

/** `donjon help deploy`. */
export const deployHelp = `Usage: donjon deploy [options] WORKLOAD.wasm|REF [-- ARG...]
       donjon deploy [options] PKGDIR|file:///PATH [-- ARG...]   (main.wasm beside Enarx.toml, as Enarx)

Deploys a long-running workload (a service) into a fresh attested Keep on a Keep Manager and returns once it
runs, printing the Keep's id and the host port of each listen file of its Enarx.toml. The Keep Loader
forwards each port to the Keep; on tls files, TLS ends inside the Keep, with a certificate whose evidence
names the workload (see donjon proxy and donjon attest inspect). The workload's output is kept in the Keep
for 'donjon keeps attach ID'; 'donjon keeps stop ID' ends it.

Options:
  --config FILE             Enarx.toml with args, env and files (listen and connect sockets; alias
                            --wasmcfgfile, as Enarx)
  --host URL                the Keep Manager (env DONJON_HOST); needed unless --follow
  --token TOKEN             bearer token for --host (env DONJON_TOKEN)
  --host-fingerprint SHA256 the host's TLS certificate fingerprint (else trusted on first use)
  --backend NAME            sim (default), sgx-sim (simulated SGX) or nil (no attestation: needs
                            --insecure)
  --insecure                accept a Keep without attestation evidence (nil backend)
  --trust-sim-root SHA256   accept evidence signed by this simulated root (repeatable)
  --expect-measurement HEX  accept this runtime measurement instead of this version's (repeatable)
  --env NAME=VALUE          set an environment variable of the workload (repeatable)
  --dir HOST[:GUEST]        copy directory HOST into the Keep, pre-opened at GUEST (repeatable)
  --memory SIZE             linear memory limit, e.g. 64MiB
  --timeout DURATION        wall-time limit, e.g. 12h
  --max-output SIZE         stdout+stderr volume limit
  --publish NAME=HOSTPORT   the host port of listen file NAME (0: any; repeatable); by default each listen
                            file gets its own port when that is free on the host, else any
  --wasm-tier TIER          default (Liftoff first: fast start) or optimizing (TurboFan only: compute-heavy
                            services whose hot loops never return)
  --follow                  stay attached and stream the workload's output until it ends; Ctrl-C detaches
                            and leaves it running (without --host: an embedded host, ended by Ctrl-C)
${pullHelp}
  --restart POLICY          REF only: store the deployment on the host (--host), which recreates its Keep
                            without you, pulling by digest: on-failure (when the Keep fails) or always
                            (also when it ends, and after the host restarts); args, env and files come from
                            the Enarx.toml, and --env and --dir are refused (the host stores nothing secret)
  --max-restarts N          with --restart: recreate the Keep at most N times
  --json                    print {"id", "ports": [{"name", "hostPort"}], "workloadDigest", "configDigest"}
                            (with --restart: {"deployment", "id", "reference"})
  -q, --quiet               print nothing on stderr but errors
  -h, --help                show this help

Exit status: 0 once the workload runs (with --follow: its own status, or 0 after a detach), 2 for a usage
error, 3 when the Keep's evidence is refused, 4 when the host or the Keep fails.`;

function print(result: DeployResult, json: boolean): void {
  if (json) {
    const out = {
      id: result.keepId,
      ports: result.ports.map((p) => ({ name: p.name, hostPort: p.port })),
      workloadDigest: result.workloadDigest,
      configDigest: result.configDigest,
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return;
  }
  const lines = [
    `Keep ${result.keepId} runs workload sha256:${result.workloadDigest}`,
    `  config sha256:${result.configDigest}`,
    ...result.ports.map((p) => `  ${p.name}: host port ${p.port}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** `donjon deploy`: returns the exit status. */
export async function deployCommand(argv: string[], invocation?: Invocation): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    command: 'deploy',
    options: {
      ...workloadOptions,
      follow: { type: 'boolean', default: false },
      restart: { type: 'string' },
      'max-restarts': { type: 'string' },
    },
    positionals: true,
    invocation,
  });
  const pulled = await pullArgument(
    { ...values, quiet: values.quiet || values.json, json: false },
    positionals,
  );
  const { backend, wasm, config, args, env, dirs, limits, measurements, trustedSimRoots, tier, publish } =
    workloadFrom('deploy', values, positionals, pulled);

  // Progress goes to stderr; stdout carries only the result, for scripts.
  const reporter = new Reporter({ quiet: values.quiet || values.json, json: false });
  const remote = remoteClient(values, (m) => reporter.note(m));
  if (values.restart !== undefined || values['max-restarts'] !== undefined) {
    const restart = values.restart;
    if (restart !== 'on-failure' && restart !== 'always')
      throw new UsageError(`Cannot use --restart ${restart ?? '(none)'}: use on-failure or always`);
    if (!pulled?.reference)
      throw new UsageError('Cannot deploy with --restart: WORKLOAD must be a registry reference');
    if (!remote || values.follow)
      throw new UsageError('Cannot deploy with --restart: give --host URL, and not --follow');
    if (values.env.length > 0 || values.dir.length > 0)
      throw new UsageError(
        'Cannot deploy with --restart and --env or --dir: the host stores nothing that may be secret; put env in the Enarx.toml',
      );
    let maxRestarts: number | undefined;
    if (values['max-restarts'] !== undefined) {
      maxRestarts = Number(values['max-restarts']);
      if (!Number.isSafeInteger(maxRestarts) || maxRestarts < 0)
        throw new UsageError(`Cannot read --max-restarts ${values['max-restarts']}: expected a whole number`);
    }
    const d = await remote.createDeployment({
      reference: pulled.reference,
      backend,
      restart,
      ...(maxRestarts === undefined ? {} : { maxRestarts }),
      ...(Object.keys(limits).length > 0 ? { limits } : {}),
      args,
      env,
      ...(config ? { files: config.files } : {}),
      ...(config?.secrets ? { secrets: config.secrets } : {}),
      keys: values['verify-key'].map((path) => readFileSync(path, 'utf8')),
      ...(values['plain-http'] ? { plainHttp: true } : {}),
      tier: tier === 'optimizing' ? 'optimizing' : 'default',
    });
    process.stdout.write(
      values.json
        ? `${JSON.stringify({ deployment: d.id, id: d.keepId, reference: d.reference })}\n`
        : `Deployment ${d.id} runs Keep ${d.keepId} from ${d.reference} (restart ${d.restart})\n`,
    );
    return EXIT.ok;
  }
  if (!remote && !values.follow) {
    throw new UsageError(
      'Cannot deploy without a Keep Manager that outlives this command: give --host URL (or DONJON_HOST), or --follow',
    );
  }
  const embedded = remote ? undefined : await startEmbeddedHost(reporter, backend);
  const root = await embedded?.rootFingerprint();
  if (root !== undefined) trustedSimRoots.push(root);

  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const host: KeepHost = remote ?? embedded!.client;
    const policy = workloadPolicy({ backend, measurements, trustedSimRoots });
    let shown = false;
    const result = await deployWorkload({
      host,
      backend,
      wasm,
      args,
      env,
      policy,
      insecure: values.insecure,
      ...(Object.keys(limits).length > 0 ? { limits } : {}),
      ...(publish.length > 0 ? { publish } : {}),
      ...(config ? { files: config.files } : {}),
      ...(config?.secrets ? { secrets: config.secrets } : {}),
      ...(dirs.length > 0 ? { dirs } : {}),
      // workloadFrom('deploy', ...) never answers auto.
      tier: tier === 'optimizing' ? 'optimizing' : 'default',
      onSecret: remote ? saveAttachSecret : () => {},
      onEvent: (e: RunEvent) => {
        reporter.event(e);
        if (e.type === 'workload-started' && values.follow && !shown) {
          shown = true;
          for (const p of e.ports ?? []) reporter.note(`listen file ${p.name} is on host port ${p.port}`);
        }
      },
      ...(values.follow
        ? {
            follow: {
              stdout: process.stdout,
              // With --json, every line of stderr is a JSON object: the workload's own stderr too.
              stderr: values.json
                ? new Reporter({ quiet: true, json: true }).workloadStderr()
                : process.stderr,
              signal: controller.signal,
            },
          }
        : {}),
    });
    if (!values.follow) {
      print(result, values.json);
      return EXIT.ok;
    }
    if (result.outcome === undefined) {
      reporter.note(
        remote
          ? `detached; the workload runs on: donjon keeps attach ${result.keepId}`
          : 'detached; the embedded host stops the Keep now',
      );
      return EXIT.ok;
    }
    reporter.outcome(result.outcome);
    return exitCodeOf(result.outcome);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await embedded?.close();
  }
}
