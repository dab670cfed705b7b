import assert from 'node:assert/strict';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { AttestationError } from '../../src/attestation/errors.ts';
import { existingSimRootPath, loadOrCreateSimRoot, loadOrCreateSimSgxRoot } from '../../src/host/simroot.ts';
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
