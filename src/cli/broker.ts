// `donjon broker`: the key broker daemon and its admin commands.
import { readFileSync } from 'node:fs';
import { BrokerAdminClient } from '../broker/admin-client.ts';
import { loadOrCreateBrokerIdentity } from '../broker/identity.ts';
import { BrokerServer } from '../broker/server.ts';
import { BrokerStore } from '../broker/store.ts';
import { measureRuntime } from '../client/runtime.ts';
import { packageVersion } from '../paths.ts';
import { type Invocation, parseCommand } from './args.ts';
import { EXIT, UsageError } from './errors.ts';

export const brokerHelp = `Usage: donjon broker serve --listen HOST:PORT --state DIR
       donjon broker info --state DIR [--json]
       donjon broker token create --state DIR
       donjon broker secret put NAME (--from-file F | --from-stdin) REMOTE
       donjon broker secret ls REMOTE [--json]
       donjon broker secret rm NAME REMOTE
       donjon broker policy set FILE REMOTE
       donjon broker policy show REMOTE [--json]
       donjon broker audit REMOTE [--json]

Runs a key broker: it releases secrets only to Keeps whose evidence verifies and whose workload a
default-deny policy names, as JWE to the Keep's own key, over Trustee's KBS attestation protocol
(see docs/broker.md). Secrets are sealed at rest under secrets.key in the state directory.

REMOTE is how the admin commands reach a broker:
  --broker URL             the broker (or DONJON_BROKER), e.g. https://127.0.0.1:8788
  --token T                an admin token from 'broker token create' (or DONJON_BROKER_TOKEN)
  --broker-fingerprint FP  the broker's certificate SHA-256 from 'broker info' (or DONJON_BROKER_FINGERPRINT);
                           required: no byte, token or secret is sent to an unpinned broker

Serve options:
  --listen HOST:PORT       where to listen (default 127.0.0.1:8788)
  --state DIR              state directory: database, sealing key, TLS identity (required)`;

function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw new UsageError(`Cannot read --listen ${text}: expected HOST:PORT`);
  return { host: (m[1] ?? m[2])!, port };
}

function requireState(state: string | undefined): string {
  if (state === undefined) throw new UsageError('Cannot run the broker: --state DIR is required');
  return state;
}

async function serve(argv: string[], invocation?: Invocation): Promise<number> {
  const { values } = parseCommand(argv, {
    command: 'broker serve',
    invocation,
    options: { listen: { type: 'string', default: '127.0.0.1:8788' }, state: { type: 'string' } },
  });
  const { host, port } = parseListen(values.listen);
  const dir = requireState(values.state);
  const log = (entry: Record<string, unknown>): void => {
    process.stderr.write(`${JSON.stringify({ at: new Date().toISOString(), ...entry })}\n`);
  };
  const identity = loadOrCreateBrokerIdentity(dir);
  const server = new BrokerServer({
    store: new BrokerStore(dir),
    identity,
    defaultMeasurements: [measureRuntime()],
    log,
    build: `donjon ${packageVersion()}`,
  });
  const url = await server.listen(host, port);
  log({ event: 'listening', url, fingerprint: identity.fingerprint });
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  log({ event: 'draining' });
  await server.close();
  log({ event: 'stopped' });
  return EXIT.ok;
}

