import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { reasonOf } from '../../lib/errors.ts';
import { encodeMessage } from '../../protocol/messages.ts';
import { ApiError } from '../errors.ts';
import { KeepManagerError } from './errors.ts';
import type { LogEntry } from './records.ts';
import { refuseUpgrade } from './relay.ts';
import type { Answer, Call, Route } from './routes.ts';

/** Connections open at once (requests, idle keep-alives and channels); more are dropped on arrival. */
export const MAX_CONNECTIONS = 1024;

/** How often the HTTP server looks for requests past their head or request timeout. */
const CONNECTIONS_CHECK_MS = 1_000;

/** The options of an {@link ApiServer}. */
export interface ApiServerOptions<A> {
  /** The route table: the only thing dispatched. */
  readonly routes: readonly Route<A>[];
  /** What the handlers act on. */
  readonly api: A;
  /** The tenant of a request on a route that has one; throws ERR_API_UNAUTHORIZED. */
  readonly authenticate: (req: IncomingMessage) => string;
  /** Serve HTTPS with this identity; plain HTTP without it. */
  readonly tls?: { keyPem: string; certPem: string } | undefined;
  readonly timeouts: { readonly handshake: number; readonly requestHead: number; readonly request: number };
  readonly maxConnections?: number | undefined;
  /** Told every answer's code ('ok' or an error code), for the metrics. */
  readonly onAnswer: (code: string) => void;
  /** Told of each connection dropped over the cap. */
  readonly onDrop: () => void;
  readonly log: (entry: LogEntry) => void;
}

/** A route matched against a path, with the values of its `{name}` segments. */
interface Match<A> {
  readonly routes: readonly Route<A>[];
  readonly params: Record<string, string>;
}

function matchPath(pattern: string, parts: readonly string[]): Record<string, string> | undefined {
  const want = pattern.split('/').filter(Boolean);
  if (want.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const p = parts[i]!;
    if (w.startsWith('{') && w.endsWith('}')) params[w.slice(1, -1)] = p;
    else if (w !== p) return undefined;
  }
  return params;
}

function asApiError(error: unknown, action: string): ApiError {
  return error instanceof ApiError
    ? error
    : new ApiError('ERR_HOST_INTERNAL', `Cannot ${action}: internal error`, { cause: error });
}

function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * The Keep Manager's HTTP(S) serving: parses each request's URL once, finds its route in the table, checks
 * the tenant and the method, and hands it to the route's handler (requests) or upgrade handler (channels).
 * It also bounds what a client can hold without asking anything: a connection must finish its TLS
 * handshake and send a request head within named timeouts, and connections beyond a cap are dropped.
 */
export class ApiServer<A> {
  readonly #o: ApiServerOptions<A>;
  readonly #sockets = new Set<Duplex>();
  /** Connections that have not yet sent a request or an upgrade, with the timer that closes them. */
  readonly #waiting = new Map<Duplex, NodeJS.Timeout>();
  #server: Server | undefined;

  constructor(options: ApiServerOptions<A>) {
    this.#o = options;
  }

