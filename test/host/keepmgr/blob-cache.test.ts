import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { BlobCache } from '../../../src/host/keepmgr/blob-cache.ts';
import { sha256Digest } from '../../../src/registry/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'donjon-blobs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const blob = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

describe('BlobCache', () => {
  test('returns what was put, by digest, and nothing for an unknown or malformed digest', () => {
    const cache = new BlobCache(join(dir, 'a'));
    const b = blob(10, 1);
    cache.put(sha256Digest(b), b);
    assert.deepEqual(cache.get(sha256Digest(b)), b);
    assert.equal(cache.get(sha256Digest(blob(10, 2))), undefined);
    assert.equal(cache.get('sha256:../../etc/passwd'), undefined);
  });

  test('a corrupt entry is detected by its digest, removed, and reported missing', () => {
    const cache = new BlobCache(join(dir, 'b'));
    const b = blob(10, 3);
    const digest = sha256Digest(b);
    cache.put(digest, b);
    writeFileSync(join(dir, 'b', digest.replace(':', '-')), blob(10, 4));
    assert.equal(cache.get(digest), undefined);
    assert.deepEqual(readdirSync(join(dir, 'b')), []);
    cache.put(digest, b);
    assert.deepEqual(cache.get(digest), b);
  });

  test('stays within its bound by dropping the least recently used entries', () => {
    const cache = new BlobCache(join(dir, 'c'), 25);
    const [x, y, z] = [blob(10, 5), blob(10, 6), blob(10, 7)];
    cache.put(sha256Digest(x), x);
    cache.put(sha256Digest(y), y);
    // x is older than y in its use time; then x is used, so y is the least recently used.
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(dir, 'c', sha256Digest(x).replace(':', '-')), old, old);
    utimesSync(
      join(dir, 'c', sha256Digest(y).replace(':', '-')),
      new Date(Date.now() - 30_000),
      new Date(Date.now() - 30_000),
    );
    assert.ok(cache.get(sha256Digest(x)));
    cache.put(sha256Digest(z), z);
    assert.ok(cache.get(sha256Digest(x)));
    assert.equal(cache.get(sha256Digest(y)), undefined);
    assert.ok(cache.get(sha256Digest(z)));
    assert.equal(readdirSync(join(dir, 'c')).length, 2);
  });
});
