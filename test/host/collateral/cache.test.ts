import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import {
  type CacheEntry,
  CollateralCache,
  cacheFileName,
  decodeCacheEntry,
  encodeCacheEntry,
} from '../../../src/host/collateral/index.ts';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'donjon-cache-'));
  dirs.push(d);
  return d;
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const entry: CacheEntry = {
  url: 'https://kdsintf.amd.com/vcek/v1/Milan/cert_chain',
  fetchedAt: new Date('2025-01-01T00:00:00Z'),
  expiresAt: new Date('2045-10-22T18:24:20Z'),
  headers: { 'tcb-info-issuer-chain': '%2D%2D' },
  body: Uint8Array.of(0, 1, 2, 255),
};

test('CollateralCache writes an entry and reads it back', async () => {
  const cache = new CollateralCache(join(await tempDir(), 'nested', 'cache'));
  assert.equal(await cache.read(entry.url), undefined);
  await cache.write(entry);
  assert.deepEqual(await cache.read(entry.url), entry);
});

test('CollateralCache names files by the SHA-256 of the URL and leaves no temporary file', async () => {
  const dir = await tempDir();
  const cache = new CollateralCache(dir);
  await cache.write(entry);
  await cache.write({ ...entry, body: Uint8Array.of(9) });
  assert.deepEqual(await readdir(dir), [cacheFileName(entry.url)]);
  assert.match(cacheFileName(entry.url), /^[0-9a-f]{64}\.json$/);
  assert.deepEqual((await cache.read(entry.url))?.body, Uint8Array.of(9));
});

test('CollateralCache treats a damaged or foreign file as a miss', async () => {
  const dir = await tempDir();
  const cache = new CollateralCache(dir);
  await writeFile(cache.pathOf(entry.url), '{"format":1,"url":');
  assert.equal(await cache.read(entry.url), undefined);
  // An entry copied under another URL's name must not be served for that URL.
  await writeFile(cache.pathOf('https://other.example/'), encodeCacheEntry(entry));
  assert.equal(await cache.read('https://other.example/'), undefined);
  await cache.delete(entry.url);
  assert.equal(await cache.read(entry.url), undefined);
});

test('decodeCacheEntry() refuses each malformed field', () => {
  const good = JSON.parse(encodeCacheEntry(entry)) as Record<string, unknown>;
  assert.deepEqual(decodeCacheEntry(JSON.stringify(good), entry.url), entry);
  const bad: Record<string, unknown>[] = [
    { ...good, format: 2 },
    { ...good, fetchedAt: 'yesterday' },
    { ...good, expiresAt: '2045-10-22T18:24:20Z' },
    { ...good, headers: [] },
    { ...good, headers: { 'Upper-Case': 'x' } },
    { ...good, headers: { a: 1 } },
    { ...good, body: 'not base64!' },
    { ...good, body: 5 },
  ];
  for (const b of bad)
    assert.equal(decodeCacheEntry(JSON.stringify(b), entry.url), undefined, JSON.stringify(b));
});

test('decodeCacheEntry() never throws, whatever the file holds', async () => {
  const text = await readFile(new URL(import.meta.url), 'utf8');
  fc.assert(
    fc.property(
      fc.oneof(fc.string(), fc.json(), fc.constant(text), fc.constant(encodeCacheEntry(entry))),
      fc.nat(),
      (t, cut) => {
        const r = decodeCacheEntry(t.slice(0, cut % (t.length + 1)), entry.url);
        assert.ok(r === undefined || r.url === entry.url);
      },
    ),
    { numRuns: 500 },
  );
});
