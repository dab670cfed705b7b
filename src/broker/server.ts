// `donjon broker serve`: the KBS endpoints for Keeps and the admin API for the broker's owner, over HTTPS with
// the broker's own P-384 identity. One route table dispatches (and docs/broker.md lists the same routes).
// Logs are JSON lines naming routes, statuses and verdicts; no secret byte, token or nonce is ever logged.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { performance } from 'node:perf_hooks';
import type { TrustRoots } from '../attestation/index.ts';
import { reasonOf } from '../lib/errors.ts';
import { BROKER_ERRORS, BrokerError, KBS_PROBLEM_BASE } from './errors.ts';
import type { BrokerIdentity } from './identity.ts';
import { BROKER_TIMEOUTS, KbsService } from './kbs.ts';
import { BrokerMetrics } from './metrics.ts';
import { parseBrokerPolicyText, SECRET_NAME } from './policy.ts';
import type { BrokerStore } from './store.ts';

/** The largest KBS request body (a TDX quote with its collateral fits). */
const MAX_KBS_BODY = 2 << 20;
/** The largest secret the broker holds. */
export const MAX_SECRET_BYTES = 64 << 10;
/** The largest policy text. */
const MAX_POLICY_BYTES = 256 << 10;

/** The session cookie of the KBS protocol. */
export const SESSION_COOKIE = 'kbs-session-id';

/** What the broker server takes. */
export interface BrokerServerOptions {
  store: BrokerStore;
  identity: BrokerIdentity;
  /** Measurements a rule without `measurements` accepts: this version's Keep runtime. */
  defaultMeasurements: readonly string[];
  now?: () => Date;
  roots?: TrustRoots;
  log?: (entry: Record<string, unknown>) => void;
  build?: string;
}

interface Context {
  req: IncomingMessage;
  res: ServerResponse;
  params: string[];
}

type Handler = (c: Context) => Promise<void>;

/** One route: a method, a path pattern, whether the admin token is required. */
interface Route {
  method: string;
  path: string;
  pattern: RegExp;
  admin: boolean;
  handler: Handler;
}

function cookieOf(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

function bearerOf(req: IncomingMessage): string | undefined {
  const m = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(req.headers.authorization ?? '');
  return m?.[1];
}

async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max)
    throw new BrokerError(
      'ERR_BROKER_REQUEST_INVALID',
      `Cannot read the request: its body exceeds ${max} bytes`,
    );
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max)
      throw new BrokerError(
        'ERR_BROKER_REQUEST_INVALID',
        `Cannot read the request: its body exceeds ${max} bytes`,
      );
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function readJson(req: IncomingMessage, max: number): Promise<unknown> {
  const body = await readBody(req, max);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (cause) {
    throw new BrokerError('ERR_BROKER_REQUEST_INVALID', 'Cannot read the request: the body is not JSON', {
      cause,
    });
  }
}

function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': body.length,
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(body);
}

/** The HTTPS server of the broker. */
export class BrokerServer {
  readonly metrics = new BrokerMetrics();
  readonly kbs: KbsService;
  readonly #o: BrokerServerOptions;
  readonly #server: Server;
  readonly #routes: Route[];
  #closing: Promise<void> | undefined;

