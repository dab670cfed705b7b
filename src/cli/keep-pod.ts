// `donjon keep-pod`: the container entrypoint of one service replica on Kubernetes. This file reads the
// command line, the downward API and the public files the Pod mounts; src/host/keep-pod runs the replica.
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSimRoot } from '../attestation/sim/index.ts';
import { checkSupportedFiles, parseEnarxToml, type WorkloadConfig } from '../client/index.ts';
import { KeepPod, KeepPodError, type PodBackend } from '../host/index.ts';
import { reasonOf } from '../lib/errors.ts';
import { builtFile } from '../paths.ts';
import { parseReference, RegistryError, readPublicKey } from '../registry/index.ts';
import { type Invocation, parseCommand } from './args.ts';
import { EXIT, UsageError } from './errors.ts';
import { credentialsFor, registryOptions } from './registry-options.ts';

/** `donjon help keep-pod`. */
export const keepPodHelp = `Usage: donjon keep-pod REF@sha256:DIGEST --config Enarx.toml --backend sim|cvm [options]

The container entrypoint of one service replica on Kubernetes (see docs/kubernetes.md): pulls the workload by
digest, checks its signature, starts a Keep Loader and its Keep, deploys the workload with the artifact
attached (the Keep checks digests and signatures again), and serves its listen files on exactly the ports of
its Enarx.toml. Its inputs are public; it writes nothing secret to its logs or its state folder. It logs one
JSON object per line on stderr (startup, pulled, ready, draining, stopped; errors as {"event":"error",...}).

Probes on --health-listen: GET /healthz is 200 while it starts or its Keep Loader and Keep run; GET /readyz is
200 once the workload started (after the broker released the secrets the config names, so its certificate
exists) until SIGTERM. On SIGTERM or SIGINT: /readyz answers 503 at once, the listen files stop accepting,
open connections may finish, then the Keep is stopped and it exits 0, all within the grace period.

Options:
  --config PATH             the service's Enarx.toml (required)
  --verify-key PATH         accept the workload's cosign signature by this PEM public key (repeatable);
                            required unless --allow-unsigned
  --allow-unsigned          run the referenced workload without a valid signature
  --backend NAME            sim (development only: a simulated root shared by the replicas) or cvm (the
                            node is an SEV-SNP or TDX confidential VM)
  --sim-root PATH           sim: the simulated root (a host's sim-root.cbor); required for sim
  --health-listen HOST:PORT where /healthz and /readyz are served (default 0.0.0.0:8080)
  --listen-address ADDR     where the listen files' ports are bound (default 0.0.0.0)
  --state-dir PATH          writable folder for the Keep Loader's socket (default: a fresh one under the
                            temp folder)
  --grace-period SECONDS    how long a drain may take after SIGTERM, the Keep's stop included (default 20)
  --plain-http              speak plain HTTP to a registry that is not on loopback
  --registry-auth USER:PASS registry credentials (default: ~/.docker/config.json)
  -h, --help                show this help

Environment: POD_NAME, POD_NAMESPACE, POD_IP, NODE_NAME (Kubernetes' downward API), logged at startup.

Exit status: 0 after a drain, 2 for a usage error (an unpinned reference, an unreadable input, sim without
--sim-root), 3 when the workload's signature is refused, 4 when the registry, the Keep Loader or the Keep
fails or ends.`;

/** Socket paths are limited to about 108 bytes; the Keep Loader's is `<state>/keepldr.sock`. */
const MAX_STATE_DIR_CHARS = 90;

function parseAddress(text: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw new UsageError(`Cannot read ${flag} ${text}: expected HOST:PORT`);
  return { host: (m[1] ?? m[2])!, port };
}

function readInput(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code ?? reasonOf(error);
    throw new KeepPodError('ERR_POD_INPUT_INVALID', `Cannot read ${what} ${path}: ${why}`, { cause: error });
  }
}

function readConfig(path: string): WorkloadConfig {
  const text = readInput(path, 'the Enarx.toml').toString('utf8');
  try {
    const config = parseEnarxToml(text);
    checkSupportedFiles(config.files);
    return config;
  } catch (error) {
    throw new KeepPodError('ERR_POD_INPUT_INVALID', `Cannot use the Enarx.toml ${path}: ${reasonOf(error)}`, {
      cause: error,
    });
  }
}

function readKey(path: string): string {
  const pem = readInput(path, 'the verifying key').toString('utf8');
  readPublicKey(pem, path);
  return pem;
}

function readSimRoot(path: string): void {
  const bytes = readInput(path, 'the simulated root');
  try {
    parseSimRoot(new Uint8Array(bytes));
  } catch (error) {
    throw new KeepPodError(
      'ERR_POD_INPUT_INVALID',
      `Cannot use the simulated root ${path}: ${reasonOf(error)}`,
      { cause: error },
    );
  }
}

