import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { KeepManagerError } from './errors.ts';

/** The lock file's name inside a state directory. */
export const LOCK_FILE = 'keepmgr.lock';

/** Whether a process with this pid exists (EPERM: it exists, under another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function holder(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Creates the lock file only if it does not exist; false when it does. */
function create(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    writeSync(fd, `${process.pid}\n`);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** A state directory held by this process; `release()` lets the next daemon take it. */
export interface StateLock {
  readonly path: string;
  release(): void;
}

/**
 * Takes the state directory's lock, so two Keep Managers never serve (and supervise from) the same records.
 * The lock file holds the owner's pid and is created exclusively. A lock whose pid is gone (a daemon killed
 * with SIGKILL) is stale and taken over; a live one refuses, naming the pid. A pid reused by an unrelated
 * process after a crash would hold the lock: the message names the pid so an operator can see it and remove
 * the file.
 */
export function lockStateDir(dir: string): StateLock {
  const path = join(dir, LOCK_FILE);
  if (!create(path)) {
    const pid = holder(path);
    if (pid !== undefined && pid !== process.pid && alive(pid)) {
      throw new KeepManagerError(
        'ERR_STATE_LOCKED',
        `Cannot use the state directory ${dir}: another Keep Manager (pid ${pid}) is using it`,
      );
    }
    // Stale: its owner is gone. Remove it and create ours; should another daemon take it over at the same
    // moment, only one exclusive create succeeds.
    rmSync(path, { force: true });
    if (!create(path)) {
      throw new KeepManagerError(
        'ERR_STATE_LOCKED',
        `Cannot use the state directory ${dir}: another Keep Manager (pid ${holder(path) ?? 'unknown'}) took it`,
      );
    }
  }
  let released = false;
  return {
    path,
    release(): void {
      if (released) return;
      released = true;
      // Only our own lock: never remove one another daemon took over.
      if (holder(path) === process.pid) rmSync(path, { force: true });
    },
  };
}
