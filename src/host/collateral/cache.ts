// A directory of fetched collateral: one file per URL, named by the SHA-256 of the URL, holding the
// answer, when it was fetched and until when it may be served. Files are replaced atomically (write, then
// rename), so a reader never sees half an entry, and a file that does not decode is a miss, never an error.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** One cached answer. */
export interface CacheEntry {
  readonly url: string;
  readonly fetchedAt: Date;
  /** After this instant the entry is stale and must be fetched again. */
  readonly expiresAt: Date;
  /** The response headers the entry needs (issuer chains), lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

const FORMAT = 1;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The file name of `url`'s entry: SHA-256 of the URL, hex, `.json`. */
export function cacheFileName(url: string): string {
  return `${createHash('sha256').update(url, 'utf8').digest('hex')}.json`;
}

/** The text of a cache file for `entry`. */
export function encodeCacheEntry(entry: CacheEntry): string {
  return `${JSON.stringify({
    format: FORMAT,
    url: entry.url,
    fetchedAt: entry.fetchedAt.toISOString(),
    expiresAt: entry.expiresAt.toISOString(),
    headers: entry.headers,
    body: Buffer.from(entry.body.buffer, entry.body.byteOffset, entry.body.byteLength).toString('base64'),
  })}\n`;
}

function date(value: unknown): Date | undefined {
  if (typeof value !== 'string') return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) || d.toISOString() !== value ? undefined : d;
}

/**
 * Decodes a cache file for `url`. Anything unexpected (another format, another URL after a hash
 * collision or a copied file, a bad field) gives undefined: the caller fetches again.
 */
export function decodeCacheEntry(text: string, url: string): CacheEntry | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (o['format'] !== FORMAT || o['url'] !== url) return undefined;
  const fetchedAt = date(o['fetchedAt']);
  const expiresAt = date(o['expiresAt']);
  const headers = o['headers'];
  const body = o['body'];
  if (fetchedAt === undefined || expiresAt === undefined) return undefined;
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) return undefined;
  const h: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string' || name !== name.toLowerCase()) return undefined;
    h[name] = value;
  }
  if (typeof body !== 'string' || !BASE64.test(body)) return undefined;
  return { url, fetchedAt, expiresAt, headers: h, body: new Uint8Array(Buffer.from(body, 'base64')) };
}

let tmpCounter = 0;

/** A cache directory. It is created on the first write; reads of a missing directory are misses. */
export class CollateralCache {
  readonly dir: string;

  constructor(dir: string) {
    if (typeof dir !== 'string' || dir.length === 0)
      throw new TypeError('Cannot open cache: dir must be a path');
    this.dir = dir;
  }

  /** Where `url`'s entry lives. */
  pathOf(url: string): string {
    return join(this.dir, cacheFileName(url));
  }

  /** The entry for `url`, fresh or stale, or undefined when there is none (or it does not decode). */
  async read(url: string): Promise<CacheEntry | undefined> {
    let text: string;
    try {
      text = await readFile(this.pathOf(url), 'utf8');
    } catch {
      return undefined;
    }
    return decodeCacheEntry(text, url);
  }

  /** Stores `entry`, replacing any previous one for its URL in one step. */
  async write(entry: CacheEntry): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const path = this.pathOf(entry.url);
    const tmp = `${path}.${process.pid}.${++tmpCounter}.tmp`;
    try {
      await writeFile(tmp, encodeCacheEntry(entry), { mode: 0o600 });
      await rename(tmp, path);
    } catch (error) {
      await rm(tmp, { force: true });
      throw error;
    }
  }

  /** Removes `url`'s entry, if any. */
  async delete(url: string): Promise<void> {
    await rm(this.pathOf(url), { force: true });
  }
}
