import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { KeepManagerClient } from '../../../src/client/index.ts';
import { KeepManager, type KeepManagerOptions } from '../../../src/host/index.ts';
import { builtFile } from '../../../src/paths.ts';

// Failure 2 of the hostile-operator trial: a create that failed after its record was inserted left the record
// `creating` for ever, counting against the tenant's quotas. Every failure after the insert must end it
// `failed`, with the reason.

function manager(options: Partial<KeepManagerOptions> = {}): KeepManager {
  return new KeepManager({
    runtimePath: builtFile('keep.js'),
    keepldrPath: builtFile('keepldr.js'),
    runDir: mkdtempSync(join(tmpdir(), 'donjon-t-')),
    quotas: { maxKeepsPerTenant: 1 },
    ...options,
  });
}

function hostCode(code: string): (e: unknown) => boolean {
  return (e: unknown) => (e as { hostCode?: string }).hostCode === code;
}

async function expectFailedRecords(m: KeepManager, count: number, reason: RegExp): Promise<void> {
  const records = m.store.list();
  assert.equal(records.length, count);
  for (const r of records) {
    assert.equal(r.state, 'failed', JSON.stringify(r));
    assert.match(r.error ?? '', reason);
    assert.deepEqual(
      m.store.events(r.id).map((e) => e.state),
      ['creating', 'failed'],
    );
  }
}

describe('a create that fails after its record is inserted', () => {
  test('a Keep Loader that cannot start: the record ends failed with its stderr, and the quota is free', async () => {
    for (const detachKeeps of [false, true]) {
      const m = manager({ keepldrPath: join(tmpdir(), 'no-such-dir', 'keepldr.js'), detachKeeps });
      const client = new KeepManagerClient(await m.listen());
      try {
        // Twice: a record left `creating` would make the second one ERR_API_QUOTA_EXCEEDED.
        for (let i = 0; i < 2; i++) {
          await assert.rejects(client.createKeep('nil'), hostCode('ERR_KEEP_START_FAILED'));
        }
        await expectFailedRecords(m, 2, /^the Keep Loader ended \(status 1\): .*Cannot find module/);
      } finally {
        await m.close();
      }
    }
  });

  test('a run folder removed after start: the record ends failed with the reason', async () => {
    for (const detachKeeps of [false, true]) {
      const runDir = mkdtempSync(join(tmpdir(), 'donjon-t-'));
      const m = manager({ runDir, detachKeeps });
      const client = new KeepManagerClient(await m.listen());
      try {
        rmSync(runDir, { recursive: true });
        for (let i = 0; i < 2; i++) {
          await assert.rejects(client.createKeep('nil'), hostCode('ERR_KEEP_START_FAILED'));
        }
        await expectFailedRecords(m, 2, /ENOENT|EACCES|no such file|permission denied/i);
      } finally {
        await m.close();
      }
    }
  });

  test('a systemd-run that is not there: the record ends failed saying so', async () => {
    const path = process.env['PATH'];
    process.env['PATH'] = mkdtempSync(join(tmpdir(), 'donjon-empty-path-'));
    const m = manager({ detachKeeps: true, launcher: 'systemd' });
    try {
      const client = new KeepManagerClient(await m.listen());
      await assert.rejects(client.createKeep('nil'), hostCode('ERR_KEEP_START_FAILED'));
      await expectFailedRecords(m, 1, /^systemd-run failed: /);
    } finally {
      process.env['PATH'] = path;
      await m.close();
    }
  });
});
