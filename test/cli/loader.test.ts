// The `donjon` entry loads the CLI bundle through V8's code cache, kept in the user's data directory.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../helpers.ts';

function cacheFiles(home: string): string[] {
  const dir = join(home, 'code-cache');
  return existsSync(dir) ? readdirSync(dir).map((f) => join(dir, f)) : [];
}

test('a command saves its compiled code once, 0600 in a 0700 folder, and the next run starts from it', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'donjon-cache-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const first = await runCli(['measure'], { env: { DONJON_HOME: home } });
  assert.equal(first.code, 0, first.stderr);
  const [file, ...others] = cacheFiles(home);
  assert.ok(file, 'a cache file');
  assert.deepEqual(others, []);
  assert.match(file, /cli-[0-9a-f]{32}-measure-v\d+\.\d+\.\d+-[a-z0-9]+\.v8$/);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal(statSync(join(home, 'code-cache')).mode & 0o777, 0o700);
  const saved = readFileSync(file);
  const second = await runCli(['measure'], { env: { DONJON_HOME: home } });
  assert.equal(second.code, 0, second.stderr);
  assert.equal(second.stdout, first.stdout);
  assert.deepEqual(readFileSync(file), saved, 'accepted, so not written again');
});

test('cache data V8 refuses is replaced, and the command runs all the same', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'donjon-cache-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const first = await runCli(['measure'], { env: { DONJON_HOME: home } });
  const [file] = cacheFiles(home);
  assert.ok(file);
  const garbage = Buffer.alloc(4096, 0x5a);
  writeFileSync(file, garbage);
  const again = await runCli(['measure'], { env: { DONJON_HOME: home } });
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, first.stdout);
  assert.notDeepEqual(readFileSync(file), garbage);
});

test('no cache without a data directory, nor under NODE_DISABLE_COMPILE_CACHE', async (t) => {
  const parent = mkdtempSync(join(tmpdir(), 'donjon-cache-'));
  t.after(() => rmSync(parent, { recursive: true, force: true }));
  const missing = join(parent, 'none');
  const r = await runCli(['measure'], { env: { DONJON_HOME: missing } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(existsSync(missing), false, 'the cache makes no data directory');
  const off = await runCli(['measure'], { env: { DONJON_HOME: parent, NODE_DISABLE_COMPILE_CACHE: '1' } });
  assert.equal(off.code, 0, off.stderr);
  assert.deepEqual(cacheFiles(parent), []);
});

test("writing a command's cache removes another build's, and keeps this build's other commands'", async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'donjon-cache-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const first = await runCli(['measure'], { env: { DONJON_HOME: home } });
  assert.equal(first.code, 0, first.stderr);
  const [own] = cacheFiles(home);
  assert.ok(own);
  const stale = join(home, 'code-cache', `cli-${'0'.repeat(32)}-run-${process.version}-${process.arch}.v8`);
  const unrelated = join(home, 'code-cache', 'notes.txt');
  writeFileSync(stale, 'old', { mode: 0o600 });
  writeFileSync(unrelated, 'kept', { mode: 0o600 });
  const version = await runCli(['--version'], { env: { DONJON_HOME: home } });
  assert.equal(version.code, 0, version.stderr);
  const files = cacheFiles(home);
  assert.equal(existsSync(stale), false, "another build's cache is gone");
  assert.ok(files.includes(own), "this build's cache of another command stays");
  assert.ok(files.includes(unrelated), 'a file that is not a cache stays');
  assert.equal(files.length, 3, files.join(', '));
});
