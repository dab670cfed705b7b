import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { reasonOf } from '../../lib/errors.ts';
import {
  decodeMessageAs,
  decodeMessageBytes,
  type Message,
  type MessageOf,
} from '../../protocol/messages.ts';
import { ApiError } from '../errors.ts';
import { CHANNEL_PROTOCOL } from './relay.ts';
import { isTerminal, type KeepRecord } from './store.ts';

const CBOR = 'application/cbor';

/** What the routes need of the Keep Manager: the one place their handlers reach into it. */
export interface KeepApi {
  /** The tenant's own Keep, or ERR_KEEP_NOT_FOUND (another tenant's Keep is reported as missing). */
  ownKeep(tenant: string, id: string): KeepRecord;
  /**
   * Every Keep of a tenant as its `keep-list` answer, with that answer's encoding (kept until a record or a
   * deployment changes: listing idle Keeps again costs no store read and no encoding).
   */
  keepList(tenant: string): { readonly message: MessageOf<'keep-list'>; readonly encoded: Uint8Array };
  /** Admits and creates a Keep (from the pool or started); resolves once it is ready. */
  create(tenant: string, request: MessageOf<'create-keep'>): Promise<KeepRecord>;
  /** Stops a Keep; resolves with its record once it ended or after a while. */
  stop(record: KeepRecord): Promise<KeepRecord>;
  /** Removes an ended Keep's record and what its Keep Loader left. */
  remove(record: KeepRecord): void;
  events(id: string): MessageOf<'keep-events'>['events'];
  /** Relays a tenant's upgraded connection to the Keep's channel. */
  channel(record: KeepRecord, socket: Duplex, head: Buffer): Promise<void>;
  /** The Prometheus text. */
  metrics(): string;
  /** The deployment a Keep is the current Keep of, as its `keep` message shows it. */
  deploymentOf(keepId: string): MessageOf<'keep'>['deployment'];
  /** Stores a deployment and makes its first Keep; resolves once it runs. */
  createDeployment(tenant: string, request: MessageOf<'create-deployment'>): Promise<MessageOf<'deployment'>>;
  listDeployments(tenant: string): MessageOf<'deployment'>[];
  /** The tenant's own deployment, or ERR_DEPLOYMENT_NOT_FOUND. */
  ownDeployment(tenant: string, id: string): MessageOf<'deployment'>;
  /** Stops a deployment's Keep and removes the deployment. */
  removeDeployment(tenant: string, id: string): Promise<MessageOf<'deployment'>>;
  /** Largest request body accepted, bytes. */
  readonly maxBodyBytes: number;
}

/** A request as a route's handler sees it: the URL parsed once by the server, the path's parameters, the tenant. */
export interface Call {
  readonly req: IncomingMessage;
  readonly url: URL;
  readonly params: Readonly<Record<string, string>>;
  /** The tenant the bearer token names (the local tenant when tokens are not required); '' on open routes. */
  readonly tenant: string;
}

/** An upgrade request, with its socket and the bytes already read past its head. */
export interface UpgradeCall extends Call {
  readonly socket: Duplex;
  readonly head: Buffer;
}

/** A route's answer: a protocol message (CBOR, with its encoding when the route has it already), or text. */
export type Answer =
  | { readonly status: number; readonly message: Message; readonly encoded?: Uint8Array }
  | { readonly status: number; readonly text: string; readonly contentType: string };

/** One route of the API: what docs/api.md documents and what the server dispatches, in one declaration. */
export interface Route<A = KeepApi> {
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** The path, with `{name}` for a parameter that matches one segment. */
  readonly path: string;
  readonly summary: string;
  /** Whether the route answers for a tenant (a bearer token, when required); `/metrics` does not. */
  readonly tenant: boolean;
  /** Answers a plain request. */
  readonly handle: (api: A, call: Call) => Promise<Answer>;
  /** Takes over an HTTP Upgrade on this route; routes without it refuse upgrades. */
  readonly upgrade?: (api: A, call: UpgradeCall) => Promise<void>;
}

