import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { AttestationError } from '../../src/attestation/errors.ts';
import { serializeSimRoot } from '../../src/attestation/sim/index.ts';
import {
  existingSimRootPath,
  loadOrCreateSimRoot,
  loadOrCreateSimSgxRoot,
  parseSimRootOnce,
} from '../../src/host/simroot.ts';
import { testHome } from '../helpers.ts';

describe('loadOrCreateSimSgxRoot()', () => {
  test('makes the simulated Intel platform once, readable by its owner only, and loads it afterwards', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'djsr-')), 'state');
    let made = 0;
    const [a, b] = await Promise.all([
      loadOrCreateSimSgxRoot(dir, () => made++),
      loadOrCreateSimSgxRoot(dir, () => made++),
    ]);
    // Concurrent first uses agree on one platform, whoever made it.
    assert.equal(a.fingerprint, b.fingerprint);
    assert.equal(a.path, join(dir, 'sim-sgx-root.json'));
    assert.equal(statSync(a.path).mode & 0o777, 0o600);
    const again = await loadOrCreateSimSgxRoot(dir, () => made++);
    assert.equal(again.fingerprint, a.fingerprint);
    assert.ok(made >= 1 && made <= 2);
  });

  test('refuses a damaged file rather than making another platform over it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'djsr-'));
    writeFileSync(join(dir, 'sim-sgx-root.json'), '{}');
    await assert.rejects(loadOrCreateSimSgxRoot(dir), (e: unknown) => {
      assert.ok(e instanceof AttestationError);
      assert.equal(e.code, 'ERR_SIM_ROOT_INVALID');
      return true;
    });
  });
});

describe('existingSimRootPath()', () => {
  test('names the simulated root kept in a folder, and nothing when there is none', async () => {
    const root = await loadOrCreateSimRoot(testHome);
    assert.equal(existingSimRootPath(testHome), root.path);
    assert.equal(existingSimRootPath(mkdtempSync(join(tmpdir(), 'djsr-'))), undefined);
  });
});

describe("parseSimRootOnce() with the root's path", () => {
  const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
  const invalidRoot = (e: unknown): boolean => {
    assert.ok(e instanceof AttestationError);
    assert.equal(e.code, 'ERR_SIM_ROOT_INVALID');
    return true;
  };

  test('checks a root whole once, then stamps its digest beside it, readable by its owner only', async () => {
    const { material } = await loadOrCreateSimRoot(testHome);
    // New bytes to this process (the same root, one more line break), so that no earlier check vouches for them.
    const bytes = new Uint8Array([...serializeSimRoot(material), 0x0a]);
    const dir = mkdtempSync(join(tmpdir(), 'djsr-'));
    const path = join(dir, 'sim-root.cbor');
    writeFileSync(path, bytes, { mode: 0o600 });
    assert.equal(parseSimRootOnce(bytes, path).fingerprint, material.fingerprint);
    const stamp = readFileSync(`${path}.checked`, 'utf8');
    assert.match(stamp, new RegExp(`\\n${sha256(bytes)}\\n$`));
    assert.equal(statSync(`${path}.checked`).mode & 0o777, 0o600);
  });

  test('a stamp vouches only for the bytes it names: other bytes are checked whole', async () => {
    const { material } = await loadOrCreateSimRoot(testHome);
    const good = new Uint8Array([...serializeSimRoot(material), 0x0a, 0x0a]);
    const dir = mkdtempSync(join(tmpdir(), 'djsr-'));
    const path = join(dir, 'sim-root.cbor');
    writeFileSync(path, good, { mode: 0o600 });
    parseSimRootOnce(good, path);
    const stamp = readFileSync(`${path}.checked`, 'utf8');
    // The same root, its fingerprint changed: the stamp beside it names the original bytes.
    const damaged = serializeSimRoot({ ...material, fingerprint: 'ab'.repeat(32) });
    writeFileSync(path, damaged);
    assert.throws(() => parseSimRootOnce(damaged, path), invalidRoot);
    // A stamp naming exactly these bytes is taken at its word: whoever wrote it could write the root too.
    writeFileSync(`${path}.checked`, stamp.replace(sha256(good), sha256(damaged)));
    assert.equal(parseSimRootOnce(damaged, path).fingerprint, 'ab'.repeat(32));
    // Without a path there is no stamp to read: checked whole.
    const other = serializeSimRoot({ ...material, fingerprint: 'cd'.repeat(32) });
    assert.throws(() => parseSimRootOnce(other), invalidRoot);
  });
});
