// The host's cache of registry blobs (manifests and modules), by digest, shared by every Keep this host
// recreates. Entries are files named by their digest; every read hashes the file again, so a corrupt or
// truncated entry is dropped and fetched again rather than handed on (the Keep would refuse it anyway).
// The cache is bounded: after each write, the entries least recently used go until the total fits.
import { createHash, randomBytes } from 'node:crypto';
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';

/** Default bound of the blob cache, bytes. */
export const DEFAULT_BLOB_CACHE_BYTES = 1024 * 1024 * 1024;

const ENTRY = /^sha256-[0-9a-f]{64}$/;

function entryName(digest: string): string | undefined {
  const name = digest.replace(':', '-');
  return ENTRY.test(name) ? name : undefined;
}

/**
 * Blobs by digest in a private folder, at most `maxBytes` in all (least recently used first out). Use is
 * recorded in each file's modification time, which a hit renews.
 */
export class BlobCache {
  readonly #dir: string;
  readonly #maxBytes: number;

  constructor(dir: string, maxBytes = DEFAULT_BLOB_CACHE_BYTES) {
    this.#dir = dir;
    this.#maxBytes = maxBytes;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** The blob of `digest`, if cached and whole; a damaged entry is removed and reported as missing. */
  get(digest: string): Uint8Array | undefined {
    const name = entryName(digest);
    if (name === undefined) return undefined;
    const path = join(this.#dir, name);
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch {
      return undefined;
    }
    if (`sha256:${createHash('sha256').update(bytes).digest('hex')}` !== digest) {
      rmSync(path, { force: true });
      return undefined;
    }
    const now = new Date();
    try {
      utimesSync(path, now, now);
    } catch {
      // Evicted meanwhile: the bytes read are still good.
    }
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Stores a blob already checked against `digest` (written aside, then renamed: never half an entry). */
  put(digest: string, bytes: Uint8Array): void {
    const name = entryName(digest);
    if (name === undefined || bytes.byteLength > this.#maxBytes) return;
    const temp = join(this.#dir, `.${name}.${randomBytes(4).toString('hex')}`);
    writeFileSync(temp, bytes, { mode: 0o600 });
    renameSync(temp, join(this.#dir, name));
    this.#evict();
  }

  /** Removes the least recently used entries until the total is within the bound. */
  #evict(): void {
    const entries: { path: string; size: number; used: number }[] = [];
    for (const name of readdirSync(this.#dir)) {
      if (!ENTRY.test(name)) continue;
      const path = join(this.#dir, name);
      try {
        const s = statSync(path);
        entries.push({ path, size: s.size, used: s.mtimeMs });
      } catch {
        // Removed meanwhile.
      }
    }
    let total = entries.reduce((n, e) => n + e.size, 0);
    entries.sort((a, b) => a.used - b.used);
    for (const e of entries) {
      if (total <= this.#maxBytes) break;
      rmSync(e.path, { force: true });
      total -= e.size;
    }
  }
}
