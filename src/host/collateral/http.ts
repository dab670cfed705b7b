// One GET with a time limit, a size limit and at most one retry. Collateral services rate-limit (AMD KDS
// answers 429 to bursts), so failures never turn into a storm of requests: a second attempt only after a
// pause, only for failures that a second attempt can fix (network, timeout, 5xx, 429), and never a third.
import { channel } from 'node:diagnostics_channel';
import { CollateralError } from './errors.ts';

/** The subset of the WHATWG fetch this code uses; tests and proxies may supply their own. */
export type FetchLike = (url: string, init: { signal: AbortSignal; redirect: 'follow' }) => Promise<Response>;

/** Limits and hooks of {@link httpGet}. */
export interface HttpOptions {
  /** Per attempt, covering the headers and the body. */
  readonly timeoutMs: number;
  /** Pause before the one retry; a `Retry-After` up to {@link MAX_RETRY_DELAY_MS} lengthens it. */
  readonly retryDelayMs: number;
  /** Largest body accepted, in bytes. */
  readonly maxBytes: number;
  readonly fetch: FetchLike;
  /** How to wait before the retry (tests make it instant). */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** A successful answer: status 2xx, headers with lower-case names, the whole body. */
export interface RawResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

/** The longest `Retry-After` honoured; a service asking for longer gets no retry at all. */
export const MAX_RETRY_DELAY_MS = 60_000;

/** Diagnostics channel with one message per attempt: `{ url, attempt, status?, error? }`. */
export const httpChannel = channel('donjon:collateral:http');

class Retryable extends Error {
  readonly error: CollateralError;
  readonly retryAfterMs: number | undefined;
  constructor(error: CollateralError, retryAfterMs?: number) {
    super(error.message);
    this.error = error;
    this.retryAfterMs = retryAfterMs;
  }
}

function retryAfter(value: string | null): number | undefined {
  if (value === null || !/^\d{1,6}$/.test(value.trim())) return undefined;
  return Number(value.trim()) * 1000;
}

async function readBody(response: Response, maxBytes: number, url: string): Promise<Uint8Array> {
  const declared = response.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) {
    await response.body?.cancel().catch(() => {});
    throw new CollateralError(
      'ERR_COLLATERAL_MALFORMED',
      `Cannot fetch ${url}: the answer exceeds ${maxBytes} bytes`,
      {
        url,
      },
    );
  }
  const reader = response.body?.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (reader !== undefined) {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw new CollateralError(
          'ERR_COLLATERAL_MALFORMED',
          `Cannot fetch ${url}: the answer exceeds ${maxBytes} bytes`,
          { url },
        );
      }
      chunks.push(value);
    }
  }
  const body = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    body.set(c, at);
    at += c.byteLength;
  }
  return body;
}

async function attempt(url: string, options: HttpOptions): Promise<RawResponse> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  try {
    const response = await options.fetch(url, { signal, redirect: 'follow' });
    if (response.status < 200 || response.status > 299) {
      await response.body?.cancel().catch(() => {});
      const status = response.status;
      if (status === 404) {
        throw new CollateralError(
          'ERR_COLLATERAL_NOT_FOUND',
          `Cannot fetch ${url}: the service has no such item (404)`,
          {
            url,
            status,
          },
        );
      }
      const error = new CollateralError(
        'ERR_COLLATERAL_FETCH_FAILED',
        `Cannot fetch ${url}: HTTP status ${status}`,
        {
          url,
          status,
        },
      );
      if (status === 429 || status >= 500)
        throw new Retryable(error, retryAfter(response.headers.get('retry-after')));
      throw error;
    }
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name.toLowerCase()] = value;
    });
    const body = await readBody(response, options.maxBytes, url);
    return { status: response.status, headers, body };
  } catch (cause) {
    if (cause instanceof CollateralError || cause instanceof Retryable) throw cause;
    if (signal.aborted) {
      throw new Retryable(
        new CollateralError(
          'ERR_COLLATERAL_TIMEOUT',
          `Cannot fetch ${url}: no answer within ${options.timeoutMs} ms`,
          {
            url,
            cause,
          },
        ),
      );
    }
    const detail = (cause as { cause?: { code?: unknown } }).cause?.code ?? (cause as Error).message;
    throw new Retryable(
      new CollateralError('ERR_COLLATERAL_FETCH_FAILED', `Cannot fetch ${url}: ${String(detail)}`, {
        url,
        cause,
      }),
    );
  }
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * GETs `url` (http or https) with at most two attempts. Fails with ERR_COLLATERAL_NOT_FOUND (404),
 * ERR_COLLATERAL_FETCH_FAILED (network error, other non-2xx status), ERR_COLLATERAL_TIMEOUT or
 * ERR_COLLATERAL_MALFORMED (body over the size limit), each carrying `url` and, where there was one,
 * `status`.
 */
export async function httpGet(url: string, options: HttpOptions): Promise<RawResponse> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`Cannot fetch ${url}: not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TypeError(`Cannot fetch ${url}: only http and https URLs are supported`);
  }
  for (let n = 1; ; n++) {
    try {
      const response = await attempt(url, options);
      httpChannel.publish({ url, attempt: n, status: response.status });
      return response;
    } catch (e) {
      const error = e instanceof Retryable ? e.error : (e as CollateralError);
      httpChannel.publish({
        url,
        attempt: n,
        ...(error.status === undefined ? {} : { status: error.status }),
        error,
      });
      if (!(e instanceof Retryable) || n >= 2) throw error;
      const wait = Math.max(options.retryDelayMs, e.retryAfterMs ?? 0);
      if (wait > MAX_RETRY_DELAY_MS) throw error;
      await (options.sleep ?? defaultSleep)(wait);
    }
  }
}