  /**
   * Binds host:port (port 0 picks one) and resolves with the base URL. Rejects with ERR_LISTEN_FAILED, in
   * the form "Cannot listen on 127.0.0.1:8787: the address is in use", having served nothing.
   */
  listen(host: string, port: number): Promise<string> {
    const { tls, timeouts } = this.#o;
    const serverOptions = {
      headersTimeout: timeouts.requestHead,
      requestTimeout: Math.max(timeouts.request, timeouts.requestHead),
      connectionsCheckingInterval: CONNECTIONS_CHECK_MS,
    };
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.#request(req, res);
    const server: Server = tls
      ? createHttpsServer(
          {
            ...serverOptions,
            key: tls.keyPem,
            cert: tls.certPem,
            minVersion: 'TLSv1.2',
            handshakeTimeout: timeouts.handshake,
          },
          handler,
        )
      : createHttpServer(serverOptions, handler);
    server.maxConnections = this.#o.maxConnections ?? MAX_CONNECTIONS;
    server.on('drop', () => {
      this.#o.onDrop();
      this.#o.log({ event: 'connection-dropped', reason: `over ${server.maxConnections} connections` });
    });
    server.on(
      'upgrade',
      (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.#upgrade(req, socket, head),
    );
    server.on('clientError', (_error, socket: Duplex) => socket.destroy());
    server.on('connection', (socket: Socket) => {
      // A channel relays a TLS handshake in several small writes; with Nagle's algorithm each waits for the
      // client's delayed ACK (about 40 ms on Linux) before it leaves.
      socket.setNoDelay(true);
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
      // Over TLS the request head is awaited once the handshake is done (the handshake has its own timeout).
      if (!tls) this.#await(socket);
    });
    if (tls) server.on('secureConnection', (socket: Duplex) => this.#await(socket));
    this.#server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        const why =
          error.code === 'EADDRINUSE'
            ? 'the address is in use'
            : error.code === 'EACCES'
              ? 'permission denied'
              : error.code === 'EADDRNOTAVAIL'
                ? 'the address is not one of this machine'
                : reasonOf(error);
        reject(
          new KeepManagerError('ERR_LISTEN_FAILED', `Cannot listen on ${hostPort(host, port)}: ${why}`, {
            cause: error,
          }),
        );
      });
      server.listen(port, host, () => {
        const address = server.address();
        if (address === null || typeof address === 'string') {
          reject(
            new KeepManagerError(
              'ERR_LISTEN_FAILED',
              `Cannot listen on ${hostPort(host, port)}: no TCP address`,
            ),
          );
          return;
        }
        resolve(`${tls ? 'https' : 'http'}://${hostPort(host, address.port)}`);
      });
    });
  }

  /** Stops serving and closes every connection, channels included. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#server?.listening) {
        for (const s of this.#sockets) s.destroy();
        resolve();
        return;
      }
      this.#server.close(() => resolve());
      for (const s of this.#sockets) s.destroy();
    });
  }

  /** A new connection: it must send a request or an upgrade within `requestHead`. */
  #await(socket: Duplex): void {
    const timer = setTimeout(() => {
      this.#o.log({ event: 'connection-idle', reason: 'no request in time' });
      socket.destroy();
    }, this.#o.timeouts.requestHead);
    timer.unref();
    this.#waiting.set(socket, timer);
    socket.once('close', () => this.#arrived(socket));
  }

  #arrived(socket: Duplex): void {
    const timer = this.#waiting.get(socket);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.#waiting.delete(socket);
    }
  }

  /** The URL, once; a URL that does not parse matches no route. */
  #match(req: IncomingMessage): { url: URL; match: Match<A> } {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://keepmgr');
    } catch {
      throw new ApiError('ERR_API_ROUTE_NOT_FOUND', 'Cannot find this path: it is not a valid URL path');
    }
    const parts = url.pathname.split('/').filter(Boolean);
    let params: Record<string, string> = {};
    const routes = this.#o.routes.filter((r) => {
      const p = matchPath(r.path, parts);
      if (p) params = p;
      return p !== undefined;
    });
    if (routes.length === 0)
      throw new ApiError('ERR_API_ROUTE_NOT_FOUND', `Cannot find ${url.pathname}: no such route`);
    return { url, match: { routes, params } };
  }

  /** The route for the method, once the tenant (on a tenant's path) is known: a stranger learns no methods. */
  #route(req: IncomingMessage, url: URL, match: Match<A>): { route: Route<A>; call: Call } {
    const tenant = match.routes.some((r) => r.tenant) ? this.#o.authenticate(req) : '';
    const route = match.routes.find((r) => r.method === req.method);
    if (!route) {
      const allowed = match.routes.map((r) => r.method).join(' or ');
      throw new ApiError(
        'ERR_API_METHOD_NOT_ALLOWED',
        `Cannot ${req.method} ${url.pathname}: use ${allowed}`,
      );
    }
    return { route, call: { req, url, params: match.params, tenant } };
  }

  async #request(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.#arrived(req.socket);
    try {
      const { url, match } = this.#match(req);
      const { route, call } = this.#route(req, url, match);
      this.#answer(res, await route.handle(this.#o.api, call));
      this.#o.onAnswer('ok');
    } catch (error) {
      const e = asApiError(error, 'answer');
      if (!(error instanceof ApiError)) this.#o.log({ event: 'internal-error', error: String(error) });
      this.#o.onAnswer(e.code);
      if (!res.headersSent)
        this.#answer(res, {
          status: e.status,
          message: { v: 1, type: 'error', code: e.code, message: e.message },
        });
      else res.destroy();
    }
  }

  #answer(res: ServerResponse, answer: Answer): void {
    const body =
      'message' in answer
        ? Buffer.from(answer.encoded ?? encodeMessage(answer.message))
        : Buffer.from(answer.text);
    const type = 'message' in answer ? 'application/cbor' : answer.contentType;
    res.writeHead(answer.status, { 'content-type': type, 'content-length': body.length });
    res.end(body);
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    this.#arrived(socket);
    socket.on('error', () => socket.destroy());
    try {
      const { url, match } = this.#match(req);
      const upgradable = { ...match, routes: match.routes.filter((r) => r.upgrade !== undefined) };
      if (upgradable.routes.length === 0)
        throw new ApiError('ERR_API_ROUTE_NOT_FOUND', 'Cannot upgrade: no such route');
      const { route, call } = this.#route(req, url, upgradable);
      await route.upgrade!(this.#o.api, { ...call, socket, head });
      this.#o.onAnswer('ok');
    } catch (error) {
      const e = asApiError(error, 'upgrade');
      if (!(error instanceof ApiError)) this.#o.log({ event: 'internal-error', error: String(error) });
      this.#o.onAnswer(e.code);
      refuseUpgrade(socket, e);
    }
  }
}