/** The `keep` message of a record, with the deployment it belongs to when there is one. */
/**
 * `record`, when its Keep can take a channel: ready, running, or still starting (its Keep Loader then holds the
 * channel until the Keep is ready). Throws ERR_KEEP_NOT_READY otherwise.
 */
export function channelable(record: KeepRecord): KeepRecord {
  if (record.state !== 'creating' && record.state !== 'ready' && record.state !== 'running') {
    throw new ApiError(
      'ERR_KEEP_NOT_READY',
      `Cannot open a channel to Keep ${record.id}: it is ${record.state}`,
    );
  }
  return record;
}

export function keepMessage(r: KeepRecord, deployment?: MessageOf<'keep'>['deployment']): MessageOf<'keep'> {
  const m: MessageOf<'keep'> = {
    v: 1,
    type: 'keep',
    id: r.id,
    backend: r.backend,
    state: r.state,
    createdAt: r.createdAt,
  };
  if (r.exitCode !== undefined) m.exitCode = r.exitCode;
  if (r.error !== undefined) m.error = r.error;
  if (r.keepldrPid !== undefined) m.keepldrPid = r.keepldrPid;
  if (r.keepPid !== undefined) m.keepPid = r.keepPid;
  if (r.ports !== undefined && r.ports.length > 0) m.ports = r.ports;
  if (deployment !== undefined) m.deployment = deployment;
  return m;
}

/** A record's `keep` message as the API answers it, with the deployment it belongs to. */
export function shown(api: KeepApi, r: KeepRecord): MessageOf<'keep'> {
  return keepMessage(r, api.deploymentOf(r.id));
}

/** Decodes a request body as the message `type`, or ERR_API_BODY_INVALID. */
function decodeBody<T extends 'create-keep' | 'create-deployment'>(
  body: Uint8Array,
  type: T,
  action: string,
): MessageOf<T> {
  let value: unknown;
  try {
    value = decodeMessageBytes(body, {
      maxBytes: body.length,
      maxDepth: 4,
      maxItems: 64,
      maxStringBytes: 4096,
    });
  } catch (cause) {
    throw new ApiError('ERR_API_BODY_INVALID', `Cannot ${action}: ${reasonOf(cause)}`, { cause });
  }
  return requestAs(value, type, action);
}

/** Checks a request (decoded, or handed over in this process) as the message `type`, or ERR_API_BODY_INVALID. */
export function requestAs<T extends 'create-keep' | 'create-deployment'>(
  value: unknown,
  type: T,
  action: string,
): MessageOf<T> {
  try {
    return decodeMessageAs(value, type);
  } catch (cause) {
    throw new ApiError('ERR_API_BODY_INVALID', `Cannot ${action}: ${reasonOf(cause)}`, { cause });
  }
}

