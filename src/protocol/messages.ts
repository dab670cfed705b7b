import { type DecodeLimits, decode, encode } from './cbor.ts';
import { ProtocolError } from './errors.ts';
import {
  arrayOf,
  bool,
  bstr,
  bstrOfSize,
  checkValue,
  type Fields,
  type Infer,
  int,
  isPlainMap,
  type MessageSchema,
  message,
  oneOf,
  optional,
  PROTOCOL_VERSION,
  struct,
  textMap,
  tstr,
  uint,
} from './schema.ts';

// The one declaration of every message. docs/protocol.cddl says the same in CDDL, and a test checks that
// both name the same types and agree on samples.

const backend = oneOf('nil', 'sim', 'cvm', 'sgx-sim');
const keepState = oneOf('creating', 'ready', 'running', 'exited', 'failed', 'stopped');

/** Resource limits a tenant asks for; a plain map inside `create-keep` and `deploy`, not a message. */
export const limitsSchema = struct({
  memoryBytes: optional(uint),
  wallTimeMs: optional(uint),
  outputBytes: optional(uint),
  descriptors: optional(uint),
});

/** A listener's host port, as the Keep Loader bound it (public; reported by the host, so never trusted). */
const portMapping = struct({ name: tstr, port: uint });

/** A host port a tenant asks for one of its listen files, by name (0: any free port). */
export const publishSchema = struct({ name: tstr, hostPort: uint });

/**
 * One descriptor of a workload's table, in Enarx.toml's `files` schema (descriptor n is the n-th entry).
 * The fields a kind does not use are absent; the Keep checks which are required and the ranges.
 */
export const fileSchema = struct({
  kind: oneOf('null', 'stdin', 'stdout', 'stderr', 'listen', 'connect'),
  name: optional(tstr),
  prot: optional(oneOf('tcp', 'tls')),
  port: optional(uint),
  addr: optional(tstr),
  host: optional(tstr),
});

/**
 * A directory the workload finds pre-opened at `guest`: its files and folders as a flat list of relative
 * paths ("a/b.txt"); an entry without `data` is a directory.
 */
const dirSchema = struct({
  guest: tstr,
  entries: arrayOf(struct({ path: tstr, data: optional(bstr) })),
});

/**
 * A secret the Keep fetches from a key broker before the workload starts, in Enarx.toml's `[[secrets]]` schema:
 * put in a read-only file at `path` or in the environment variable `env` (exactly one).
 */
export const secretSchema = struct({
  name: tstr,
  broker: tstr,
  fingerprint: tstr,
  path: optional(tstr),
  env: optional(tstr),
});

/** What a Keep created for a deployment says of it: the deployment, its restarts and its last failure. */
const deploymentSummary = struct({
  id: tstr,
  reference: tstr,
  restart: oneOf('on-failure', 'always'),
  restarts: uint,
  lastFailure: optional(tstr),
});

/**
 * A registry artifact a deploy comes from, handed to the Keep by the host that pulled it: the manifest's
 * bytes, the digest the deployment pinned, and the public keys and signatures the Keep checks itself.
 */
const artifactSchema = struct({
  reference: tstr,
  digest: tstr,
  manifest: bstr,
  keys: optional(arrayOf(tstr)),
  signatures: optional(arrayOf(struct({ payload: bstr, signature: tstr }))),
});

const restartPolicy = oneOf('on-failure', 'always');

/** A deployment as the Keep Manager stores and reports it: public, never a secret. */
const deployment = message('deployment', {
  id: tstr,
  reference: tstr,
  backend,
  restart: restartPolicy,
  maxRestarts: optional(uint),
  state: oneOf('active', 'stopped', 'given-up'),
  restarts: uint,
  createdAt: uint,
  keepId: optional(tstr),
  lastFailure: optional(tstr),
});

const keep = message('keep', {
  id: tstr,
  backend,
  state: keepState,
  createdAt: uint,
  exitCode: optional(int),
  error: optional(tstr),
  keepldrPid: optional(uint),
  keepPid: optional(uint),
  ports: optional(arrayOf(portMapping)),
  deployment: optional(deploymentSummary),
});

/** One lifecycle event of a Keep, as recorded by the Keep Manager. */
const keepEvent = struct({ at: uint, state: keepState, message: optional(tstr) });