function stateDirOf(value: string | undefined): string {
  let dir: string;
  try {
    if (value === undefined) dir = mkdtempSync(join(tmpdir(), 'donjon-pod-'));
    else {
      mkdirSync(value, { recursive: true, mode: 0o700 });
      dir = value;
    }
  } catch (error) {
    throw new KeepPodError('ERR_POD_SETUP_FAILED', `Cannot use the state folder: ${reasonOf(error)}`, {
      cause: error,
    });
  }
  if (dir.length > MAX_STATE_DIR_CHARS)
    throw new UsageError(
      `Cannot use --state-dir ${dir}: a unix socket path there would be too long (at most ${MAX_STATE_DIR_CHARS} characters)`,
    );
  return dir;
}

function gracePeriodOf(text: string | undefined): number {
  if (text === undefined) return 20_000;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1)
    throw new UsageError(
      `Cannot read --grace-period ${text}: expected a whole number of seconds, at least 1`,
    );
  return n * 1000;
}

/** `donjon keep-pod`: returns the exit status (0 after a drain). */
export async function keepPodCommand(argv: string[], invocation?: Invocation): Promise<number> {
  // A container's log is read by machines: errors too are JSON lines.
  if (invocation) invocation.json = true;
  const { values, positionals } = parseCommand(argv, {
    command: 'keep-pod',
    options: {
      ...registryOptions,
      config: { type: 'string' },
      'verify-key': { type: 'string', multiple: true, default: [] as string[] },
      'allow-unsigned': { type: 'boolean', default: false },
      backend: { type: 'string' },
      'sim-root': { type: 'string' },
      'health-listen': { type: 'string', default: '0.0.0.0:8080' },
      'listen-address': { type: 'string', default: '0.0.0.0' },
      'state-dir': { type: 'string' },
      'grace-period': { type: 'string' },
    },
    positionals: true,
  });
  if (positionals.length !== 1)
    throw new UsageError('Cannot run keep-pod: expected one workload reference, REF@sha256:DIGEST');
  const reference = positionals[0]!;
  const ref = parseReference(reference);
  if (ref.digest === undefined)
    throw new KeepPodError(
      'ERR_POD_REFERENCE_UNPINNED',
      `Cannot run ${reference}: it is not pinned to a digest (give REF@sha256:DIGEST, as donjon push prints it)`,
    );
  const backend = values.backend;
  if (backend !== 'sim' && backend !== 'cvm')
    throw new UsageError(`Cannot use --backend ${backend ?? '(none)'}: use sim or cvm`);
  const simRoot = values['sim-root'];
  if (backend === 'sim' && simRoot === undefined)
    throw new UsageError('Cannot run a sim replica without --sim-root: give the shared simulated root file');
  if (backend !== 'sim' && simRoot !== undefined)
    throw new UsageError(`Cannot use --sim-root with --backend ${backend}: it is for sim only`);
  if (values.config === undefined)
    throw new UsageError("Cannot run keep-pod without --config: give the service's Enarx.toml");
  if (values['verify-key'].length === 0 && !values['allow-unsigned'])
    throw new RegistryError(
      'ERR_WORKLOAD_UNSIGNED',
      `Cannot trust ${reference}: no --verify-key to check its signature with; give one, or --allow-unsigned`,
    );
  const health = parseAddress(values['health-listen'], '--health-listen');
  const gracePeriodMs = gracePeriodOf(values['grace-period']);
  const config = readConfig(values.config);
  const keys = values['verify-key'].map(readKey);
  if (simRoot !== undefined) readSimRoot(simRoot);
  const stateDir = stateDirOf(values['state-dir']);
  const credentials = credentialsFor(values, ref.registry);

  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const env = process.env;
  const pod = new KeepPod({
    reference,
    keys,
    backend: backend satisfies PodBackend,
    workload: {
      args: config.args,
      env: config.env,
      files: config.files,
      ...(config.secrets ? { secrets: config.secrets } : {}),
    },
    simRootPath: simRoot,
    stateDir,
    listenAddress: values['listen-address'],
    health,
    gracePeriodMs,
    plainHttp: values['plain-http'],
    credentials,
    pod: { name: env.POD_NAME, namespace: env.POD_NAMESPACE, ip: env.POD_IP, node: env.NODE_NAME },
    runtimePath: builtFile('keep.cjs'),
    keepldrPath: builtFile('keepldr.cjs'),
    log: (entry) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`),
    signal: controller.signal,
  });
  try {
    await pod.run();
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
  return EXIT.ok;
}
