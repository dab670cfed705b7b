import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  KeepManager,
  loadOrCreateHostIdentity,
  loadOrCreateSimRoot,
  loadOrCreateSimSgxRoot,
  lockStateDir,
  offeredBackends,
  platformInfo,
  SqliteStore,
} from '../host/index.ts';
import { builtFile } from '../paths.ts';
import { type Invocation, parseCommand } from './args.ts';
import { UsageError } from './errors.ts';
import { dataDir } from './paths.ts';
import { parseDuration, parseSize } from './units.ts';

export const hostHelp = `Usage: donjon host [options]            run the Keep Manager
       donjon host info [--state DIR] [--json]
       donjon host token create [--state DIR] [--name NAME] [--json]

Runs a Keep Manager: the host's API for tenants, over HTTPS with a certificate it makes on first start. Its
Keeps outlive it: a restarted Keep Manager on the same state directory finds them again.

Options:
  --listen ADDR:PORT      where to listen (default 127.0.0.1:8787)
  --state DIR             state directory: records, TLS identity, simulated root (default: the data directory)
  --pool N                pre-started sim Keeps kept ready (default 0)
  --max-keeps N           Keeps running at once, all tenants (default 64)
  --max-keeps-per-tenant N  Keeps running at once per tenant (default 16)
  --creates-per-minute N  Keep creations per tenant per minute (default 120)
  --memory SIZE           memory ceiling per workload (default 512MiB)
  --timeout DURATION      wall-time ceiling per workload (default none)
  --max-wasm SIZE         largest workload module (default 64MiB)
  --blob-cache SIZE       bound of the cache of registry blobs that deployments are recreated from
                          (default 1GiB)
  --launcher KIND         child (default: Keep Loaders in their own session) or systemd (transient units
                          donjon-keep-ID through systemd-run)

Subcommands:
  info          print the daemon's TLS fingerprint and simulated root fingerprint
  token create  make a bearer token for a tenant and print it (only its hash is kept)`;

function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw new UsageError(`Cannot read --listen ${text}: expected ADDR:PORT`);
  return { host: (m[1] ?? m[2])!, port };
}

function positiveInt(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new UsageError(`Cannot read ${flag} ${text}: expected a whole number`);
  return n;
}