const errorBody = message('error', { code: tstr, message: tstr });

function defineMessages<const S extends { readonly [T in keyof S]: MessageSchema<Fields, T & string> }>(
  schemas: S,
): S {
  return schemas;
}

/** The schema of every message, keyed by its `type`. Shared by the checks and the tests' generators. */
export const messageSchemas = defineMessages({
  // keepmgr HTTP API bodies
  'create-keep': message('create-keep', {
    backend,
    limits: optional(limitsSchema),
    publish: optional(arrayOf(publishSchema)),
    wait: optional(oneOf('ready', 'started')),
  }),
  keep,
  'keep-list': message('keep-list', { keeps: arrayOf(keep) }),
  'keep-events': message('keep-events', { id: tstr, events: arrayOf(keepEvent) }),
  'create-deployment': message('create-deployment', {
    reference: tstr,
    backend,
    restart: restartPolicy,
    maxRestarts: optional(uint),
    limits: optional(limitsSchema),
    args: arrayOf(tstr),
    env: textMap,
    files: optional(arrayOf(fileSchema)),
    secrets: optional(arrayOf(secretSchema)),
    keys: arrayOf(tstr),
    plainHttp: optional(bool),
    tier: optional(oneOf('default', 'optimizing')),
  }),
  deployment,
  'deployment-list': message('deployment-list', { deployments: arrayOf(deployment) }),
  error: errorBody,
  // The channel to the Keep: one plaintext hello, then TLS
  'channel-hello': message('channel-hello', { nonce: bstrOfSize(32) }),
  // Inside TLS
  deploy: message('deploy', {
    wasm: bstr,
    digest: bstrOfSize(32),
    args: arrayOf(tstr),
    env: textMap,
    stdin: bool,
    owner: bstrOfSize(32),
    limits: optional(limitsSchema),
    files: optional(arrayOf(fileSchema)),
    dirs: optional(arrayOf(dirSchema)),
    secrets: optional(arrayOf(secretSchema)),
    detach: optional(bool),
    tier: optional(oneOf('default', 'optimizing')),
    artifact: optional(artifactSchema),
  }),
  attach: message('attach', { secret: bstrOfSize(32) }),
  notice: message('notice', { message: tstr }),
  stdin: message('stdin', { data: bstr }),
  'stdin-end': message('stdin-end', {}),
  started: message('started', {
    ports: optional(arrayOf(portMapping)),
    tier: optional(oneOf('default', 'optimizing')),
  }),
  stdout: message('stdout', { data: bstr }),
  stderr: message('stderr', { data: bstr }),
  exit: message('exit', { code: uint }),
  trap: message('trap', { message: tstr }),
  limit: message('limit', { limit: oneOf('memory', 'time', 'output', 'fds'), message: tstr }),
  // Keep <-> Keep Loader control
  'evidence-request': message('evidence-request', { reportData: bstrOfSize(64) }),
  'collateral-request': message('collateral-request', { quote: bstr }),
  evidence: message('evidence', {
    kind: oneOf('sev-snp', 'tdx', 'sgx', 'none'),
    report: bstr,
    certs: arrayOf(bstr),
    collateral: optional(bstr),
  }),
  'keep-event': message('keep-event', {
    event: oneOf('ready', 'deployed', 'exited', 'failed'),
    code: optional(int),
    message: optional(tstr),
  }),
  // Keep Manager <-> Keep Loader
  'ldr-channel': message('ldr-channel', {}),
  'ldr-watch': message('ldr-watch', {}),
  'ldr-stop': message('ldr-stop', {}),
  'ldr-drain': message('ldr-drain', {}),
  'ldr-event': message('ldr-event', {
    state: keepState,
    ldrPid: optional(uint),
    keepPid: optional(uint),
    exitCode: optional(int),
    error: optional(tstr),
    ports: optional(arrayOf(portMapping)),
  }),
});

type Schemas = typeof messageSchemas;

/** The `type` of every message. */
export type MessageType = keyof Schemas;

/** Every protocol message, as one union discriminated by `type`. */
export type Message = { [T in MessageType]: Infer<Schemas[T]> }[MessageType];

/** The message whose `type` is `T`, e.g. `MessageOf<'deploy'>`. */
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

