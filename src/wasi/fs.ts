// Over 400 lines: the whole in-memory filesystem (tree, descriptors, path resolution) that the preview1 calls share.
import { errno, filetype } from './abi.ts';

// The in-memory filesystem behind preopened directories: a tree of nodes that lives only as long as the
// run. Path resolution is capability-style: a lookup starts at a directory descriptor and can never leave
// it ("..", absolute paths and symlinks pointing out are refused), which is what lets a Keep hand the
// workload its files and nothing else. Every byte the workload stores counts against a budget, so the
// filesystem cannot become a way around the memory limit.

/** A directory's contents as the caller supplies them: a name maps to a file's bytes or a subdirectory. */
export interface WasiTree {
  readonly [name: string]: Uint8Array | WasiTree;
}

interface Times {
  atim: bigint;
  mtim: bigint;
  ctim: bigint;
}

/** A regular file. `data` may be longer than `size`: the spare room makes appends cheap. */
export interface FileNode extends Times {
  readonly type: 'file';
  readonly ino: bigint;
  nlink: number;
  /** Open descriptors; an unlinked file keeps its bytes until the last one closes, as in POSIX. */
  opens: number;
  data: Uint8Array;
  size: number;
}

/** A directory; entry order is creation order, which is what fd_readdir reports. */
export interface DirNode extends Times {
  readonly type: 'dir';
  readonly ino: bigint;
  readonly entries: Map<string, FsNode>;
  /** False once removed, so nothing can be created in it any more. */
  live: boolean;
}

/** A symbolic link. */
export interface LinkNode extends Times {
  readonly type: 'symlink';
  readonly ino: bigint;
  nlink: number;
  readonly target: string;
}

/** Any node of the tree. */
export type FsNode = FileNode | DirNode | LinkNode;

/** Where a path led: the directory holding the last component, its name, and the node if it exists. */
export interface Lookup {
  readonly parent: DirNode;
  readonly name: string;
  readonly node: FsNode | undefined;
  /** The path ended in a slash, so the caller must treat the target as a directory. */
  readonly trailingSlash: boolean;
  /** The path named the directory itself ("." or "x/.."), which has no name in a parent. */
  readonly self: boolean;
}

/** Most bytes in one name, as most filesystems allow. */
const NAME_MAX = 255;
/** Most bytes in one path. */
const PATH_MAX = 4096;
/** Most symbolic links one lookup follows, as Linux does. */
const SYMLOOP_MAX = 40;
const DEFAULT_MAX_NODES = 65536;
const encoder = new TextEncoder();

function byteLength(s: string): number {
  return encoder.encode(s).length;
}

/** Whether `name` can be one entry of a directory. */
export function validName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !/[/\0]/.test(name) && byteLength(name) <= NAME_MAX;
}

/**
 * Checks a caller's tree before it crosses into the worker: names must be valid entries and values bytes
 * or plain objects, at most 64 levels deep. Returns how many bytes and nodes it holds. Throws TypeError
 * or RangeError.
 */
export function measureTree(tree: unknown, depth = 0): { bytes: number; nodes: number } {
  if (typeof tree !== 'object' || tree === null || Array.isArray(tree) || tree instanceof Uint8Array) {
    throw new TypeError('Cannot use the directory tree: a directory must be a plain object');
  }
  if (depth > 64)
    throw new RangeError('Cannot use the directory tree: it is nested more than 64 levels deep');
  let bytes = 0;
  let nodes = 1;
  for (const [name, value] of Object.entries(tree)) {
    if (!validName(name)) {
      throw new TypeError(`Cannot use the directory tree: ${JSON.stringify(name)} is not a valid file name`);
    }
    if (value instanceof Uint8Array) {
      bytes += value.length;
      nodes++;
    } else {
      const inner = measureTree(value, depth + 1);
      bytes += inner.bytes;
      nodes += inner.nodes;
    }
  }
  return { bytes, nodes };
}

/** Most nodes a filesystem holds, counting the ones the caller supplies. */
export const MAX_NODES = DEFAULT_MAX_NODES;

/** Stat fields of a node, in preview1 terms. */
export interface NodeStat {
  readonly filetype: number;
  readonly ino: bigint;
  readonly nlink: bigint;
  readonly size: bigint;
  readonly atim: bigint;
  readonly mtim: bigint;
  readonly ctim: bigint;
}

/** The filesystem of one run. */
export class MemFs {
  readonly #now: () => bigint;
  readonly #capacity: number;
  readonly #maxNodes: number;
  #used = 0;
  #nodes = 0;
  #nextIno = 1n;

  /**
   * @param now realtime clock in nanoseconds, for timestamps
   * @param capacityBytes most bytes all files together may hold
   */
  constructor(now: () => bigint, capacityBytes: number, maxNodes = DEFAULT_MAX_NODES) {
    this.#now = now;
    this.#capacity = capacityBytes;
    this.#maxNodes = maxNodes;
  }