function stateDir(value: string | undefined): string {
  const dir = value ?? dataDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

async function info(argv: string[], invocation?: Invocation): Promise<number> {
  const { values } = parseCommand(argv, {
    command: 'host info',
    options: { state: { type: 'string' }, json: { type: 'boolean', default: false } },
    invocation,
  });
  const dir = stateDir(values.state);
  const identity = loadOrCreateHostIdentity(dir);
  const simRoot = await loadOrCreateSimRoot(dir);
  const simSgxRoot = await loadOrCreateSimSgxRoot(dir);
  const out = {
    fingerprint: identity.fingerprint,
    simRootFingerprint: simRoot.fingerprint,
    simSgxRootFingerprint: simSgxRoot.fingerprint,
    state: dir,
  };
  process.stdout.write(
    values.json
      ? `${JSON.stringify(out)}\n`
      : `TLS certificate SHA-256:  ${out.fingerprint}\nsimulated root SHA-256:   ${out.simRootFingerprint}\n` +
          `simulated SGX root SHA-256: ${out.simSgxRootFingerprint}\n`,
  );
  return 0;
}

function token(argv: string[], invocation?: Invocation): number {
  const [verb, ...rest] = argv;
  if (verb !== 'create')
    throw new UsageError("Cannot run 'donjon host token': use 'donjon host token create'");
  const { values } = parseCommand(rest, {
    command: 'host token',
    options: {
      state: { type: 'string' },
      name: { type: 'string', default: 'tenant' },
      json: { type: 'boolean', default: false },
    },
    invocation,
  });
  const store = new SqliteStore(join(stateDir(values.state), 'keepmgr.db'));
  try {
    const t = store.createToken(values.name);
    if (values.json)
      process.stdout.write(`${JSON.stringify({ id: t.id, tenant: values.name, token: t.token })}\n`);
    else {
      process.stdout.write(`${t.token}\n`);
      process.stderr.write(`donjon host: token ${t.id} created for ${values.name}\n`);
    }
  } finally {
    store.close();
  }
  return 0;
}

async function serve(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    command: 'host',
    options: {
      listen: { type: 'string', default: '127.0.0.1:8787' },
      state: { type: 'string' },
      pool: { type: 'string' },
      'max-keeps': { type: 'string' },
      'max-keeps-per-tenant': { type: 'string' },
      'creates-per-minute': { type: 'string' },
      memory: { type: 'string', default: '512MiB' },
      timeout: { type: 'string' },
      'max-wasm': { type: 'string', default: '64MiB' },
      'blob-cache': { type: 'string', default: '1GiB' },
      launcher: { type: 'string', default: 'child' },
    },
  });
  if (values.launcher !== 'child' && values.launcher !== 'systemd') {
    throw new UsageError(`Cannot use --launcher ${values.launcher}: use child or systemd`);
  }
  const { host, port } = parseListen(values.listen);
  const dir = stateDir(values.state);
  const runDir = join(dir, 'run');
  if (join(runDir, 'ffffffffffffffff.sock').length > 100) {
    throw new UsageError(
      `Cannot use --state ${dir}: its path is too long for the Keep Loaders' unix sockets`,
    );
  }
  const log = (entry: Record<string, unknown>): void => {
    process.stderr.write(`${JSON.stringify(entry)}\n`);
  };
  // One daemon per state directory: a second one would supervise the same Keeps from the same records.
  // KeepManagerErrors (state directory locked, address in use) are `host`: the command ends with status 4.
  const lock = lockStateDir(dir);
  process.once('exit', () => lock.release());
  const identity = loadOrCreateHostIdentity(dir);
  const simRoot = await loadOrCreateSimRoot(dir, () => log({ event: 'creating-simulated-root' }));
  const simSgxRoot = await loadOrCreateSimSgxRoot(dir, () => log({ event: 'creating-simulated-sgx-root' }));
  const limits: { memoryBytes?: number; wallTimeMs?: number } = {
    memoryBytes: parseSize(values.memory, '--memory'),
  };
  const platform = await platformInfo();
  const backends = offeredBackends(platform);
  if (values.timeout) limits.wallTimeMs = parseDuration(values.timeout, '--timeout');
  const manager = new KeepManager({
    runtimePath: builtFile('keep.cjs'),
    keepldrPath: builtFile('keepldr.cjs'),
    simRootPath: simRoot.path,
    simSgxRootPath: simSgxRoot.path,
    runDir,
    backends,
    collateralCacheDir: join(dir, 'collateral'),
    store: new SqliteStore(join(dir, 'keepmgr.db'), {
      onDamaged: (error) => log({ event: 'store-row-damaged', error: error.message }),
    }),
    requireTokens: true,
    detachKeeps: true,
    launcher: values.launcher,
    tls: identity,
    limits,
    maxWasmBytes: parseSize(values['max-wasm'], '--max-wasm'),
    blobCache: { dir: join(dir, 'blobs'), maxBytes: parseSize(values['blob-cache'], '--blob-cache') },
    quotas: {
      maxKeeps: positiveInt(values['max-keeps'], '--max-keeps', 64),
      maxKeepsPerTenant: positiveInt(values['max-keeps-per-tenant'], '--max-keeps-per-tenant', 16),
      createsPerMinute: positiveInt(values['creates-per-minute'], '--creates-per-minute', 120),
    },
    pool: { sim: positiveInt(values.pool, '--pool', 0) },
    log,
  });
  // Listen first, adopt after: a daemon that cannot serve must not hold the Keeps it would adopt.
  const url = await manager.listen(host, port).catch(async (error: unknown) => {
    await manager.close();
    throw error;
  });
  await manager.adopt();
  log({
    event: 'listening',
    url,
    fingerprint: identity.fingerprint,
    simRootFingerprint: simRoot.fingerprint,
    simSgxRootFingerprint: simSgxRoot.fingerprint,
    backends,
  });
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  // Keeps run on: a restart adopts them.
  log({ event: 'stopping' });
  await manager.close();
  return 0;
}

export async function hostCommand(argv: string[], invocation?: Invocation): Promise<number> {
  const [first, ...rest] = argv;
  if (first === 'info') return info(rest, invocation);
  if (first === 'token') return token(rest, invocation);
  return serve(argv);
}
