import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DirSpec } from '../protocol/messages.ts';
import { ClientError } from './errors.ts';

/** Limits of a directory copied into a Keep. */
export interface DirLimits {
  /** Most bytes of file content, all files together. Default 64 MiB. */
  maxBytes?: number;
  /** Most files and folders. Default 10 000. */
  maxEntries?: number;
}

/** Default most bytes of a directory copied into a Keep. */
export const DEFAULT_DIR_MAX_BYTES = 64 * 1024 * 1024;
/** Default most files and folders of a directory copied into a Keep. */
export const DEFAULT_DIR_MAX_ENTRIES = 10_000;

/**
 * Reads a host directory into the form a deploy message carries: its regular files and folders, by relative
 * path, in sorted order (so the same tree always gives the same configuration digest). The copy is all the
 * workload ever sees of the host: symbolic links and special files are refused rather than followed, and the
 * limits are checked while reading. Throws {@link ClientError} `ERR_CONFIG_INVALID` naming the problem.
 */
export function readHostDirectory(hostPath: string, limits: DirLimits = {}): DirSpec['entries'] {
  const maxBytes = limits.maxBytes ?? DEFAULT_DIR_MAX_BYTES;
  const maxEntries = limits.maxEntries ?? DEFAULT_DIR_MAX_ENTRIES;
  const fail = (state: string, cause?: unknown): ClientError =>
    new ClientError(
      'ERR_CONFIG_INVALID',
      `Cannot copy directory ${hostPath}: ${state}`,
      cause === undefined ? {} : { cause },
    );
  let top: ReturnType<typeof lstatSync>;
  try {
    top = lstatSync(hostPath);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw fail(code === 'ENOENT' ? 'no such directory' : String(code), cause);
  }
  if (!top.isDirectory()) throw fail('not a directory');
  const entries: DirSpec['entries'] = [];
  let bytes = 0;
  const walk = (dir: string, rel: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch (cause) {
      throw fail(`cannot list ${rel || '.'} (${(cause as NodeJS.ErrnoException).code})`, cause);
    }
    for (const name of names) {
      const path = join(dir, name);
      const relPath = rel === '' ? name : `${rel}/${name}`;
      if (entries.length >= maxEntries) throw fail(`it holds more than ${maxEntries} files and folders`);
      const st = lstatSync(path);
      if (st.isSymbolicLink()) {
        throw fail(`${relPath} is a symbolic link; only regular files and folders are copied`);
      }
      if (st.isDirectory()) {
        entries.push({ path: relPath });
        walk(path, relPath);
      } else if (st.isFile()) {
        bytes += st.size;
        if (bytes > maxBytes) throw fail(`its files hold more than ${maxBytes} bytes`);
        let data: Buffer;
        try {
          data = readFileSync(path);
        } catch (cause) {
          throw fail(`cannot read ${relPath} (${(cause as NodeJS.ErrnoException).code})`, cause);
        }
        entries.push({ path: relPath, data: new Uint8Array(data) });
      } else {
        throw fail(`${relPath} is not a regular file or folder`);
      }
    }
  };
  walk(hostPath, '');
  return entries;
}
