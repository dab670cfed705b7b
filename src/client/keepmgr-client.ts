import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import type { ErrorCategory } from '../lib/errors.ts';
import { API_ERRORS, isApiErrorCode } from '../protocol/api-errors.ts';
import {
  type Backend,
  decodeMessageAs,
  decodeMessageBytes,
  encodeMessage,
  type Limits,
  type Message,
  type MessageOf,
  type PublishedPort,
} from '../protocol/messages.ts';
import { ClientError } from './errors.ts';

export type KeepInfo = MessageOf<'keep'>;
export type KeepEvents = MessageOf<'keep-events'>;

const CBOR = 'application/cbor';
const MAX_RESPONSE_BYTES = 4 << 20;

/** How the client decides to trust an `https` Keep Manager's certificate. */
export interface HostTrust {
  /** The SHA-256 fingerprint (hex) the certificate must have. */
  fingerprint?: string;
  /**
   * Called with the fingerprint of a host seen without a pinned one (trust on first use): return true to go
   * on. Without it, an unpinned https host is refused.
   */
  onUnknownHost?: (fingerprint: string) => boolean;
  /** Where `fingerprint` came from and what to do if the host changed it: added to the refusal. */
  pinnedBy?: string;
}

export interface KeepManagerClientOptions {
  /** Sent as a bearer token. */
  token?: string;
  /** For https hosts. */
  trust?: HostTrust;
}

/**
 * The category of the Keep Manager's refusal as its caller meets it. A request the caller got wrong (no such
 * Keep, a limit over the ceiling, a record still running) is `usage`; anything else the host refused or
 * failed at (a token it does not know, a quota, a Keep that did not start) is the host's answer: `host`.
 * The caller's own `refused` is kept for its own verifications (evidence, policy, a host's fingerprint).
 */
export function refusalCategory(hostCode: string | undefined): ErrorCategory {
  return hostCode !== undefined && isApiErrorCode(hostCode) && API_ERRORS[hostCode].category === 'usage'
    ? 'usage'
    : 'host';
}

/**
 * The error a client reports for a host's refusal `code` with `text`, for `what` (e.g. ' the channel'; '' for a
 * request): ERR_HOST_REFUSED, carrying the host's code and its category.
 */
export function hostRefusal(
  what: string,
  code: string,
  text: string,
  detail = `${text} (${code})`,
): ClientError {
  return new ClientError('ERR_HOST_REFUSED', `The host refused${what}: ${detail}`, {
    hostCode: code,
    category: refusalCategory(code),
    detail,
  });
}

/** The refusal a create that waited would have answered for `keep`, when it failed to start. */
export function startFailureOf(keep: KeepInfo): ClientError | undefined {
  if (keep.state !== 'failed') return undefined;
  return hostRefusal('', 'ERR_KEEP_START_FAILED', `Cannot start the Keep: ${keep.error ?? 'it failed'}`);
}

/**
 * What running a workload needs of a Keep Manager: a {@link KeepManagerClient} over HTTP, or a host in the same
 * process (the one `donjon run` embeds). Refusals are ClientErrors.
 */
export interface KeepHost {
  createKeep(
    backend: Backend,
    limits?: Limits,
    publish?: readonly PublishedPort[],
    options?: { wait?: 'ready' | 'started' },
  ): Promise<KeepInfo>;
  getKeep(id: string): Promise<KeepInfo>;
  stopKeep(id: string): Promise<KeepInfo>;
  /** A byte stream to the Keep: its channel, relayed by the host without being read. */
  openChannel(id: string): Promise<Duplex>;
  /** Why Keep `id` failed to start, as a create that waited would have said; undefined when it did not. */
  startFailure(id: string): Promise<ClientError | undefined>;
}

function normalizeFingerprint(fp: string): string {
  return fp.toLowerCase().replace(/:/g, '');
}

/** How long a connection opened ahead stays open unused. */
const SPARE_CONNECTION_MS = 5_000;

/**
 * A client of one Keep Manager's HTTP API (`/v1`). The host is untrusted: its answers are decoded strictly, and
 * for https its certificate must match a pinned fingerprint before any request byte (or token) is sent.
 */
