import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { KeepManagerError } from '../../../src/host/keepmgr/errors.ts';
import { LOCK_FILE, lockStateDir } from '../../../src/host/keepmgr/lock.ts';

/** The pid of a process that has ended. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

describe('lockStateDir()', () => {
  test('holds the directory with our pid and lets it go on release', () => {
    const dir = mkdtempSync(join(tmpdir(), 'donjon-lock-'));
    const lock = lockStateDir(dir);
    assert.equal(readFileSync(join(dir, LOCK_FILE), 'utf8').trim(), String(process.pid));
    lock.release();
    assert.equal(existsSync(join(dir, LOCK_FILE)), false);
    lockStateDir(dir).release();
  });

  test('refuses a directory a live process holds, naming its pid', () => {
    const dir = mkdtempSync(join(tmpdir(), 'donjon-lock-'));
    // pid 1 is always alive.
    writeFileSync(join(dir, LOCK_FILE), '1\n');
    assert.throws(
      () => lockStateDir(dir),
      (e: unknown) =>
        e instanceof KeepManagerError &&
        e.code === 'ERR_STATE_LOCKED' &&
        e.message === `Cannot use the state directory ${dir}: another Keep Manager (pid 1) is using it`,
    );
    assert.equal(readFileSync(join(dir, LOCK_FILE), 'utf8').trim(), '1', 'the holder keeps its lock');
  });

  test('takes over a stale lock whose process is gone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'donjon-lock-'));
    writeFileSync(join(dir, LOCK_FILE), `${deadPid()}\n`);
    const lock = lockStateDir(dir);
    assert.equal(readFileSync(join(dir, LOCK_FILE), 'utf8').trim(), String(process.pid));
    lock.release();
  });

  test('takes over a lock file that holds no pid', () => {
    const dir = mkdtempSync(join(tmpdir(), 'donjon-lock-'));
    writeFileSync(join(dir, LOCK_FILE), 'garbage');
    lockStateDir(dir).release();
  });
});