/** Reads a CBOR body of at most `max` bytes. */
async function readBody(req: IncomingMessage, max: number): Promise<Uint8Array> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
  if (type !== CBOR)
    throw new ApiError('ERR_API_MEDIA_TYPE', `Cannot read a ${type || 'untyped'} body: send ${CBOR}`);
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) throw new ApiError('ERR_API_BODY_TOO_LARGE', `Cannot read the body: over ${max} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new ApiError('ERR_API_BODY_TOO_LARGE', `Cannot read the body: over ${max} bytes`);
    chunks.push(chunk);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

function id(call: Call): string {
  return call.params['id'] ?? '';
}

/**
 * Every route of the Keep Manager API, with its handler. The server dispatches through this table and
 * nothing else, and docs/api.md is checked against it, so a route cannot be served undocumented.
 */
export const API_ROUTES: readonly Route[] = [
  {
    method: 'POST',
    path: '/v1/keeps',
    summary: 'create a Keep (body: create-keep; answer: keep, 201)',
    tenant: true,
    async handle(api, call) {
      const body = await readBody(call.req, api.maxBodyBytes);
      const request = decodeBody(body, 'create-keep', 'create a Keep');
      return { status: 201, message: keepMessage(await api.create(call.tenant, request)) };
    },
  },
  {
    method: 'GET',
    path: '/v1/keeps',
    summary: "list the caller's Keeps (answer: keep-list)",
    tenant: true,
    async handle(api, call) {
      const { message, encoded } = api.keepList(call.tenant);
      return { status: 200, message, encoded };
    },
  },
  {
    method: 'GET',
    path: '/v1/keeps/{id}',
    summary: 'one Keep (answer: keep)',
    tenant: true,
    async handle(api, call) {
      return { status: 200, message: shown(api, api.ownKeep(call.tenant, id(call))) };
    },
  },
  {
    method: 'DELETE',
    path: '/v1/keeps/{id}',
    summary: "remove an ended Keep's record (answer: keep)",
    tenant: true,
    async handle(api, call) {
      const record = api.ownKeep(call.tenant, id(call));
      if (!isTerminal(record.state)) {
        throw new ApiError(
          'ERR_KEEP_STILL_RUNNING',
          `Cannot remove Keep ${record.id}: it is ${record.state}; stop it first`,
        );
      }
      api.remove(record);
      return { status: 200, message: keepMessage(record) };
    },
  },
  {
    method: 'POST',
    path: '/v1/keeps/{id}/stop',
    summary: 'stop a Keep (answer: keep)',
    tenant: true,
    async handle(api, call) {
      return { status: 200, message: shown(api, await api.stop(api.ownKeep(call.tenant, id(call)))) };
    },
  },
  {
    method: 'GET',
    path: '/v1/keeps/{id}/events',
    summary: 'lifecycle events (answer: keep-events)',
    tenant: true,
    async handle(api, call) {
      const record = api.ownKeep(call.tenant, id(call));
      return {
        status: 200,
        message: { v: 1, type: 'keep-events', id: record.id, events: api.events(record.id) },
      };
    },
  },
  {
    method: 'GET',
    path: '/v1/keeps/{id}/channel',
    summary: `HTTP Upgrade to ${CHANNEL_PROTOCOL}: the raw byte stream to the Keep (101)`,
    tenant: true,
    async handle() {
      throw new ApiError(
        'ERR_API_BODY_INVALID',
        `Cannot open a channel without an HTTP Upgrade to ${CHANNEL_PROTOCOL}`,
      );
    },
    async upgrade(api, call) {
      if ((call.req.headers.upgrade ?? '').toLowerCase() !== CHANNEL_PROTOCOL) {
        throw new ApiError(
          'ERR_API_BODY_INVALID',
          `Cannot upgrade: the protocol must be ${CHANNEL_PROTOCOL}`,
        );
      }
      const record = channelable(api.ownKeep(call.tenant, id(call)));
      await api.channel(record, call.socket, call.head);
    },
  },
  {
    method: 'POST',
    path: '/v1/deployments',
    summary:
      'store a deployment the host recreates without its tenant, and make its first Keep (body: create-deployment; answer: deployment, 201)',
    tenant: true,
    async handle(api, call) {
      const body = await readBody(call.req, api.maxBodyBytes);
      const request = decodeBody(body, 'create-deployment', 'store a deployment');
      return { status: 201, message: await api.createDeployment(call.tenant, request) };
    },
  },
  {
    method: 'GET',
    path: '/v1/deployments',
    summary: "list the caller's deployments (answer: deployment-list)",
    tenant: true,
    async handle(api, call) {
      return {
        status: 200,
        message: { v: 1, type: 'deployment-list', deployments: api.listDeployments(call.tenant) },
      };
    },
  },
  {
    method: 'GET',
    path: '/v1/deployments/{id}',
    summary: 'one deployment, its restarts and its last failure (answer: deployment)',
    tenant: true,
    async handle(api, call) {
      return { status: 200, message: api.ownDeployment(call.tenant, id(call)) };
    },
  },
  {
    method: 'DELETE',
    path: '/v1/deployments/{id}',
    summary: "stop a deployment's Keep and remove the deployment (answer: deployment)",
    tenant: true,
    async handle(api, call) {
      return { status: 200, message: await api.removeDeployment(call.tenant, id(call)) };
    },
  },
  {
    method: 'GET',
    path: '/metrics',
    summary: 'Prometheus text metrics (no token needed; no tenant data)',
    tenant: false,
    async handle(api) {
      return { status: 200, text: api.metrics(), contentType: 'text/plain; version=0.0.4' };
    },
  },
];