  /** Bytes the files hold now. */
  get usedBytes(): number {
    return this.#used;
  }

  /**
   * Builds a directory from a caller's tree. Throws RangeError when the tree does not fit the budget and
   * TypeError when a name or value is not acceptable; the caller checked the tree before, so this is the
   * last line.
   */
  importTree(tree: WasiTree, depth = 0): DirNode {
    if (depth > 64) throw new RangeError('Cannot build the filesystem: the tree is nested too deeply');
    const dir = this.#dir();
    if (dir === undefined) throw new RangeError('Cannot build the filesystem: too many files');
    for (const [name, value] of Object.entries(tree)) {
      if (!validName(name))
        throw new TypeError(`Cannot build the filesystem: ${JSON.stringify(name)} is not a file name`);
      if (value instanceof Uint8Array) {
        const file = this.#file();
        if (file === undefined || this.#used + value.length > this.#capacity) {
          throw new RangeError('Cannot build the filesystem: the files exceed its capacity');
        }
        file.data = new Uint8Array(value);
        file.size = value.length;
        this.#used += value.length;
        dir.entries.set(name, file);
      } else if (typeof value === 'object' && value !== null) {
        dir.entries.set(name, this.importTree(value, depth + 1));
      } else {
        throw new TypeError(`Cannot build the filesystem: ${name} is neither bytes nor a directory`);
      }
    }
    return dir;
  }