function info(argv: string[], invocation?: Invocation): number {
  const { values } = parseCommand(argv, {
    command: 'broker info',
    invocation,
    options: { state: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const identity = loadOrCreateBrokerIdentity(requireState(values.state));
  process.stdout.write(
    values.json
      ? `${JSON.stringify({ fingerprint: identity.fingerprint })}\n`
      : `TLS certificate SHA-256:  ${identity.fingerprint}\n`,
  );
  return EXIT.ok;
}

function token(argv: string[]): number {
  const [verb, ...rest] = argv;
  if (verb !== 'create')
    throw new UsageError("Cannot run 'donjon broker token': use 'donjon broker token create'");
  const { values } = parseCommand(rest, { command: 'broker token', options: { state: { type: 'string' } } });
  const store = new BrokerStore(requireState(values.state));
  try {
    const t = store.createAdminToken(Date.now());
    process.stdout.write(`${t.token}\n`);
    process.stderr.write(`donjon broker: admin token ${t.id} created\n`);
  } finally {
    store.close();
  }
  return EXIT.ok;
}

const remoteOptions = {
  broker: { type: 'string' },
  token: { type: 'string' },
  'broker-fingerprint': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

function adminClient(values: {
  broker?: string;
  token?: string;
  'broker-fingerprint'?: string;
}): BrokerAdminClient {
  const url = values.broker ?? process.env['DONJON_BROKER'];
  const tok = values.token ?? process.env['DONJON_BROKER_TOKEN'];
  const fp = values['broker-fingerprint'] ?? process.env['DONJON_BROKER_FINGERPRINT'];
  if (url === undefined) throw new UsageError('Cannot reach a broker: pass --broker URL');
  if (tok === undefined)
    throw new UsageError('Cannot use the broker: pass --token (donjon broker token create)');
  if (fp === undefined) {
    throw new UsageError(
      `Cannot trust the broker at ${url}: pass --broker-fingerprint (donjon broker info on its machine prints it)`,
    );
  }
  if (!/^[0-9a-f:]{64,95}$/i.test(fp))
    throw new UsageError(`Cannot read --broker-fingerprint ${fp}: expected SHA-256 hex`);
  return new BrokerAdminClient(url, { token: tok, fingerprint: fp });
}

function readStdin(): Buffer {
  return readFileSync(0);
}

async function secret(argv: string[], invocation?: Invocation): Promise<number> {
  const [verb, ...rest] = argv;
  const { values, positionals } = parseCommand(rest, {
    command: 'broker secret',
    invocation,
    positionals: true,
    options: {
      ...remoteOptions,
      'from-file': { type: 'string' },
      'from-stdin': { type: 'boolean', default: false },
    },
  });
  const client = adminClient(values);
  if (verb === 'put') {
    const [name] = positionals;
    if (name === undefined || positionals.length !== 1)
      throw new UsageError('Cannot store a secret: name one (secret put NAME)');
    const file = values['from-file'];
    if ((file === undefined) === !values['from-stdin']) {
      throw new UsageError('Cannot store a secret: give exactly one of --from-file F and --from-stdin');
    }
    const value = file === undefined ? readStdin() : readFileSync(file);
    await client.putSecret(name, value);
    value.fill(0);
    process.stderr.write(`donjon broker: secret ${name} stored\n`);
    return EXIT.ok;
  }
  if (verb === 'ls') {
    const list = await client.listSecrets();
    if (values.json) process.stdout.write(`${JSON.stringify(list)}\n`);
    else
      for (const s of list)
        process.stdout.write(`${s.name}\t${s.size} bytes\t${new Date(s.updatedAt).toISOString()}\n`);
    return EXIT.ok;
  }
  if (verb === 'rm') {
    const [name] = positionals;
    if (name === undefined || positionals.length !== 1)
      throw new UsageError('Cannot remove a secret: name one (secret rm NAME)');
    await client.removeSecret(name);
    process.stderr.write(`donjon broker: secret ${name} removed\n`);
    return EXIT.ok;
  }
  throw new UsageError("Cannot run 'donjon broker secret': use put, ls or rm");
}

async function policy(argv: string[], invocation?: Invocation): Promise<number> {
  const [verb, ...rest] = argv;
  const { values, positionals } = parseCommand(rest, {
    command: 'broker policy',
    invocation,
    positionals: true,
    options: remoteOptions,
  });
  const client = adminClient(values);
  if (verb === 'set') {
    const [file] = positionals;
    if (file === undefined || positionals.length !== 1)
      throw new UsageError('Cannot set the policy: name its file (policy set FILE)');
    const parsed = await client.setPolicy(readFileSync(file, 'utf8'));
    process.stderr.write(
      `donjon broker: policy set (${parsed.allow.length} rule${parsed.allow.length === 1 ? '' : 's'})\n`,
    );
    return EXIT.ok;
  }
  if (verb === 'show') {
    const p = await client.getPolicy();
    process.stdout.write(
      values.json ? `${JSON.stringify(p)}\n` : (p.policy ?? '# no policy: every request is refused\n'),
    );
    return EXIT.ok;
  }
  throw new UsageError("Cannot run 'donjon broker policy': use set or show");
}

async function audit(argv: string[], invocation?: Invocation): Promise<number> {
  const { values } = parseCommand(argv, {
    command: 'broker audit',
    invocation,
    options: { ...remoteOptions, limit: { type: 'string' } },
  });
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit <= 0)) {
    throw new UsageError(`Cannot read --limit ${values.limit}: expected a positive whole number`);
  }
  const entries = await adminClient(values).audit(limit);
  for (const e of entries) {
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ ...e, at: new Date(e.at).toISOString() })}\n`);
      continue;
    }
    const what = [
      e.evidenceKind,
      e.simulated ? 'simulated' : undefined,
      e.measurement?.slice(0, 16),
      e.workload?.slice(0, 16),
    ]
      .filter(Boolean)
      .join(' ');
    process.stdout.write(
      `${new Date(e.at).toISOString()}  ${e.stage.padEnd(8)} ${e.verdict.padEnd(8)} ${e.secret ?? '-'}  ${what}  ${e.reason ?? ''}\n`,
    );
  }
  return EXIT.ok;
}

/** `donjon broker …`. */
export async function brokerCommand(argv: string[], invocation?: Invocation): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'serve':
      return serve(rest, invocation);
    case 'info':
      return info(rest, invocation);
    case 'token':
      return token(rest);
    case 'secret':
      return secret(rest, invocation);
    case 'policy':
      return policy(rest, invocation);
    case 'audit':
      return audit(rest, invocation);
    default:
      throw new UsageError(
        `Cannot run 'donjon broker${sub === undefined ? '' : ` ${sub}`}': use serve, info, token, secret, policy or audit`,
      );
  }
}
