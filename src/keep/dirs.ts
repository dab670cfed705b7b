import type { DirSpec } from '../protocol/messages.ts';
import type { WasiTree } from '../wasi/index.ts';
import { KeepError } from './errors.ts';

/** Most entries (files and folders) of all pre-opened directories together. */
export const MAX_DIR_ENTRIES = 65_536;

type MutableTree = { [name: string]: Uint8Array | MutableTree };

function refuse(state: string): KeepError {
  return new KeepError('ERR_DEPLOY_CONFIG_INVALID', `Cannot pre-open the directories: ${state}`);
}

function validComponent(name: string): boolean {
  return (
    name !== '' &&
    name !== '.' &&
    name !== '..' &&
    !name.includes('\0') &&
    !name.includes('/') &&
    Buffer.byteLength(name) <= 255
  );
}

function child(dir: MutableTree, name: string): Uint8Array | MutableTree | undefined {
  return Object.hasOwn(dir, name) ? dir[name] : undefined;
}

function put(dir: MutableTree, name: string, value: Uint8Array | MutableTree): void {
  // defineProperty: a name such as "__proto__" is an ordinary entry, not the object's prototype.
  Object.defineProperty(dir, name, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Rebuilds the directory trees of a deploy message, keyed by the name the workload sees. Every path is
 * relative and made of valid names; a folder is implied by the paths beneath it; no path may be given
 * twice or be both a file and a folder. Throws {@link KeepError} `ERR_DEPLOY_CONFIG_INVALID`.
 */
export function preopensOf(dirs: readonly DirSpec[]): Record<string, WasiTree> {
  const out: Record<string, WasiTree> = Object.create(null);
  let entries = 0;
  for (const dir of dirs) {
    if (dir.guest === '' || dir.guest.includes('\0')) {
      throw refuse(`the guest path ${JSON.stringify(dir.guest)} is empty or holds NUL`);
    }
    if (Object.hasOwn(out, dir.guest)) throw refuse(`${dir.guest} is given twice`);
    const root: MutableTree = Object.create(null);
    const seen = new Set<string>();
    for (const entry of dir.entries) {
      if (++entries > MAX_DIR_ENTRIES) throw refuse(`more than ${MAX_DIR_ENTRIES} entries`);
      const parts = entry.path.split('/');
      if (!parts.every(validComponent)) {
        throw refuse(`${JSON.stringify(entry.path)} in ${dir.guest} is not a relative path of valid names`);
      }
      if (seen.has(entry.path)) throw refuse(`${entry.path} in ${dir.guest} is given twice`);
      seen.add(entry.path);
      let at = root;
      for (const name of parts.slice(0, -1)) {
        const next = child(at, name);
        if (next instanceof Uint8Array) throw refuse(`${entry.path} in ${dir.guest} lies beneath a file`);
        if (next === undefined) {
          const made: MutableTree = Object.create(null);
          put(at, name, made);
          at = made;
        } else at = next;
      }
      const last = parts.at(-1)!;
      const existing = child(at, last);
      if (entry.data === undefined) {
        if (existing instanceof Uint8Array)
          throw refuse(`${entry.path} in ${dir.guest} is a file and a folder`);
        if (existing === undefined) put(at, last, Object.create(null));
      } else {
        if (existing !== undefined) throw refuse(`${entry.path} in ${dir.guest} is a file and a folder`);
        put(at, last, entry.data);
      }
    }
    Object.defineProperty(out, dir.guest, {
      value: root,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
