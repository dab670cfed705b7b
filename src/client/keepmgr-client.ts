import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import {
  type Backend,
  decodeMessageAs,
  decodeMessageBytes,
  encodeMessage,
  type Limits,
  type Message,
} from '../protocol/messages.ts';
import { ClientError } from './errors.ts';

export type KeepInfo = Extract<Message, { type: 'keep' }>;

const CBOR = 'application/cbor';
const MAX_RESPONSE_BYTES = 4 << 20;

export interface KeepManagerClientOptions {
  /** Sent as a bearer token, when the host asks for one. */
  token?: string;
}

/** A client of one Keep Manager's HTTP API (`/v1`). The host is untrusted: its answers are decoded strictly. */
export class KeepManagerClient {
  readonly #base: URL;
  readonly #token: string | undefined;

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
  }

  #request(method: string, path: string, extraHeaders: Record<string, string> = {}) {
    const url = new URL(path, this.#base);
    const headers: Record<string, string> = { accept: CBOR, ...extraHeaders };
    if (this.#token !== undefined) headers['authorization'] = `Bearer ${this.#token}`;
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return request(url, { method, headers });
  }

  async #call(method: string, path: string, body?: Message): Promise<Message> {
    const payload = body === undefined ? undefined : encodeMessage(body);
    const req = this.#request(
      method,
      path,
      payload === undefined ? {} : { 'content-type': CBOR, 'content-length': String(payload.length) },
    );
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      req.on('response', resolve);
      req.on('error', (cause) =>
        reject(
          new ClientError(
            'ERR_HOST_UNREACHABLE',
            `Cannot reach the host at ${this.#base.origin}: ${cause.message}`,
            { cause },
          ),
        ),
      );
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
        { cause },
      );
    }
    if (message.type === 'error') {
      throw new ClientError('ERR_HOST_REFUSED', `The host refused: ${message.message} (${message.code})`, {
        hostCode: message.code,
      });
    }
    return message;
  }

  /** Asks the host for a new Keep on `backend`, whose evidence must bind `nonce`. */
  async createKeep(backend: Backend, nonce: Uint8Array, limits?: Limits): Promise<KeepInfo> {
    const body: Message =
      limits === undefined
        ? { v: 1, type: 'create-keep', backend, nonce }
        : { v: 1, type: 'create-keep', backend, nonce, limits };
    return decodeMessageAs(await this.#call('POST', '/v1/keeps', body), 'keep');
  }

  async getKeep(id: string): Promise<KeepInfo> {
    return decodeMessageAs(await this.#call('GET', `/v1/keeps/${encodeURIComponent(id)}`), 'keep');
  }

  async listKeeps(): Promise<KeepInfo[]> {
    return decodeMessageAs(await this.#call('GET', '/v1/keeps'), 'keep-list').keeps;
  }

  async stopKeep(id: string): Promise<KeepInfo> {
    return decodeMessageAs(await this.#call('DELETE', `/v1/keeps/${encodeURIComponent(id)}`), 'keep');
  }

  /** Opens the Keep's channel: an HTTP Upgrade that becomes a raw byte stream to the Keep. */
  openChannel(id: string): Promise<Socket> {
    const req = this.#request('GET', `/v1/keeps/${encodeURIComponent(id)}/channel`, {
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
          let detail = `HTTP ${res.statusCode}`;
          let hostCode: string | undefined;
          try {
            const m = decodeMessageBytes(new Uint8Array(Buffer.concat(chunks)));
            if (m.type === 'error') {
              detail = `${m.message} (${m.code})`;
              hostCode = m.code;
            }
          } catch {
            // keep the status line as the detail
          }
          reject(
            new ClientError(
              'ERR_HOST_REFUSED',
              `The host refused the channel: ${detail}`,
              hostCode === undefined ? {} : { hostCode },
            ),
          );
        });
      });
      req.on('error', (cause) =>
        reject(
          new ClientError(
            'ERR_HOST_UNREACHABLE',
            `Cannot reach the host at ${this.#base.origin}: ${cause.message}`,
            { cause },
          ),
        ),
      );
      req.end();
    });
  }
}