  #times(): Times {
    const t = this.#now();
    return { atim: t, mtim: t, ctim: t };
  }

  #take(): bigint | undefined {
    if (this.#nodes >= this.#maxNodes) return undefined;
    this.#nodes++;
    return this.#nextIno++;
  }

  #dir(): DirNode | undefined {
    const ino = this.#take();
    return ino === undefined
      ? undefined
      : { type: 'dir', ino, entries: new Map(), live: true, ...this.#times() };
  }

  #file(): FileNode | undefined {
    const ino = this.#take();
    return ino === undefined
      ? undefined
      : { type: 'file', ino, nlink: 1, opens: 0, data: new Uint8Array(0), size: 0, ...this.#times() };
  }

  /** Resolves `path` from `root`, following a final symlink when `follow` is set. Returns a Lookup or an errno. */
  lookup(root: DirNode, path: string, follow: boolean): Lookup | number {
    if (path === '') return errno.noent;
    if (path.includes('\0')) return errno.inval;
    if (byteLength(path) > PATH_MAX) return errno.nametoolong;
    if (path.startsWith('/')) return errno.perm;
    let trailingSlash = path.endsWith('/');
    const queue = path.split('/').filter((p) => p !== '');
    const stack: DirNode[] = [root];
    let links = 0;
    while (queue.length > 0) {
      const comp = queue.shift()!;
      const last = queue.length === 0;
      const dir = stack[stack.length - 1]!;
      if (comp === '.' || comp === '..') {
        if (comp === '..') {
          // The descriptor is the boundary: going above it would reach what the workload was not given.
          if (stack.length === 1) return errno.perm;
          stack.pop();
        }
        if (last) {
          const self = stack[stack.length - 1]!;
          return { parent: self, name: '.', node: self, trailingSlash, self: true };
        }
        continue;
      }
      if (byteLength(comp) > NAME_MAX) return errno.nametoolong;
      const node = dir.entries.get(comp);
      if (node?.type === 'symlink' && (!last || follow || trailingSlash)) {
        if (++links > SYMLOOP_MAX) return errno.loop;
        if (node.target.startsWith('/')) return errno.perm;
        const target = node.target.split('/').filter((p) => p !== '');
        if (target.length === 0) return errno.noent;
        if (last && node.target.endsWith('/')) trailingSlash = true;
        queue.unshift(...target);
        continue;
      }
      if (last) return { parent: dir, name: comp, node, trailingSlash, self: false };
      if (node === undefined) return errno.noent;
      if (node.type !== 'dir') return errno.notdir;
      stack.push(node);
    }
    return { parent: root, name: '.', node: root, trailingSlash, self: true };
  }

  /** Creates an empty file `name` in `parent`. */
  createFile(parent: DirNode, name: string): FileNode | number {
    if (!parent.live) return errno.noent;
    const file = this.#file();
    if (file === undefined) return errno.nospc;
    parent.entries.set(name, file);
    this.#touch(parent);
    return file;
  }

  /** Creates an empty directory `name` in `parent`. */
  createDirectory(parent: DirNode, name: string): DirNode | number {
    if (!parent.live) return errno.noent;
    const dir = this.#dir();
    if (dir === undefined) return errno.nospc;
    parent.entries.set(name, dir);
    this.#touch(parent);
    return dir;
  }

  /** Creates a symbolic link `name` in `parent` pointing at `target` (not checked: it may dangle). */
  createSymlink(parent: DirNode, name: string, target: string): LinkNode | number {
    if (!parent.live) return errno.noent;
    const ino = this.#take();
    if (ino === undefined) return errno.nospc;
    const link: LinkNode = { type: 'symlink', ino, nlink: 1, target, ...this.#times() };
    parent.entries.set(name, link);
    this.#touch(parent);
    return link;
  }

  /** Adds another name for an existing file or symlink. */
  link(node: FileNode | LinkNode, parent: DirNode, name: string): number {
    if (!parent.live) return errno.noent;
    node.nlink++;
    node.ctim = this.#now();
    parent.entries.set(name, node);
    this.#touch(parent);
    return errno.success;
  }

  /** Removes the entry `name` from `parent`; a file's bytes are freed when its last name goes. */
  remove(parent: DirNode, name: string): void {
    const node = parent.entries.get(name);
    if (node === undefined) return;
    parent.entries.delete(name);
    this.#touch(parent);
    if (node.type === 'dir') {
      node.live = false;
      this.#nodes--;
      return;
    }
    node.nlink--;
    node.ctim = this.#now();
    if (node.nlink === 0) {
      this.#nodes--;
      if (node.type === 'file' && node.opens === 0) this.#release(node);
    }
  }

  /** Notes a descriptor opened on `file`. */
  opened(file: FileNode): void {
    file.opens++;
  }

  /** Notes a descriptor on `file` closed; frees an unlinked file's bytes with its last descriptor. */
  closed(file: FileNode): void {
    file.opens--;
    if (file.opens === 0 && file.nlink === 0) this.#release(file);
  }

  /** Moves an entry; the caller has checked the POSIX rules for what it may replace. */
  rename(fromParent: DirNode, fromName: string, toParent: DirNode, toName: string): void {
    const node = fromParent.entries.get(fromName);
    if (node === undefined) return;
    if (toParent.entries.has(toName)) this.remove(toParent, toName);
    fromParent.entries.delete(fromName);
    toParent.entries.set(toName, node);
    this.#touch(fromParent);
    this.#touch(toParent);
    node.ctim = this.#now();
  }

  /** Whether `node` is `dir` or lies anywhere below it. */
  contains(dir: DirNode, node: FsNode): boolean {
    if (dir === node) return true;
    for (const child of dir.entries.values()) {
      if (child.type === 'dir' && this.contains(child, node)) return true;
    }
    return false;
  }

  /** Copies up to `dst.length` bytes from `offset`; returns the count (0 at or past the end). */
  read(file: FileNode, offset: number, dst: Uint8Array): number {
    if (offset >= file.size) return 0;
    const n = Math.min(dst.length, file.size - offset);
    dst.set(file.data.subarray(offset, offset + n));
    file.atim = this.#now();
    return n;
  }

  /** Writes `src` at `offset`, growing the file (zero-filled) as needed. Returns an errno. */
  write(file: FileNode, offset: number, src: Uint8Array): number {
    const end = offset + src.length;
    if (end > file.size) {
      const grown = this.resize(file, end);
      if (grown !== errno.success) return grown;
    }
    file.data.set(src, offset);
    file.mtim = file.ctim = this.#now();
    return errno.success;
  }

  /** Sets the file's size, zero-filling growth; ENOSPC past the budget. */
  resize(file: FileNode, size: number): number {
    if (!Number.isSafeInteger(size) || size < 0) return errno.fbig;
    const delta = size - file.size;
    if (delta > 0 && this.#used + delta > this.#capacity) return errno.nospc;
    if (size > file.data.length) {
      // Grow geometrically so a file written in small pieces is not copied at every write.
      const room = Math.min(
        Math.max(size, file.data.length * 2, 64),
        size + (this.#capacity - this.#used - delta),
      );
      const data = new Uint8Array(Math.max(room, size));
      data.set(file.data.subarray(0, file.size));
      file.data = data;
    } else if (delta < 0) {
      file.data.fill(0, size, file.size);
    }
    this.#used += delta;
    file.size = size;
    file.mtim = file.ctim = this.#now();
    return errno.success;
  }

  /** Stat fields of `node`. */
  stat(node: FsNode): NodeStat {
    const base = { ino: node.ino, atim: node.atim, mtim: node.mtim, ctim: node.ctim };
    switch (node.type) {
      case 'file':
        return {
          ...base,
          filetype: filetype.regularFile,
          nlink: BigInt(node.nlink),
          size: BigInt(node.size),
        };
      case 'dir':
        return { ...base, filetype: filetype.directory, nlink: 1n, size: 0n };
      case 'symlink':
        return {
          ...base,
          filetype: filetype.symbolicLink,
          nlink: BigInt(node.nlink),
          size: BigInt(byteLength(node.target)),
        };
    }
  }

  /** The realtime clock the filesystem stamps times with. */
  now(): bigint {
    return this.#now();
  }

  #touch(dir: DirNode): void {
    dir.mtim = dir.ctim = this.#now();
  }

  #release(file: FileNode): void {
    this.#used -= file.size;
    file.size = 0;
    file.data = new Uint8Array(0);
  }
}