/** Resource limits as carried by `create-keep` and `deploy`. */
export type Limits = Infer<typeof limitsSchema>;

/** A host port asked for one listen file, as carried by `create-keep`'s `publish`. */
export type PublishedPort = Infer<typeof publishSchema>;
/** A Keep's backend as named on the wire. */
export type Backend = Infer<typeof backend>;
/** One entry of a workload's descriptor table, as carried by `deploy`. */
export type FileSpec = Infer<typeof fileSchema>;
/** A pre-opened directory, as carried by `deploy`. */
export type DirSpec = Infer<typeof dirSchema>;
/** A secret to fetch from a key broker, as carried by `deploy`. */
export type SecretSpec = Infer<typeof secretSchema>;
/** A listener's host port, as in `started`, `keep` and `ldr-event`. */
export type PortMapping = Infer<typeof portMapping>;
/** A Keep's lifecycle state, as in `keep` and `ldr-event`. */
export type KeepState = Infer<typeof keepState>;

/** Every message type, in declaration order. */
export const messageTypes: readonly MessageType[] = Object.freeze(
  Object.keys(messageSchemas) as MessageType[],
);

function isMessageType(type: string): type is MessageType {
  return Object.hasOwn(messageSchemas, type);
}

function check(value: unknown, action: string): Message {
  if (!isPlainMap(value)) {
    throw new ProtocolError('ERR_MESSAGE_INVALID', `Cannot ${action} message: it is not a map`);
  }
  const v = Object.hasOwn(value, 'v') ? value['v'] : undefined;
  if (v !== PROTOCOL_VERSION) {
    if (Number.isSafeInteger(v) || typeof v === 'bigint') {
      throw new ProtocolError(
        'ERR_MESSAGE_VERSION',
        `Cannot ${action} message: version ${String(v)} is not supported (only ${PROTOCOL_VERSION})`,
      );
    }
    throw new ProtocolError('ERR_MESSAGE_INVALID', `Cannot ${action} message: v must be ${PROTOCOL_VERSION}`);
  }
  const type = Object.hasOwn(value, 'type') ? value['type'] : undefined;
  if (typeof type !== 'string') {
    throw new ProtocolError('ERR_MESSAGE_INVALID', `Cannot ${action} message: type must be a text string`);
  }
  if (!isMessageType(type)) {
    throw new ProtocolError(
      'ERR_MESSAGE_UNKNOWN_TYPE',
      `Cannot ${action} message: the type ${JSON.stringify(type)} is unknown`,
    );
  }
  return checkValue({ action, type }, '', value, messageSchemas[type]) as Message;
}

/**
 * Checks a decoded CBOR value as a message: version, type, every field, no unknown keys. Returns a fresh
 * object holding only the declared fields. Throws a {@link ProtocolError}: `ERR_MESSAGE_VERSION`,
 * `ERR_MESSAGE_UNKNOWN_TYPE` or `ERR_MESSAGE_INVALID`.
 */
export function decodeMessage(value: unknown): Message {
  return check(value, 'decode');
}

/**
 * Like {@link decodeMessage}, and also requires the message to be of `type` (say, the body of a keepmgr
 * response); any other valid message throws `ERR_MESSAGE_UNEXPECTED_TYPE`.
 */
export function decodeMessageAs<T extends MessageType>(value: unknown, type: T): MessageOf<T> {
  const m = check(value, 'decode');
  if (m.type !== type) {
    throw new ProtocolError(
      'ERR_MESSAGE_UNEXPECTED_TYPE',
      `Cannot decode message: expected ${JSON.stringify(type)}, received ${JSON.stringify(m.type)}`,
    );
  }
  return m as MessageOf<T>;
}

/** Decodes CBOR bytes (under `limits`) and checks them as a message. Throws only {@link ProtocolError}. */
export function decodeMessageBytes(bytes: Uint8Array, limits?: Partial<DecodeLimits>): Message {
  return check(decode(bytes, limits), 'decode');
}

/**
 * Checks a message as {@link decodeMessage} would, then encodes it in deterministic CBOR. A message the
 * schema refuses throws the same `ERR_MESSAGE_*` error a receiver would raise, so nothing invalid is
 * sent; what is encoded is the checked copy, not the caller's object.
 */
export function encodeMessage(message: Message): Uint8Array {
  return encode(check(message, 'encode'));
}