export class KeepManagerClient implements KeepHost {
  readonly #base: URL;
  readonly #token: string | undefined;
  readonly #trust: HostTrust;
  /**
   * A pinned connection opened ahead, beside a request whose answer is followed at once by another (a new Keep,
   * then its channel): the next request uses it instead of waiting for a handshake of its own.
   */
  #spare: { socket: Promise<TLSSocket>; take(): void } | undefined;

  constructor(baseUrl: string, options: KeepManagerClientOptions = {}) {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch (cause) {
      throw new ClientError('ERR_CONFIG_INVALID', `Cannot use host ${baseUrl}: not a URL`, { cause });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ClientError('ERR_CONFIG_INVALID', `Cannot use host ${baseUrl}: only http and https URLs`);
    }
    this.#base = url;
    this.#token = options.token;
    this.#trust = options.trust ?? {};
  }

  /** The host's base URL. */
  get url(): string {
    return this.#base.origin;
  }

  /**
   * The host could not be reached. An http URL whose connection closes without an answer is most often an
   * https server (donjon host serves only https): say so rather than Node's "socket hang up".
   */
  #unreachable(cause: Error): ClientError {
    const code = (cause as NodeJS.ErrnoException).code;
    const hungUp = code === 'ECONNRESET' || /socket hang up/.test(cause.message);
    const reason =
      this.#base.protocol === 'http:' && hungUp
        ? `the connection closed without an HTTP answer; if it serves HTTPS, as donjon host does, use --host https://${this.#base.host}`
        : cause.message;
    return new ClientError(
      'ERR_HOST_UNREACHABLE',
      `Cannot reach the host at ${this.#base.origin}: ${reason}`,
      {
        cause,
      },
    );
  }

  /** The host's refusal `code`/`text` worded for its caller: a token that is missing reads apart from a wrong one. */
  #refusal(what: string, code: string, text: string): ClientError {
    let detail = `${text} (${code})`;
    if (code === 'ERR_API_UNAUTHORIZED') {
      detail =
        this.#token === undefined
          ? `it needs a token and none was given: pass --token TOKEN or set DONJON_TOKEN (its operator makes one with donjon host token create) (${code})`
          : `it does not know the token given (--token or DONJON_TOKEN): check it, or ask its operator for one (${code})`;
    }
    return hostRefusal(what, code, text, detail);
  }

  /** Opens a TLS connection and checks the host's certificate fingerprint before handing it out. */
  #connectPinned(): Promise<TLSSocket> {
    const port = Number(this.#base.port || 443);
    const host = this.#base.hostname.replace(/^\[|\]$/g, '');
    return new Promise((resolve, reject) => {
      // Chain validation is replaced by the fingerprint check below: the host's certificate is self-signed. No
      // root store is consulted, so none is loaded (`ca: []`; about 40 ms the first time in a process).
      const socket = tlsConnect({ host, port, rejectUnauthorized: false, ca: [], servername: '' });
      // The channel's own TLS handshake and its first frames are small writes: send each at once (no Nagle).
      socket.setNoDelay(true);
      socket.once('secureConnect', () => {
        const fp = normalizeFingerprint(socket.getPeerCertificate().fingerprint256 ?? '');
        const pinned = this.#trust.fingerprint;
        const ok = pinned ? normalizeFingerprint(pinned) === fp : (this.#trust.onUnknownHost?.(fp) ?? false);
        if (!ok) {
          socket.destroy();
          reject(
            new ClientError(
              'ERR_HOST_UNTRUSTED',
              pinned
                ? `Cannot trust the host at ${this.#base.origin}: its certificate fingerprint is ${fp}, not the pinned ${normalizeFingerprint(pinned)}${this.#trust.pinnedBy ? ` (${this.#trust.pinnedBy})` : ''}`
                : `Cannot trust the host at ${this.#base.origin}: its certificate (SHA-256 ${fp}) is not pinned; pass --host-fingerprint`,
            ),
          );
          return;
        }
        resolve(socket);
      });
      socket.once('error', (cause) => reject(this.#unreachable(cause)));
    });
  }

  /** Opens the connection the next https request will use, unless one is open already. */
  #openSpare(): void {
    if (this.#base.protocol !== 'https:' || this.#spare !== undefined) return;
    let taken = false;
    let timer: NodeJS.Timeout | undefined;
    const socket = this.#connectPinned().then((s) => {
      if (taken) return s;
      // Unused, it keeps nothing alive, and is closed before the host would time it out.
      s.unref();
      timer = setTimeout(() => {
        if (this.#spare === spare) this.#spare = undefined;
        s.destroy();
      }, SPARE_CONNECTION_MS);
      timer.unref();
      s.once('close', () => clearTimeout(timer));
      return s;
    });
    // Whoever takes it hears how it failed (and connects again); untaken, its failure concerns nobody.
    socket.catch(() => {});
    const spare = {
      socket,
      // Taken, it is the caller's for as long as the caller needs it (a channel may last hours).
      take: () => {
        taken = true;
        clearTimeout(timer);
      },
    };
    this.#spare = spare;
  }

  /** A pinned connection: the spare one if there is one still open, else a new one. */
  async #pinnedSocket(): Promise<TLSSocket> {
    const spare = this.#spare;
    this.#spare = undefined;
    if (spare !== undefined) {
      spare.take();
      const socket = await spare.socket.catch(() => undefined);
      if (socket !== undefined && !socket.destroyed) {
        socket.ref();
        return socket;
      }
    }
    return this.#connectPinned();
  }

  async #request(method: string, path: string, extraHeaders: Record<string, string> = {}) {
    const url = new URL(path, this.#base);
    const headers: Record<string, string> = { accept: CBOR, host: this.#base.host, ...extraHeaders };
    if (this.#token !== undefined) headers['authorization'] = `Bearer ${this.#token}`;
    if (url.protocol === 'https:') {
      const socket = await this.#pinnedSocket();
      return httpRequest({ method, path: url.pathname, headers, createConnection: () => socket });
    }
    const req = httpRequest(url, { method, headers });
    req.setNoDelay(true);
    return req;
  }

  async #call(method: string, path: string, body?: Message): Promise<Message> {
    const payload = body === undefined ? undefined : encodeMessage(body);
    const req = await this.#request(
      method,
      path,
      payload === undefined ? {} : { 'content-type': CBOR, 'content-length': String(payload.length) },
    );
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      req.on('response', resolve);
      req.on('error', (cause) => reject(this.#unreachable(cause)));
      req.end(payload);
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_RESPONSE_BYTES) {
        res.destroy();
        throw new ClientError('ERR_HOST_RESPONSE_INVALID', 'Cannot read the host response: it is too large');
      }
      chunks.push(chunk);
    }
    let message: Message;
    try {
      message = decodeMessageBytes(new Uint8Array(Buffer.concat(chunks)));
    } catch (cause) {
      throw new ClientError(
        'ERR_HOST_RESPONSE_INVALID',
        `Cannot read the host response (HTTP ${res.statusCode})`,
        {
          cause,
        },
      );
    }
    if (message.type === 'error') {
      throw this.#refusal('', message.code, message.message);
    }
    return message;
  }

  /**
   * Asks for a Keep; `publish` names host ports for listen files (0: any free port). The host answers once the
   * Keep is ready, or with `wait: 'started'` once its start has begun (the Keep `creating`): its channel can
   * be opened at once and waits in the Keep Loader until the Keep is ready. A Keep that then fails to start
   * is told by {@link startFailure}.
   */
  async createKeep(
    backend: Backend,
    limits?: Limits,
    publish?: readonly PublishedPort[],
    options: { wait?: 'ready' | 'started' } = {},
  ): Promise<KeepInfo> {
    const body: MessageOf<'create-keep'> = { v: 1, type: 'create-keep', backend };
    if (limits !== undefined) body.limits = limits;
    if (publish !== undefined && publish.length > 0) body.publish = [...publish];
    if (options.wait !== undefined) body.wait = options.wait;
    const call = this.#call('POST', '/v1/keeps', body);
    // The Keep's channel is asked for next: its connection's handshake happens while this request is served.
    this.#openSpare();
    return decodeMessageAs(await call, 'keep');
  }

  /**
   * The error a creation that waited for the Keep to be ready would have answered, when Keep `id` failed to
   * start; undefined when it did not, or the host cannot tell.
   */
  async startFailure(id: string): Promise<ClientError | undefined> {
    try {
      return startFailureOf(await this.getKeep(id));
    } catch {
      return undefined;
    }
  }

  async getKeep(id: string): Promise<KeepInfo> {
    return decodeMessageAs(await this.#call('GET', `/v1/keeps/${encodeURIComponent(id)}`), 'keep');
  }

  async listKeeps(): Promise<KeepInfo[]> {
    return decodeMessageAs(await this.#call('GET', '/v1/keeps'), 'keep-list').keeps;
  }

  async keepEvents(id: string): Promise<KeepEvents> {
    return decodeMessageAs(
      await this.#call('GET', `/v1/keeps/${encodeURIComponent(id)}/events`),
      'keep-events',
    );
  }

  /** Stops a Keep (its workload is killed). */
  async stopKeep(id: string): Promise<KeepInfo> {
    return decodeMessageAs(await this.#call('POST', `/v1/keeps/${encodeURIComponent(id)}/stop`), 'keep');
  }

  /** Removes an ended Keep's record. */
  async removeKeep(id: string): Promise<KeepInfo> {
    return decodeMessageAs(await this.#call('DELETE', `/v1/keeps/${encodeURIComponent(id)}`), 'keep');
  }

  /**
   * Stores a deployment the host recreates without its tenant (reference pinned to its digest, Enarx.toml's
   * args, env and files, verifying keys: nothing secret) and resolves once its first Keep runs.
   */
  async createDeployment(
    request: Omit<MessageOf<'create-deployment'>, 'v' | 'type'>,
  ): Promise<MessageOf<'deployment'>> {
    const body: Message = { v: 1, type: 'create-deployment', ...request };
    return decodeMessageAs(await this.#call('POST', '/v1/deployments', body), 'deployment');
  }

  async getDeployment(id: string): Promise<MessageOf<'deployment'>> {
    return decodeMessageAs(
      await this.#call('GET', `/v1/deployments/${encodeURIComponent(id)}`),
      'deployment',
    );
  }

  async listDeployments(): Promise<MessageOf<'deployment'>[]> {
    return decodeMessageAs(await this.#call('GET', '/v1/deployments'), 'deployment-list').deployments;
  }

  /** Stops a deployment's Keep and removes the deployment. */
  async removeDeployment(id: string): Promise<MessageOf<'deployment'>> {
    return decodeMessageAs(
      await this.#call('DELETE', `/v1/deployments/${encodeURIComponent(id)}`),
      'deployment',
    );
  }

  /** Opens the Keep's channel: an HTTP Upgrade that becomes a raw byte stream to the Keep. */
  async openChannel(id: string): Promise<Socket> {
    const req = await this.#request('GET', `/v1/keeps/${encodeURIComponent(id)}/channel`, {
      connection: 'Upgrade',
      upgrade: 'donjon-channel/1',
    });
    return new Promise((resolve, reject) => {
      req.on('upgrade', (_res: IncomingMessage, socket: Socket, head: Buffer) => {
        if (head.length > 0) socket.unshift(head);
        resolve(socket);
      });
      req.on('response', (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            const m = decodeMessageBytes(new Uint8Array(Buffer.concat(chunks)));
            if (m.type === 'error') {
              reject(this.#refusal(' the channel', m.code, m.message));
              return;
            }
          } catch {
            // the status line is all there is to say
          }
          const detail = `HTTP ${res.statusCode}`;
          reject(
            new ClientError('ERR_HOST_REFUSED', `The host refused the channel: ${detail}`, {
              category: refusalCategory(undefined),
              detail,
            }),
          );
        });
      });
      req.on('error', (cause) => reject(this.#unreachable(cause)));
      req.end();
    });
  }
}