  constructor(options: BrokerServerOptions) {
    this.#o = options;
    this.kbs = new KbsService({
      store: options.store,
      identity: options.identity,
      defaultMeasurements: options.defaultMeasurements,
      metrics: this.metrics,
      ...(options.now === undefined ? {} : { now: options.now }),
      ...(options.roots === undefined ? {} : { roots: options.roots }),
      ...(options.log === undefined ? {} : { log: options.log }),
      ...(options.build === undefined ? {} : { build: options.build }),
    });
    this.#routes = this.#table();
    this.#server = createServer(
      { key: options.identity.keyPem, cert: options.identity.certPem, minVersion: 'TLSv1.3' },
      (req, res) => void this.#dispatch(req, res),
    );
    this.#server.keepAliveTimeout = BROKER_TIMEOUTS.keepAliveMs;
  }

  /** The route table: what docs/broker.md lists. */
  get routes(): { method: string; path: string; admin: boolean }[] {
    return this.#routes.map(({ method, path, admin }) => ({ method, path, admin }));
  }

  #table(): Route[] {
    const route = (method: string, path: string, admin: boolean, handler: Handler): Route => ({
      method,
      path,
      admin,
      handler,
      pattern: new RegExp(`^${path.replace(/\{[a-z]+\}/g, '([^/]+)')}$`),
    });
    const store = this.#o.store;
    const now = () => (this.#o.now ?? (() => new Date()))().getTime();
    return [
      route('POST', '/kbs/v0/auth', false, async ({ req, res }) => {
        const { sessionId, challenge } = this.kbs.auth(await readJson(req, MAX_KBS_BODY));
        sendJson(res, 200, challenge, {
          'set-cookie': `${SESSION_COOKIE}=${sessionId}; Path=/kbs/v0; Secure; HttpOnly; SameSite=Strict; Max-Age=${Math.ceil(BROKER_TIMEOUTS.nonceMs / 1000)}`,
        });
      }),
      route('POST', '/kbs/v0/attest', false, async ({ req, res }) => {
        const body = await readJson(req, MAX_KBS_BODY);
        const sessionId = cookieOf(req, SESSION_COOKIE);
        const { token } = await this.kbs.attest(sessionId, body);
        sendJson(
          res,
          200,
          { token },
          {
            'set-cookie': `${SESSION_COOKIE}=${sessionId}; Path=/kbs/v0; Secure; HttpOnly; SameSite=Strict; Max-Age=${BROKER_TIMEOUTS.tokenSeconds}`,
          },
        );
      }),
      route('GET', '/kbs/v0/resource/{repository}/{type}/{tag}', false, async ({ req, res }) => {
        const name = KbsService.secretName(new URL(req.url ?? '/', 'https://broker').pathname);
        const jwe = await this.kbs.resource(
          { sessionId: cookieOf(req, SESSION_COOKIE), bearer: bearerOf(req) },
          name,
        );
        sendJson(res, 200, jwe);
      }),
      route('GET', '/donjon/v1/secrets', true, async ({ res }) => {
        sendJson(res, 200, { secrets: store.listSecrets() });
      }),
      route('PUT', '/donjon/v1/secrets/{name}', true, async ({ req, res, params }) => {
        const name = decodeURIComponent(params[0]!);
        if (!SECRET_NAME.test(name)) {
          throw new BrokerError(
            'ERR_BROKER_REQUEST_INVALID',
            `Cannot store secret ${JSON.stringify(name)}: names are letters, digits, '.', '_' and '-'`,
          );
        }
        const value = await readBody(req, MAX_SECRET_BYTES);
        if (value.length === 0)
          throw new BrokerError('ERR_BROKER_REQUEST_INVALID', `Cannot store secret ${name}: it is empty`);
        store.putSecret(name, value, now());
        value.fill(0);
        this.metrics.set('donjon_broker_secrets', store.secretCount());
        this.#o.log?.({ event: 'secret-stored', secret: name });
        sendJson(res, 200, { name });
      }),
      route('DELETE', '/donjon/v1/secrets/{name}', true, async ({ res, params }) => {
        const name = decodeURIComponent(params[0]!);
        if (!store.removeSecret(name))
          throw new BrokerError('ERR_SECRET_NOT_FOUND', `Cannot remove secret ${name}: there is none`);
        this.metrics.set('donjon_broker_secrets', store.secretCount());
        this.#o.log?.({ event: 'secret-removed', secret: name });
        sendJson(res, 200, { name });
      }),
      route('GET', '/donjon/v1/policy', true, async ({ res }) => {
        sendJson(res, 200, { policy: store.policySource() ?? null, parsed: this.kbs.policy() });
      }),
      route('PUT', '/donjon/v1/policy', true, async ({ req, res }) => {
        const source = (await readBody(req, MAX_POLICY_BYTES)).toString('utf8');
        const parsed = parseBrokerPolicyText(source);
        store.setPolicySource(source, now());
        this.#o.log?.({ event: 'policy-set', rules: parsed.allow.length });
        sendJson(res, 200, { parsed });
      }),
      route('GET', '/donjon/v1/audit', true, async ({ req, res }) => {
        const limit = Number(new URL(req.url ?? '/', 'https://broker').searchParams.get('limit') ?? 1000);
        sendJson(res, 200, {
          audit: store.auditLog(Number.isSafeInteger(limit) && limit > 0 ? limit : 1000),
        });
      }),
      route('GET', '/metrics', true, async ({ res }) => {
        this.metrics.set('donjon_broker_secrets', store.secretCount());
        const body = Buffer.from(this.metrics.render());
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4', 'content-length': body.length });
        res.end(body);
      }),
    ];
  }

  async #dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = performance.now();
    const path = new URL(req.url ?? '/', 'https://broker').pathname;
    let routePath = 'unknown';
    let kbs = path.startsWith('/kbs/');
    try {
      const candidates = this.#routes.filter((r) => r.pattern.test(path));
      const r = candidates.find((c) => c.method === req.method);
      if (!r) {
        throw new BrokerError(
          'ERR_BROKER_NOT_FOUND',
          candidates.length > 0
            ? `Cannot ${req.method} ${path}: use ${candidates.map((c) => c.method).join(', ')}`
            : `Cannot find ${path}`,
        );
      }
      routePath = r.path;
      kbs = r.path.startsWith('/kbs/');
      if (r.admin) {
        const token = bearerOf(req);
        if (token === undefined || this.#o.store.adminOf(token) === undefined) {
          throw new BrokerError(
            'ERR_BROKER_ADMIN_UNAUTHORIZED',
            'Cannot serve the admin API: the admin token is missing or unknown',
          );
        }
      }
      if (this.#closing) res.setHeader('connection', 'close');
      await r.handler({ req, res, params: r.pattern.exec(path)!.slice(1) });
    } catch (error) {
      const e = error instanceof BrokerError ? error : undefined;
      if (e === undefined)
        this.#o.log?.({ event: 'internal-error', route: routePath, message: reasonOf(error) });
      // KBS answers a request it cannot read with 401 (Trustee's SerdeError); the admin API with 400.
      const status = e === undefined ? 500 : kbs && e.status === 400 ? 401 : e.status;
      const problem =
        e === undefined ? 'PluginInternalError' : BROKER_ERRORS[e.code].problem || 'PluginInternalError';
      if (!res.headersSent) {
        sendJson(res, status, {
          type: `${KBS_PROBLEM_BASE}${problem}`,
          detail: e === undefined ? 'internal error' : e.detail,
          code: e?.code ?? 'ERR_INTERNAL',
        });
      } else res.destroy();
    } finally {
      this.metrics.inc('donjon_broker_http_requests_total', {
        route: routePath,
        status: String(res.statusCode),
      });
      this.#o.log?.({
        event: 'request',
        method: req.method,
        route: routePath,
        status: res.statusCode,
        ms: Math.round((performance.now() - t0) * 10) / 10,
      });
    }
  }

  /** Listens; resolves with the broker's URL. */
  listen(host: string, port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        const addr = this.#server.address() as { address: string; port: number };
        const h = addr.address.includes(':') ? `[${addr.address}]` : addr.address;
        resolve(`https://${h}:${addr.port}`);
      });
    });
  }

  /**
   * Drains: stops accepting, lets requests under way finish (up to BROKER_TIMEOUTS.drainMs, then closes their
   * connections), and closes the database.
   */
  close(drainMs: number = BROKER_TIMEOUTS.drainMs): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.#server.closeAllConnections(), drainMs);
      this.#server.close(() => {
        clearTimeout(timer);
        this.#o.store.close();
        resolve();
      });
      this.#server.closeIdleConnections();
    });
    return this.#closing;
  }
}
