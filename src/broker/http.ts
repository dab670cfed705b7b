// What the broker's two clients (the Keep's and the admin's) share: TLS whose peer must present the pinned
// certificate before a request byte is sent, and bounded JSON exchanges over it.
import { Agent, type IncomingMessage, request } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { BROKER_ERRORS, BrokerError, type BrokerErrorCode } from './errors.ts';

/** The largest answer a client reads. */
const MAX_RESPONSE_BYTES = 4 << 20;

/** A fingerprint as given (hex, any case, colons allowed), normalised. */
export function normalizeFingerprint(fp: string): string {
  return fp.toLowerCase().replace(/:/g, '');
}

/** Where to open TLS: over a given byte stream (the Keep's relayed one) or to a host and port. */
export type TlsTarget = { stream: Duplex } | { host: string; port: number };

/**
 * Opens TLS 1.3 and checks that the peer's certificate has the pinned SHA-256 fingerprint; on a mismatch the
 * connection is closed before any application byte is sent (ERR_BROKER_UNTRUSTED).
 */
export function connectPinned(
  target: TlsTarget,
  fingerprint: string,
  timeoutMs = 30_000,
): Promise<TLSSocket> {
  const pinned = normalizeFingerprint(fingerprint);
  // Requests are small writes answered at once: Nagle's algorithm would hold each behind a delayed ACK.
  if ('stream' in target && target.stream instanceof Socket) target.stream.setNoDelay(true);
  return new Promise((resolve, reject) => {
    // Chain validation is replaced by the fingerprint check: the broker's certificate is self-signed.
    const socket = tlsConnect({
      ...('stream' in target
        ? { socket: target.stream }
        : { host: target.host, port: target.port, noDelay: true }),
      rejectUnauthorized: false,
      ca: [],
      servername: '',
      minVersion: 'TLSv1.3',
    });
    const timer = setTimeout(
      () => socket.destroy(new Error(`no TLS handshake within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const fp = normalizeFingerprint(socket.getPeerCertificate().fingerprint256 ?? '');
      if (fp !== pinned) {
        socket.destroy();
        reject(
          new BrokerError(
            'ERR_BROKER_UNTRUSTED',
            `Cannot trust the broker: its certificate fingerprint is ${fp}, not the pinned ${pinned}`,
          ),
        );
        return;
      }
      resolve(socket);
    });
    socket.once('error', (cause) => {
      clearTimeout(timer);
      reject(
        new BrokerError('ERR_BROKER_UNREACHABLE', `Cannot reach the broker: ${cause.message}`, { cause }),
      );
    });
  });
}

/** An answer: status, headers, body. */
export interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** One HTTP/1.1 connection over an already verified TLS socket, reused for every request (keep-alive). */
export class PinnedConnection {
  readonly #agent: Agent;
  readonly #socket: TLSSocket;

  /** `idleMs`: a broker silent this long mid-exchange is taken as gone (ERR_BROKER_UNREACHABLE). */
  constructor(socket: TLSSocket, idleMs = 60_000) {
    this.#socket = socket;
    socket.setTimeout(idleMs, () => socket.destroy(new Error(`the broker was silent for ${idleMs} ms`)));
    this.#agent = new Agent({ keepAlive: true, maxSockets: 1 });
    // Every request goes over this one socket: the agent hands it out again once each answer is read.
    (this.#agent as unknown as { createConnection: () => TLSSocket }).createConnection = () => socket;
  }

  /** Sends one request and reads its whole answer (at most 4 MiB). */
  send(method: string, path: string, headers: Record<string, string>, body?: Uint8Array): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const unreachable = (cause: Error) =>
        reject(
          new BrokerError('ERR_BROKER_UNREACHABLE', `Cannot reach the broker: ${cause.message}`, { cause }),
        );
      const req = request(
        {
          agent: this.#agent,
          method,
          path,
          headers: { host: 'broker', ...headers, ...(body ? { 'content-length': String(body.length) } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_RESPONSE_BYTES) {
              res.destroy();
              reject(
                new BrokerError(
                  'ERR_BROKER_RESPONSE_INVALID',
                  "Cannot read the broker's answer: it is too large",
                ),
              );
              return;
            }
            chunks.push(c);
          });
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', unreachable);
        },
      );
      req.on('error', unreachable);
      req.end(body);
    });
  }

  close(): void {
    this.#agent.destroy();
    this.#socket.destroy();
  }
}

/** The broker's error in an answer, as a BrokerError of its own code (or ERR_BROKER_RESPONSE_INVALID). */
export function answerError(a: Answer, action: string): BrokerError {
  let problem: { code?: unknown; detail?: unknown } = {};
  try {
    problem = JSON.parse(a.body.toString('utf8')) as typeof problem;
  } catch {}
  const code =
    typeof problem.code === 'string' && problem.code in BROKER_ERRORS
      ? (problem.code as BrokerErrorCode)
      : undefined;
  const detail = typeof problem.detail === 'string' ? problem.detail : `HTTP ${a.status}`;
  return new BrokerError(code ?? 'ERR_BROKER_RESPONSE_INVALID', `Cannot ${action}: ${detail}`);
}

/** The JSON body of a successful answer. */
export function answerJson(a: Answer, action: string): unknown {
  if (a.status !== 200) throw answerError(a, action);
  try {
    return JSON.parse(a.body.toString('utf8'));
  } catch (cause) {
    throw new BrokerError(
      'ERR_BROKER_RESPONSE_INVALID',
      `Cannot ${action}: the broker's answer is not JSON`,
      { cause },
    );
  }
}
