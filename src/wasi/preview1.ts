// Over 400 lines: every preview1 function of the WASI host, in the order of the specification, sharing one descriptor table.
import {
  ALL_RIGHTS,
  clockid,
  DIRECTORY_RIGHTS,
  EVENTRW_HANGUP,
  errno,
  eventtype,
  FILE_RIGHTS,
  fdflags,
  filetype,
  fstflags,
  LOOKUP_SYMLINK_FOLLOW,
  oflags,
  PREVIEW1_SIGNATURES,
  READ_ONLY_RIGHTS,
  riflags,
  rights,
  SUBCLOCK_ABSTIME,
  sdflags,
  sizes,
  whence,
} from './abi.ts';
import { type DirNode, type FileNode, type FsNode, type Lookup, MemFs, type WasiTree } from './fs.ts';
import type { Preview1Net } from './net.ts';
import type { WasmMemory } from './wasm.ts';

// The preview1 functions themselves, independent of threads: stdio, clocks and randomness come in through
// Preview1Options, so the same code runs in the worker and, in tests, on the test's own thread.
//
// Guest pointers are checked against the memory's current size before any byte is read or written; a
// pointer or length out of range returns EFAULT and leaves memory untouched. Nothing the guest passes
// makes a host function throw anything but WasiStop.

/** How a run ended when the host, not the module's own return or trap, ended it. */
export type WasiOutcome =
  | { readonly kind: 'exit'; readonly code: number }
  | { readonly kind: 'limit'; readonly limit: 'memory' | 'output' | 'fds'; readonly message: string };

/**
 * Thrown through the guest's frames to end the run (proc_exit, a limit). Not an Error: it carries an
 * outcome, not a failure, and needs no stack.
 */
export class WasiStop {
  readonly outcome: WasiOutcome;

  constructor(outcome: WasiOutcome) {
    this.outcome = outcome;
  }
}

/** The standard streams as the host sees them; the worker backs them with shared rings. */
export interface Preview1Stdio {
  /**
   * Reads stdin into `dst`: the number of bytes read, 0 at end of input, or -1 when nothing is available
   * and `block` is false. With `block` true, waits until there is data or the input ends.
   */
  readStdin(dst: Uint8Array, block: boolean): number;
  /** Bytes of stdin available now, and whether the input has ended after them. */
  stdinState(): { available: number; ended: boolean };
  /** Waits until stdin's state may have changed, or `timeoutMs` passed (Infinity: no timeout). */
  waitStdin(timeoutMs: number): void;
  /** Waits `timeoutMs` milliseconds. */
  sleep(timeoutMs: number): void;
  /** Takes a copy of `data` for descriptor 1 or 2 before returning. */
  write(fd: 1 | 2, data: Uint8Array): void;
}

/** Clocks in nanoseconds; parameters so tests can pin them. */
export interface Preview1Clock {
  realtime(): bigint;
  monotonic(): bigint;
  cputime(): bigint;
}

/** Everything the preview1 functions need from the outside world. */
export interface Preview1Options {
  args: readonly string[];
  env: Readonly<Record<string, string>>;
  stdin: 'pipe' | 'null';
  io: Preview1Stdio;
  clock: Preview1Clock;
  /** Fills `dst` with cryptographically strong random bytes (at most 65536 at a time). */
  random(dst: Uint8Array): void;
  /** Total bytes stdout and stderr may carry; past it the run ends with limit 'output'. */
  outputLimit?: number;
  /**
   * Checked at every call when the module's own memory maximum could not be lowered (a precompiled
   * module): memory larger than this ends the run with limit 'memory'.
   */
  memoryLimitBytes?: number;
  /** Directories the module finds pre-opened, from descriptor 3 on, by the name it sees. */
  preopens?: Readonly<Record<string, WasiTree>>;
  /** Names of `preopens` the module may only read (the Keep's secrets). */
  readOnlyPreopens?: readonly string[];
  /** Most bytes the files may hold together. Default 64 MiB. */
  fsCapacityBytes?: number;
  /** Most open descriptors; opening one more ends the run with limit 'fds'. Default: no limit. */
  maxFds?: number;
  /**
   * The descriptor table the module starts with, descriptor n being the n-th entry (Enarx.toml's `files`).
   * Default: stdin, stdout and stderr. Pre-opened directories follow it.
   */
  files?: readonly Preview1File[];
  /** The sockets behind `listen` and `socket` entries of `files`; required when there are any. */
  net?: Preview1Net;
}

/**
 * One entry of the initial descriptor table: a standard stream, /dev/null, a listening socket (its
 * connections arrive through `net` under `listener`), or a connected socket (`net` connection `id`).
 */
export type Preview1File =
  | { readonly kind: 'stdin' | 'stdout' | 'stderr' | 'null' }
  | { readonly kind: 'listen'; readonly listener: number }
  | { readonly kind: 'socket'; readonly id: number };

interface EntryCommon {
  flags: number;
  base: bigint;
  inheriting: bigint;
}
type StreamEntry = EntryCommon & { readonly kind: 'stream'; readonly stream: 0 | 1 | 2 };
type FileEntry = EntryCommon & { readonly kind: 'file'; readonly node: FileNode; offset: number };
type DirEntry = EntryCommon & {
  readonly kind: 'dir';
  readonly node: DirNode;
  readonly preopen?: Uint8Array;
  /** Beneath a read-only pre-opened directory: opening for writing is EROFS, as on a read-only mount. */
  readonly readOnly?: true;
};
type NullEntry = EntryCommon & { readonly kind: 'null' };
type ListenerEntry = EntryCommon & { readonly kind: 'listener'; readonly listener: number };
type SocketEntry = EntryCommon & {
  readonly kind: 'socket';
  readonly id: number;
  readShut: boolean;
  writeShut: boolean;
};
type FdEntry = StreamEntry | FileEntry | DirEntry | NullEntry | ListenerEntry | SocketEntry;
/** Descriptors without an offset or a path: a stream of bytes, or a socket. */
type PipeEntry = StreamEntry | NullEntry | ListenerEntry | SocketEntry;

function isPipe(e: FdEntry): e is PipeEntry {
  return e.kind !== 'file' && e.kind !== 'dir';
}

const STDIO_RIGHTS = rights.fdFdstatSetFlags | rights.fdFilestatGet | rights.pollFdReadwrite;
/** What a connected socket may do; an accepted socket gets these, within its listener's inheriting rights. */
const SOCKET_RIGHTS = STDIO_RIGHTS | rights.fdRead | rights.fdWrite | rights.sockShutdown;
const LISTENER_RIGHTS = STDIO_RIGHTS | rights.sockAccept;

/** A preview1 import: the guest passes i32 as number and i64 as bigint; every result is an errno. */
export type Preview1Function = (...args: unknown[]) => number | undefined;

const OK = errno.success;
const U32_MAX = 0xffff_ffff;
const RANDOM_CHUNK = 65536;
const DEFAULT_FS_CAPACITY = 64 * 1024 * 1024;
/** The device number of every in-memory file; stdio reports 0. */
const FS_DEV = 1n;
const ALLOC_FAILED = /memory allocation of (\d{1,15}) bytes failed\n?$/;
const encoder = new TextEncoder();
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function u32(v: unknown): number {
  if (typeof v === 'number') return v >>> 0;
  if (typeof v === 'bigint') return Number(BigInt.asUintN(32, v));
  return 0;
}

function u64(v: unknown): bigint {
  if (typeof v === 'bigint') return BigInt.asUintN(64, v);
  if (typeof v === 'number' && Number.isFinite(v)) return BigInt.asUintN(64, BigInt(Math.trunc(v)));
  return 0n;
}

function encodeStrings(list: readonly string[]): { parts: Uint8Array[]; size: number } {
  const parts = list.map((s) => {
    const b = encoder.encode(s);
    const z = new Uint8Array(b.length + 1);
    z.set(b);
    return z;
  });
  return { parts, size: parts.reduce((n, p) => n + p.length, 0) };
}

/**
 * The WASI preview1 host functions for one instance. Build it, instantiate the module with
 * `{ wasi_snapshot_preview1: p.imports }`, then {@link Preview1.bindMemory} the exported memory.
 */
export class Preview1 {
  /** The import object for `wasi_snapshot_preview1`: every preview1 function, so any command links. */
  readonly imports: Readonly<Record<string, Preview1Function>>;
  readonly #opts: Preview1Options;
  readonly #args: { parts: Uint8Array[]; size: number };
  readonly #env: { parts: Uint8Array[]; size: number };
  readonly #fds = new Map<number, FdEntry>();
  readonly #fs: MemFs;
  #memory: WasmMemory | undefined;
  #buffer: ArrayBuffer | undefined;
  #u8 = new Uint8Array(0);
  #dv = new DataView(new ArrayBuffer(0));
  #outcome: WasiOutcome | undefined;
  #outputUsed = 0;
  #stderrTail = '';

  constructor(options: Preview1Options) {
    this.#opts = options;
    this.#args = encodeStrings(options.args);
    this.#env = encodeStrings(Object.entries(options.env).map(([k, v]) => `${k}=${v}`));
    const files = options.files ?? [{ kind: 'stdin' }, { kind: 'stdout' }, { kind: 'stderr' }];
    let fd = 0;
    for (const file of files) this.#fds.set(fd++, this.#initialEntry(file));
    this.#fs = new MemFs(() => options.clock.realtime(), options.fsCapacityBytes ?? DEFAULT_FS_CAPACITY);
    for (const [name, tree] of Object.entries(options.preopens ?? {})) {
      const readOnly = options.readOnlyPreopens?.includes(name) === true;
      this.#fds.set(fd++, {
        kind: 'dir',
        node: this.#fs.importTree(tree),
        preopen: encoder.encode(name),
        flags: 0,
        base: readOnly ? DIRECTORY_RIGHTS & READ_ONLY_RIGHTS : DIRECTORY_RIGHTS,
        inheriting: readOnly ? READ_ONLY_RIGHTS : ALL_RIGHTS,
        ...(readOnly ? { readOnly: true as const } : {}),
      });
    }
    this.imports = this.#build();
  }

  #initialEntry(file: Preview1File): FdEntry {
    const common = { inheriting: 0n };
    switch (file.kind) {
      case 'stdin':
        return { kind: 'stream', stream: 0, base: STDIO_RIGHTS | rights.fdRead, flags: 0, ...common };
      case 'stdout':
      case 'stderr':
        return {
          kind: 'stream',
          stream: file.kind === 'stdout' ? 1 : 2,
          base: STDIO_RIGHTS | rights.fdWrite,
          flags: fdflags.append,
          ...common,
        };
      case 'null':
        return { kind: 'null', base: STDIO_RIGHTS | rights.fdRead | rights.fdWrite, flags: 0, ...common };
      case 'listen':
        if (this.#opts.net === undefined)
          throw new TypeError('Cannot open a listen file: no sockets were given (net)');
        return {
          kind: 'listener',
          listener: file.listener,
          base: LISTENER_RIGHTS,
          flags: 0,
          inheriting: SOCKET_RIGHTS,
        };
      case 'socket':
        if (this.#opts.net === undefined)
          throw new TypeError('Cannot open a connected socket: no sockets were given (net)');
        return {
          kind: 'socket',
          id: file.id,
          base: SOCKET_RIGHTS,
          flags: 0,
          readShut: false,
          writeShut: false,
          ...common,
        };
    }
  }

  /** Gives the host the instance's memory; until then every pointer is out of range. */
  bindMemory(memory: WasmMemory | undefined): void {
    this.#memory = memory;
    this.#buffer = undefined;
  }

  /** The outcome a host function recorded (proc_exit, a limit), if any; the first one wins. */
  get outcome(): WasiOutcome | undefined {
    return this.#outcome;
  }

  /**
   * When the module's last stderr output is Rust's "memory allocation of N bytes failed" and N more
   * bytes would indeed not fit under `limitBytes`, returns N: the trap that follows is the memory limit.
   */
  allocationFailure(limitBytes: number): number | undefined {
    const m = ALLOC_FAILED.exec(this.#stderrTail);
    if (m === null) return undefined;
    const n = Number(m[1]);
    const size = this.#memory?.buffer.byteLength ?? 0;
    return size + n > limitBytes ? n : undefined;
  }

  /** Records `outcome` (unless one is recorded already) and unwinds the guest. */
  stop(outcome: WasiOutcome): never {
    this.#outcome ??= outcome;
    throw new WasiStop(this.#outcome);
  }

  #enter(): void {
    // A guest that caught the unwinding (wasm exception handling can) gets stopped again at its next call.
    if (this.#outcome !== undefined) throw new WasiStop(this.#outcome);
    const limit = this.#opts.memoryLimitBytes;
    if (limit !== undefined && this.#memory !== undefined && this.#memory.buffer.byteLength > limit) {
      this.stop({
        kind: 'limit',
        limit: 'memory',
        message: `Memory grew to ${this.#memory.buffer.byteLength} bytes, over the limit of ${limit}`,
      });
    }
  }

  #refresh(): void {
    const memory = this.#memory;
    if (memory === undefined) return;
    const buffer = memory.buffer;
    if (buffer === this.#buffer) return;
    this.#buffer = buffer;
    this.#u8 = new Uint8Array(buffer);
    this.#dv = new DataView(buffer);
  }

  /** Whether [ptr, ptr + len) lies in memory; call after #refresh. */
  #ok(ptr: number, len: number): boolean {
    return ptr + len <= this.#u8.length;
  }

  #emit(stream: 1 | 2, data: Uint8Array): void {
    const limit = this.#opts.outputLimit;
    if (limit !== undefined && this.#outputUsed + data.length > limit) {
      const room = limit - this.#outputUsed;
      if (room > 0) this.#deliver(stream, data.subarray(0, room));
      this.#outputUsed = limit;
      this.stop({ kind: 'limit', limit: 'output', message: `Output exceeded the limit of ${limit} bytes` });
    }
    this.#outputUsed += data.length;
    this.#deliver(stream, data);
  }

  #deliver(stream: 1 | 2, data: Uint8Array): void {
    if (data.length === 0) return;
    this.#opts.io.write(stream, data);
    if (stream === 2) {
      const tail = data.length > 96 ? data.subarray(data.length - 96) : data;
      this.#stderrTail = (this.#stderrTail + String.fromCharCode(...tail)).slice(-96);
    }
  }

  /** Reads an iovec array; returns the [ptr, len] pairs or an errno. */
  #iovecs(iovs: number, count: number): number[] | number {
    if (!this.#ok(iovs, count * sizes.iovec)) return errno.fault;
    const out: number[] = [];
    let total = 0;
    for (let i = 0; i < count; i++) {
      const ptr = this.#dv.getUint32(iovs + i * sizes.iovec, true);
      const len = this.#dv.getUint32(iovs + i * sizes.iovec + 4, true);
      if (!this.#ok(ptr, len)) return errno.fault;
      total += len;
      out.push(ptr, len);
    }
    return total > U32_MAX ? errno.inval : out;
  }

  /** Reads a path argument: EFAULT out of range, EILSEQ when not UTF-8. */
  #string(ptr: unknown, len: unknown): string | number {
    this.#refresh();
    const p = u32(ptr);
    const n = u32(len);
    if (!this.#ok(p, n)) return errno.fault;
    try {
      return utf8.decode(this.#u8.subarray(p, p + n));
    } catch {
      return errno.ilseq;
    }
  }

  #strings(list: { parts: Uint8Array[] }, ptrs: number, buf: number): number {
    this.#refresh();
    const size = list.parts.reduce((n, p) => n + p.length, 0);
    if (!this.#ok(ptrs, list.parts.length * 4) || !this.#ok(buf, size)) return errno.fault;
    let at = buf;
    list.parts.forEach((p, i) => {
      this.#dv.setUint32(ptrs + i * 4, at, true);
      this.#u8.set(p, at);
      at += p.length;
    });
    return OK;
  }

  #sizes(list: { parts: Uint8Array[]; size: number }, countPtr: number, sizePtr: number): number {
    this.#refresh();
    if (!this.#ok(countPtr, 4) || !this.#ok(sizePtr, 4)) return errno.fault;
    this.#dv.setUint32(countPtr, list.parts.length, true);
    this.#dv.setUint32(sizePtr, list.size, true);
    return OK;
  }

  #clockNow(id: number): bigint | undefined {
    const c = this.#opts.clock;
    switch (id) {
      case clockid.realtime:
        return c.realtime();
      case clockid.monotonic:
        return c.monotonic();
      case clockid.processCputime:
      case clockid.threadCputime:
        return c.cputime();
      default:
        return undefined;
    }
  }

  /** The entry of `fd` when it holds `right`; EBADF for an unknown descriptor, ENOTCAPABLE without the right. */
  #need(fd: unknown, right: bigint): FdEntry | number {
    const e = this.#fds.get(u32(fd));
    if (e === undefined) return errno.badf;
    return (e.base & right) === right ? e : errno.notcapable;
  }

  /** The directory entry of `fd` holding `right`: EBADF unknown, ENOTDIR not a directory, ENOTCAPABLE. */
  #dirAt(fd: unknown, right: bigint): DirEntry | number {
    const e = this.#fds.get(u32(fd));
    if (e === undefined) return errno.badf;
    if (e.kind !== 'dir') return errno.notdir;
    return (e.base & right) === right ? e : errno.notcapable;
  }

  /** Resolves a path argument relative to directory `fd`. */
  #lookup(fd: unknown, right: bigint, ptr: unknown, len: unknown, follow: boolean): Lookup | number {
    const dir = this.#dirAt(fd, right);
    if (typeof dir === 'number') return dir;
    const path = this.#string(ptr, len);
    if (typeof path === 'number') return path;
    return this.#fs.lookup(dir.node, path, follow);
  }

  /**
   * The connected socket at `fd` holding `right`: EBADF unknown, ENOTCONN a listening socket, ENOTSOCK not a
   * socket, ENOTCAPABLE without the right.
   */
  #socketAt(fd: unknown, right: bigint): SocketEntry | number {
    const e = this.#fds.get(u32(fd));
    if (e === undefined) return errno.badf;
    if (e.kind === 'listener') return errno.notconn;
    if (e.kind !== 'socket') return errno.notsock;
    return (e.base & right) === right ? e : errno.notcapable;
  }

  #filetypeOf(e: FdEntry): number {
    switch (e.kind) {
      case 'stream':
      case 'null':
        return filetype.characterDevice;
      case 'listener':
      case 'socket':
        return filetype.socketStream;
      case 'file':
        return filetype.regularFile;
      case 'dir':
        return filetype.directory;
    }
  }

  /** A descriptor with no times or size: what a pipe, a device or a socket looks like. */
  #pipeFilestat(ptr: number, type: number): void {
    this.#u8.fill(0, ptr, ptr + sizes.filestat);
    this.#dv.setUint8(ptr + 16, type);
    this.#dv.setBigUint64(ptr + 24, 1n, true);
  }

  #filestat(ptr: number, stat: ReturnType<MemFs['stat']>): void {
    this.#u8.fill(0, ptr, ptr + sizes.filestat);
    this.#dv.setBigUint64(ptr, FS_DEV, true);
    this.#dv.setBigUint64(ptr + 8, stat.ino, true);
    this.#dv.setUint8(ptr + 16, stat.filetype);
    this.#dv.setBigUint64(ptr + 24, stat.nlink, true);
    this.#dv.setBigUint64(ptr + 32, stat.size, true);
    this.#dv.setBigUint64(ptr + 40, stat.atim, true);
    this.#dv.setBigUint64(ptr + 48, stat.mtim, true);
    this.#dv.setBigUint64(ptr + 56, stat.ctim, true);
  }

  /** Applies fd_filestat_set_times / path_filestat_set_times to `node`. */
  #setTimes(node: FsNode, atim: unknown, mtim: unknown, flags: number): number {
    const now = this.#fs.now();
    if ((flags & fstflags.atimNow) !== 0) node.atim = now;
    else if ((flags & fstflags.atim) !== 0) node.atim = u64(atim);
    if ((flags & fstflags.mtimNow) !== 0) node.mtim = now;
    else if ((flags & fstflags.mtim) !== 0) node.mtim = u64(mtim);
    if (flags !== 0) node.ctim = now;
    return OK;
  }

  #badTimeFlags(flags: number): boolean {
    // ATIM with ATIM_NOW, or MTIM with MTIM_NOW, contradict each other.
    return flags > 0x0f || (flags & 0x03) === 0x03 || (flags & 0x0c) === 0x0c;
  }

  #closeEntry(e: FdEntry): void {
    if (e.kind === 'file') this.#fs.closed(e.node);
    else if (e.kind === 'socket') this.#net.close(e.id);
    else if (e.kind === 'listener') this.#net.closeListener(e.listener);
  }

  /** The sockets; only descriptors made from them exist without it, so it is there when they are. */
  get #net(): Preview1Net {
    const net = this.#opts.net;
    if (net === undefined) throw new TypeError('Cannot use a socket: no sockets were given (net)');
    return net;
  }

  /**
   * Reads from a connected socket into the iovecs: the count (0 at end of stream or after a read shutdown),
   * or a negated errno. Blocks unless the descriptor is non-blocking; with `waitAll`, until the iovecs are
   * full or the stream ends.
   */
  #socketRead(e: SocketEntry, list: number[], peek: boolean, waitAll: boolean): number {
    let want = 0;
    for (let i = 1; i < list.length; i += 2) want += list[i]!;
    if (want === 0 || e.readShut) return 0;
    const net = this.#net;
    const nonblock = (e.flags & fdflags.nonblock) !== 0;
    let got = 0;
    for (;;) {
      const seq = net.seq();
      const st = net.state(e.id);
      if (peek) {
        // Nothing is consumed, so a peek waits until the whole answer is there at once.
        const enough = waitAll ? st.available >= want : st.available > 0;
        if (enough || st.ended || st.reset || nonblock) {
          if (st.available === 0) {
            if (st.reset) return -errno.connreset;
            if (st.ended) return 0;
            return -errno.again;
          }
          const tmp = new Uint8Array(Math.min(want, st.available));
          const n = net.recv(e.id, tmp, true);
          let at = 0;
          for (let i = 0; i < list.length && at < n; i += 2) {
            const take = Math.min(list[i + 1]!, n - at);
            this.#u8.set(tmp.subarray(at, at + take), list[i]!);
            at += take;
          }
          return n;
        }
      } else if (st.available > 0) {
        // Skip the iovecs already filled, then fill on from where the last read stopped.
        let skip = got;
        for (let i = 0; i < list.length; i += 2) {
          const len = list[i + 1]!;
          if (skip >= len) {
            skip -= len;
            continue;
          }
          const ptr = list[i]! + skip;
          const n = net.recv(e.id, this.#u8.subarray(ptr, list[i]! + len), false);
          skip = 0;
          got += n;
          if (n < len) break;
        }
        if (got === want || !waitAll) return got;
        continue;
      } else {
        if (st.reset) return got > 0 ? got : -errno.connreset;
        if (st.ended) return got;
        if (nonblock) return got > 0 ? got : -errno.again;
      }
      net.wait(seq, Number.POSITIVE_INFINITY);
    }
  }

  /**
   * Writes the iovecs to a connected socket: the count, or a negated errno. A blocking descriptor waits until
   * everything is handed over; a non-blocking one takes what fits (EAGAIN when nothing does).
   */
  #socketWrite(e: SocketEntry, list: number[]): number {
    if (e.writeShut) return -errno.pipe;
    const net = this.#net;
    if (net.state(e.id).reset) return -errno.connreset;
    const nonblock = (e.flags & fdflags.nonblock) !== 0;
    let sent = 0;
    for (let i = 0; i < list.length; i += 2) {
      const ptr = list[i]!;
      const len = list[i + 1]!;
      let at = 0;
      while (at < len) {
        const seq = net.seq();
        const n = net.send(e.id, this.#u8.subarray(ptr + at, ptr + len));
        if (n > 0) {
          at += n;
          sent += n;
          continue;
        }
        if (net.state(e.id).reset) return sent > 0 ? sent : -errno.connreset;
        if (nonblock) return sent > 0 ? sent : -errno.again;
        net.wait(seq, Number.POSITIVE_INFINITY);
      }
    }
    return sent;
  }

  #lowestFreeFd(): number {
    let fd = 0;
    while (this.#fds.has(fd)) fd++;
    return fd;
  }

  #readFile(e: FileEntry, list: number[], offset: number): number {
    let read = 0;
    let at = offset;
    for (let i = 0; i < list.length; i += 2) {
      const ptr = list[i]!;
      const len = list[i + 1]!;
      const n = this.#fs.read(e.node, at, this.#u8.subarray(ptr, ptr + len));
      read += n;
      at += n;
      if (n < len) break;
    }
    return read;
  }

  /** Writes the iovecs at `offset`; returns [bytes written, errno of the first failure or success]. */
  #writeFile(e: FileEntry, list: number[], offset: number): [number, number] {
    let written = 0;
    for (let i = 0; i < list.length; i += 2) {
      const ptr = list[i]!;
      const len = list[i + 1]!;
      const err = this.#fs.write(e.node, offset + written, this.#u8.subarray(ptr, ptr + len));
      if (err !== OK) return [written, err];
      written += len;
    }
    return [written, OK];
  }

  #build(): Record<string, Preview1Function> {
    const f: Record<string, Preview1Function> = {
      args_get: (argv, buf) => {
        this.#enter();
        return this.#strings(this.#args, u32(argv), u32(buf));
      },
      args_sizes_get: (count, size) => {
        this.#enter();
        return this.#sizes(this.#args, u32(count), u32(size));
      },
      environ_get: (environ, buf) => {
        this.#enter();
        return this.#strings(this.#env, u32(environ), u32(buf));
      },
      environ_sizes_get: (count, size) => {
        this.#enter();
        return this.#sizes(this.#env, u32(count), u32(size));
      },
      clock_res_get: (id, out) => {
        this.#enter();
        const clock = u32(id);
        if (clock > clockid.threadCputime) return errno.inval;
        this.#refresh();
        const ptr = u32(out);
        if (!this.#ok(ptr, 8)) return errno.fault;
        this.#dv.setBigUint64(ptr, clock === clockid.monotonic ? 1n : 1000n, true);
        return OK;
      },
      clock_time_get: (id, _precision, out) => {
        this.#enter();
        const now = this.#clockNow(u32(id));
        if (now === undefined) return errno.inval;
        this.#refresh();
        const ptr = u32(out);
        if (!this.#ok(ptr, 8)) return errno.fault;
        this.#dv.setBigUint64(ptr, BigInt.asUintN(64, now), true);
        return OK;
      },
      random_get: (buf, len) => {
        this.#enter();
        const ptr = u32(buf);
        const n = u32(len);
        this.#refresh();
        if (!this.#ok(ptr, n)) return errno.fault;
        for (let at = 0; at < n; at += RANDOM_CHUNK) {
          this.#opts.random(this.#u8.subarray(ptr + at, ptr + Math.min(n, at + RANDOM_CHUNK)));
        }
        return OK;
      },
      fd_write: (fd, iovs, iovsLen, nwritten) => {
        this.#enter();
        const e = this.#fds.get(u32(fd));
        if (e?.kind === 'listener') return errno.notconn;
        // POSIX answers EBADF for a descriptor not open for writing.
        if (e === undefined || (e.base & rights.fdWrite) === 0n || e.kind === 'dir') return errno.badf;
        this.#refresh();
        const out = u32(nwritten);
        if (!this.#ok(out, 4)) return errno.fault;
        const list = this.#iovecs(u32(iovs), u32(iovsLen));
        if (typeof list === 'number') return list;
        let written = 0;
        if (e.kind === 'null') {
          for (let i = 1; i < list.length; i += 2) written += list[i]!;
        } else if (e.kind === 'socket') {
          const sent = this.#socketWrite(e, list);
          if (sent < 0) return -sent;
          written = sent;
        } else if (e.kind === 'stream') {
          if (e.stream === 0) return errno.badf;
          for (let i = 0; i < list.length; i += 2) {
            const ptr = list[i]!;
            const len = list[i + 1]!;
            this.#emit(e.stream, this.#u8.subarray(ptr, ptr + len));
            written += len;
          }
        } else {
          if ((e.flags & fdflags.append) !== 0) e.offset = e.node.size;
          const [n, err] = this.#writeFile(e, list, e.offset);
          e.offset += n;
          if (n === 0 && err !== OK) return err;
          written = n;
        }
        this.#dv.setUint32(out, written, true);
        return OK;
      },
      fd_read: (fd, iovs, iovsLen, nread) => {
        this.#enter();
        const e = this.#fds.get(u32(fd));
        if (e?.kind === 'listener') return errno.notconn;
        if (e === undefined || (e.base & rights.fdRead) === 0n || e.kind === 'dir') return errno.badf;
        this.#refresh();
        const out = u32(nread);
        if (!this.#ok(out, 4)) return errno.fault;
        const list = this.#iovecs(u32(iovs), u32(iovsLen));
        if (typeof list === 'number') return list;
        let read = 0;
        if (e.kind === 'null') {
          // End of input, as /dev/null reads.
        } else if (e.kind === 'socket') {
          const got = this.#socketRead(e, list, false, false);
          if (got < 0) return -got;
          read = got;
        } else if (e.kind === 'file') {
          read = this.#readFile(e, list, e.offset);
          e.offset += read;
        } else if (e.stream !== 0) {
          return errno.badf;
        } else if (this.#opts.stdin === 'pipe') {
          const nonblock = (e.flags & fdflags.nonblock) !== 0;
          for (let i = 0; i < list.length; i += 2) {
            const ptr = list[i]!;
            const len = list[i + 1]!;
            if (len === 0) continue;
            const n = this.#opts.io.readStdin(this.#u8.subarray(ptr, ptr + len), read === 0 && !nonblock);
            if (n < 0) {
              if (read === 0) return errno.again;
              break;
            }
            read += n;
            if (n < len) break;
          }
        }
        this.#dv.setUint32(out, read, true);
        return OK;
      },
      fd_pread: (fd, iovs, iovsLen, offset, nread) => {
        this.#enter();
        const e = this.#fds.get(u32(fd));
        if (e === undefined) return errno.badf;
        if (isPipe(e)) return errno.spipe;
        if (e.kind === 'dir') return errno.isdir;
        if ((e.base & rights.fdRead) === 0n) return errno.badf;
        this.#refresh();
        const out = u32(nread);
        if (!this.#ok(out, 4)) return errno.fault;
        const list = this.#iovecs(u32(iovs), u32(iovsLen));
        if (typeof list === 'number') return list;
        const at = u64(offset);
        const read = at >= BigInt(e.node.size) ? 0 : this.#readFile(e, list, Number(at));
        this.#dv.setUint32(out, read, true);
        return OK;
      },
      fd_pwrite: (fd, iovs, iovsLen, offset, nwritten) => {
        this.#enter();
        const e = this.#fds.get(u32(fd));
        if (e === undefined) return errno.badf;
        if (isPipe(e)) return errno.spipe;
        if (e.kind === 'dir') return errno.isdir;
        if ((e.base & rights.fdWrite) === 0n) return errno.badf;
        this.#refresh();
        const out = u32(nwritten);
        if (!this.#ok(out, 4)) return errno.fault;
        const list = this.#iovecs(u32(iovs), u32(iovsLen));
        if (typeof list === 'number') return list;
        const at = u64(offset);
        if (at > BigInt(Number.MAX_SAFE_INTEGER)) return errno.fbig;
        const [n, err] = this.#writeFile(e, list, Number(at));
        if (n === 0 && err !== OK) return err;
        this.#dv.setUint32(out, n, true);
        return OK;
      },
      fd_seek: (fd, delta, how, out) => {
        this.#enter();
        const e = this.#fds.get(u32(fd));
        if (e === undefined) return errno.badf;
        if (isPipe(e)) return errno.spipe;
        const w = u32(how);
        const d = BigInt.asIntN(64, u64(delta));
        // Asking where the offset is needs only fd_tell, as libc's ftell does with SEEK_CUR 0.
        const right = w === whence.cur && d === 0n ? rights.fdTell : rights.fdSeek;
        if ((e.base & right) === 0n) return errno.notcapable;
        if (e.kind === 'dir') return errno.isdir;
        this.#refresh();
        const ptr = u32(out);
        if (!this.#ok(ptr, 8)) return errno.fault;
        let from: bigint;
        if (w === whence.set) from = 0n;
        else if (w === whence.cur) from = BigInt(e.offset);
        else if (w === whence.end) from = BigInt(e.node.size);
        else return errno.inval;
        const next = from + d;
        if (next < 0n) return errno.inval;
        if (next > BigInt(Number.MAX_SAFE_INTEGER)) return errno.overflow;
        e.offset = Number(next);
        this.#dv.setBigUint64(ptr, next, true);
        return OK;
      },
      fd_tell: (fd, out) => {
        this.#enter();
        const e = this.#fds.get(u32(fd));
        if (e === undefined) return errno.badf;
        if (isPipe(e)) return errno.spipe;
        if ((e.base & rights.fdTell) === 0n) return errno.notcapable;
        if (e.kind === 'dir') return errno.isdir;
        this.#refresh();
        const ptr = u32(out);
        if (!this.#ok(ptr, 8)) return errno.fault;
        this.#dv.setBigUint64(ptr, BigInt(e.offset), true);
        return OK;
      },
      fd_fdstat_get: (fd, out) => {
        this.#enter();
        const e = this.#fds.get(u32(fd));
        if (e === undefined) return errno.badf;
        this.#refresh();
        const ptr = u32(out);
        if (!this.#ok(ptr, sizes.fdstat)) return errno.fault;
        const type = this.#filetypeOf(e);
        this.#u8.fill(0, ptr, ptr + sizes.fdstat);
        this.#dv.setUint8(ptr, type);
        this.#dv.setUint16(ptr + 2, e.flags, true);
        this.#dv.setBigUint64(ptr + 8, e.base, true);
        this.#dv.setBigUint64(ptr + 16, e.inheriting, true);
        return OK;
      },
      fd_fdstat_set_flags: (fd, flags) => {
        this.#enter();
        const e = this.#need(fd, rights.fdFdstatSetFlags);
        if (typeof e === 'number') return e;
        const v = u32(flags);
        if (v > 0x1f) return errno.inval;
        // Synchronised I/O means nothing for a stream; say so rather than pretend. Memory is always "synced".
        if (isPipe(e) && (v & (fdflags.dsync | fdflags.rsync | fdflags.sync)) !== 0) return errno.notsup;
        e.flags = v;
        return OK;
      },
      fd_fdstat_set_rights: (fd, base, inheriting) => {
        this.#enter();
        const e = this.#fds.get(u32(fd));
        if (e === undefined) return errno.badf;
        const b = u64(base);
        const i = u64(inheriting);
        if ((b & ~e.base) !== 0n || (i & ~e.inheriting) !== 0n) return errno.notcapable;
        e.base = b;
        e.inheriting = i;
        return OK;
      },
      fd_filestat_get: (fd, out) => {
        this.#enter();
        const e = this.#need(fd, rights.fdFilestatGet);
        if (typeof e === 'number') return e;
        this.#refresh();
        const ptr = u32(out);
        if (!this.#ok(ptr, sizes.filestat)) return errno.fault;
        if (isPipe(e)) this.#pipeFilestat(ptr, this.#filetypeOf(e));
        else this.#filestat(ptr, this.#fs.stat(e.node));
        return OK;
      },
      fd_filestat_set_size: (fd, size) => {
        this.#enter();
        const e = this.#fds.get(u32(fd));
        if (e === undefined) return errno.badf;
        if (isPipe(e)) return errno.inval;
        if ((e.base & rights.fdFilestatSetSize) === 0n) return errno.notcapable;
        if (e.kind === 'dir') return errno.isdir;
        const s = u64(size);
        if (s > BigInt(Number.MAX_SAFE_INTEGER)) return errno.fbig;
        return this.#fs.resize(e.node, Number(s));
      },
      fd_filestat_set_times: (fd, atim, mtim, flags) => {
        this.#enter();
        const e = this.#fds.get(u32(fd));
        if (e === undefined) return errno.badf;
        const v = u32(flags);
        if (this.#badTimeFlags(v)) return errno.inval;
        if (isPipe(e)) return errno.notsup;
        if ((e.base & rights.fdFilestatSetTimes) === 0n) return errno.notcapable;
        return this.#setTimes(e.node, atim, mtim, v);
      },
      fd_advise: (fd, _offset, _len, advice) => {
        this.#enter();
        const e = this.#fds.get(u32(fd));
        if (e === undefined) return errno.badf;
        if (u32(advice) > 5) return errno.inval;
        if (isPipe(e)) return errno.spipe;
        if ((e.base & rights.fdAdvise) === 0n) return errno.notcapable;
        return e.kind === 'dir' ? errno.isdir : OK;
      },
      fd_allocate: (fd, offset, len) => {
        this.#enter();
        const e = this.#fds.get(u32(fd));
        if (e === undefined) return errno.badf;
        if (isPipe(e)) return errno.spipe;
        if ((e.base & rights.fdAllocate) === 0n) return errno.notcapable;
        if (e.kind === 'dir') return errno.isdir;
        const end = u64(offset) + u64(len);
        if (end > BigInt(Number.MAX_SAFE_INTEGER)) return errno.fbig;
        return end > BigInt(e.node.size) ? this.#fs.resize(e.node, Number(end)) : OK;
      },
      fd_datasync: (fd) => {
        this.#enter();
        const e = this.#fds.get(u32(fd));
        if (e === undefined) return errno.badf;
        if (isPipe(e)) return errno.inval;
        return (e.base & rights.fdDatasync) === 0n ? errno.notcapable : OK;
      },
      fd_sync: (fd) => {
        this.#enter();
        const e = this.#fds.get(u32(fd));
        if (e === undefined) return errno.badf;
        if (isPipe(e)) return errno.inval;
        return (e.base & rights.fdSync) === 0n ? errno.notcapable : OK;
      },
      fd_close: (fd) => {
        this.#enter();
        const n = u32(fd);
        const e = this.#fds.get(n);
        if (e === undefined) return errno.badf;
        this.#fds.delete(n);
        this.#closeEntry(e);
        return OK;
      },
      fd_renumber: (from, to) => {
        this.#enter();
        const a = u32(from);
        const b = u32(to);
        const e = this.#fds.get(a);
        const replaced = this.#fds.get(b);
        // A closed standard descriptor may be renumbered onto, as dup2() onto stdout does after closing it
        // (Yosys does this around ABC); any other closed target is EBADF, as the spec's tests expect.
        if (e === undefined || (replaced === undefined && b > 2)) return errno.badf;
        if (a !== b) {
          if (replaced !== undefined) this.#closeEntry(replaced);
          this.#fds.set(b, e);
          this.#fds.delete(a);
        }
        return OK;
      },
      fd_prestat_get: (fd, out) => {
        this.#enter();
        const e = this.#fds.get(u32(fd));
        // Only pre-opened directories answer; EBADF elsewhere is what ends libc's scan for them.
        if (e === undefined || e.kind !== 'dir' || e.preopen === undefined) return errno.badf;
        this.#refresh();
        const ptr = u32(out);
        if (!this.#ok(ptr, 8)) return errno.fault;
        this.#dv.setUint32(ptr, 0, true);
        this.#dv.setUint32(ptr + 4, e.preopen.length, true);
        return OK;
      },
      fd_prestat_dir_name: (fd, path, len) => {
        this.#enter();
        const e = this.#fds.get(u32(fd));
        if (e === undefined || e.kind !== 'dir' || e.preopen === undefined) return errno.badf;
        const n = u32(len);
        if (n < e.preopen.length) return errno.nametoolong;
        this.#refresh();
        const ptr = u32(path);
        if (!this.#ok(ptr, e.preopen.length)) return errno.fault;
        this.#u8.set(e.preopen, ptr);
        return OK;
      },
      fd_readdir: (fd, buf, bufLen, cookie, out) => {
        this.#enter();
        const e = this.#fds.get(u32(fd));
        if (e === undefined) return errno.badf;
        if (e.kind !== 'dir') return errno.notdir;
        if ((e.base & rights.fdReaddir) === 0n) return errno.notcapable;
        this.#refresh();
        const ptr = u32(buf);
        const len = u32(bufLen);
        const outPtr = u32(out);
        if (!this.#ok(ptr, len) || !this.#ok(outPtr, 4)) return errno.fault;
        const listing: [string, FsNode][] = [['.', e.node], ['..', e.node], ...e.node.entries];
        const start = u64(cookie);
        let used = 0;
        for (
          let i = Number(start < BigInt(listing.length) ? start : BigInt(listing.length));
          i < listing.length;
          i++
        ) {
          if (used >= len) break;
          const [name, node] = listing[i]!;
          const nameBytes = encoder.encode(name);
          const entry = new Uint8Array(sizes.dirent + nameBytes.length);
          const dv = new DataView(entry.buffer);
          dv.setBigUint64(0, BigInt(i + 1), true);
          dv.setBigUint64(8, node.ino, true);
          dv.setUint32(16, nameBytes.length, true);
          dv.setUint8(20, this.#fs.stat(node).filetype);
          entry.set(nameBytes, sizes.dirent);
          // A last entry that does not fit is cut short; the caller sees a full buffer and retries larger.
          const n = Math.min(entry.length, len - used);
          this.#u8.set(entry.subarray(0, n), ptr + used);
          used += n;
        }
        this.#dv.setUint32(outPtr, used, true);
        return OK;
      },
      path_open: (fd, dirflags, path, pathLen, flags, base, inheriting, fdFlags, out) => {
        this.#enter();
        const dir = this.#dirAt(fd, rights.pathOpen);
        if (typeof dir === 'number') return dir;
        const o = u32(flags);
        const ff = u32(fdFlags);
        if (o > 0x0f || ff > 0x1f) return errno.inval;
        if ((o & oflags.creat) !== 0 && (dir.base & rights.pathCreateFile) === 0n) return errno.notcapable;
        if ((o & oflags.trunc) !== 0 && (dir.base & rights.pathFilestatSetSize) === 0n)
          return errno.notcapable;
        // Opening for writing beneath a read-only directory: what a read-only mount answers.
        if (dir.readOnly && (u64(base) & rights.fdWrite) !== 0n) return errno.rofs;
        this.#refresh();
        const outPtr = u32(out);
        if (!this.#ok(outPtr, 4)) return errno.fault;
        const p = this.#string(path, pathLen);
        if (typeof p === 'number') return p;
        const at = this.#fs.lookup(dir.node, p, (u32(dirflags) & LOOKUP_SYMLINK_FOLLOW) !== 0);
        if (typeof at === 'number') return at;
        const wantBase = u64(base);
        let node = at.node;
        if (node === undefined) {
          if ((o & oflags.creat) === 0) return errno.noent;
          if ((o & oflags.directory) !== 0) return errno.inval;
          if (at.trailingSlash) return errno.isdir;
          this.#checkFds();
          const made = this.#fs.createFile(at.parent, at.name);
          if (typeof made === 'number') return made;
          node = made;
        } else {
          if ((o & oflags.creat) !== 0 && (o & oflags.excl) !== 0) return errno.exist;
          // Not followed (no SYMLINK_FOLLOW): opening the link itself is O_NOFOLLOW's ELOOP.
          if (node.type === 'symlink') return errno.loop;
          if (node.type !== 'dir' && ((o & oflags.directory) !== 0 || at.trailingSlash)) return errno.notdir;
          if (node.type === 'dir' && ((o & oflags.trunc) !== 0 || (wantBase & rights.fdWrite) !== 0n)) {
            return errno.isdir;
          }
          this.#checkFds();
          if (node.type === 'file' && (o & oflags.trunc) !== 0) {
            const err = this.#fs.resize(node, 0);
            if (err !== OK) return err;
          }
        }
        const n = this.#lowestFreeFd();
        if (node.type === 'dir') {
          this.#fds.set(n, {
            kind: 'dir',
            node,
            flags: ff,
            base: wantBase & dir.inheriting & DIRECTORY_RIGHTS,
            inheriting: u64(inheriting) & dir.inheriting,
            ...(dir.readOnly ? { readOnly: true as const } : {}),
          });
        } else if (node.type === 'file') {
          this.#fs.opened(node);
          this.#fds.set(n, {
            kind: 'file',
            node,
            offset: 0,
            flags: ff,
            base: wantBase & dir.inheriting & FILE_RIGHTS,
            inheriting: u64(inheriting) & dir.inheriting,
          });
        }
        this.#dv.setUint32(outPtr, n, true);
        return OK;
      },
      path_create_directory: (fd, path, len) => {
        this.#enter();
        const at = this.#lookup(fd, rights.pathCreateDirectory, path, len, false);
        if (typeof at === 'number') return at;
        if (at.self || at.node !== undefined) return errno.exist;
        const made = this.#fs.createDirectory(at.parent, at.name);
        return typeof made === 'number' ? made : OK;
      },
      path_filestat_get: (fd, flags, path, len, out) => {
        this.#enter();
        this.#refresh();
        const ptr = u32(out);
        if (!this.#ok(ptr, sizes.filestat)) return errno.fault;
        const follow = (u32(flags) & LOOKUP_SYMLINK_FOLLOW) !== 0;
        const at = this.#lookup(fd, rights.pathFilestatGet, path, len, follow);
        if (typeof at === 'number') return at;
        if (at.node === undefined) return errno.noent;
        if (at.trailingSlash && at.node.type !== 'dir') return errno.notdir;
        this.#filestat(ptr, this.#fs.stat(at.node));
        return OK;
      },
      path_filestat_set_times: (fd, flags, path, len, atim, mtim, fst) => {
        this.#enter();
        const v = u32(fst);
        if (this.#badTimeFlags(v)) return errno.inval;
        const follow = (u32(flags) & LOOKUP_SYMLINK_FOLLOW) !== 0;
        const at = this.#lookup(fd, rights.pathFilestatSetTimes, path, len, follow);
        if (typeof at === 'number') return at;
        if (at.node === undefined) return errno.noent;
        if (at.trailingSlash && at.node.type !== 'dir') return errno.notdir;
        return this.#setTimes(at.node, atim, mtim, v);
      },
      path_link: (oldFd, oldFlags, oldPath, oldLen, newFd, newPath, newLen) => {
        this.#enter();
        const follow = (u32(oldFlags) & LOOKUP_SYMLINK_FOLLOW) !== 0;
        const from = this.#lookup(oldFd, rights.pathLinkSource, oldPath, oldLen, follow);
        if (typeof from === 'number') return from;
        const to = this.#lookup(newFd, rights.pathLinkTarget, newPath, newLen, false);
        if (typeof to === 'number') return to;
        if (from.node === undefined) return errno.noent;
        // Hard links to directories would make the tree a graph.
        if (from.node.type === 'dir') return errno.perm;
        if (from.trailingSlash) return errno.notdir;
        if (to.self || to.node !== undefined) return errno.exist;
        if (to.trailingSlash) return errno.noent;
        return this.#fs.link(from.node, to.parent, to.name);
      },
      path_readlink: (fd, path, len, buf, bufLen, out) => {
        this.#enter();
        this.#refresh();
        const ptr = u32(buf);
        const n = u32(bufLen);
        const outPtr = u32(out);
        if (!this.#ok(ptr, n) || !this.#ok(outPtr, 4)) return errno.fault;
        const at = this.#lookup(fd, rights.pathReadlink, path, len, false);
        if (typeof at === 'number') return at;
        if (at.node === undefined) return errno.noent;
        if (at.node.type !== 'symlink') return errno.inval;
        const target = encoder.encode(at.node.target);
        const count = Math.min(n, target.length);
        this.#u8.set(target.subarray(0, count), ptr);
        this.#dv.setUint32(outPtr, count, true);
        return OK;
      },
      path_remove_directory: (fd, path, len) => {
        this.#enter();
        const at = this.#lookup(fd, rights.pathRemoveDirectory, path, len, false);
        if (typeof at === 'number') return at;
        if (at.self) return errno.inval;
        if (at.node === undefined) return errno.noent;
        if (at.node.type !== 'dir') return errno.notdir;
        if (at.node.entries.size > 0) return errno.notempty;
        this.#fs.remove(at.parent, at.name);
        return OK;
      },
      path_unlink_file: (fd, path, len) => {
        this.#enter();
        const at = this.#lookup(fd, rights.pathUnlinkFile, path, len, false);
        if (typeof at === 'number') return at;
        if (at.self) return errno.isdir;
        if (at.node === undefined) return errno.noent;
        if (at.node.type === 'dir') return errno.isdir;
        if (at.trailingSlash) return errno.notdir;
        this.#fs.remove(at.parent, at.name);
        return OK;
      },
      path_rename: (fd, oldPath, oldLen, newFd, newPath, newLen) => {
        this.#enter();
        const from = this.#lookup(fd, rights.pathRenameSource, oldPath, oldLen, false);
        if (typeof from === 'number') return from;
        const to = this.#lookup(newFd, rights.pathRenameTarget, newPath, newLen, false);
        if (typeof to === 'number') return to;
        if (from.self || to.self) return errno.busy;
        const node = from.node;
        if (node === undefined) return errno.noent;
        const isDir = node.type === 'dir';
        if (!isDir && (from.trailingSlash || to.trailingSlash)) return errno.notdir;
        if (to.node === node) return OK;
        if (to.node !== undefined) {
          if (isDir && to.node.type !== 'dir') return errno.notdir;
          if (!isDir && to.node.type === 'dir') return errno.isdir;
          if (to.node.type === 'dir' && to.node.entries.size > 0) return errno.notempty;
        }
        // A directory cannot move inside itself.
        if (isDir && this.#fs.contains(node, to.parent)) return errno.inval;
        this.#fs.rename(from.parent, from.name, to.parent, to.name);
        return OK;
      },
      path_symlink: (oldPath, oldLen, fd, newPath, newLen) => {
        this.#enter();
        const dir = this.#dirAt(fd, rights.pathSymlink);
        if (typeof dir === 'number') return dir;
        const target = this.#string(oldPath, oldLen);
        if (typeof target === 'number') return target;
        if (target.includes('\0')) return errno.inval;
        if (target === '') return errno.noent;
        // A link that starts at the root would point outside every capability the module holds.
        if (target.startsWith('/')) return errno.perm;
        const at = this.#lookup(fd, rights.pathSymlink, newPath, newLen, false);
        if (typeof at === 'number') return at;
        if (at.self || at.node !== undefined) return errno.exist;
        if (at.trailingSlash) return errno.noent;
        const made = this.#fs.createSymlink(at.parent, at.name, target);
        return typeof made === 'number' ? made : OK;
      },
      poll_oneoff: (inPtr, outPtr, nsubs, nevents) => {
        this.#enter();
        return this.#poll(u32(inPtr), u32(outPtr), u32(nsubs), u32(nevents));
      },
      proc_exit: (code) => {
        this.#enter();
        return this.stop({ kind: 'exit', code: u32(code) });
      },
      proc_raise: () => {
        this.#enter();
        return errno.nosys;
      },
      sched_yield: () => {
        this.#enter();
        return OK;
      },
      sock_accept: (fd, flags, out) => {
        this.#enter();
        const e = this.#fds.get(u32(fd));
        if (e === undefined) return errno.badf;
        // accept() on a connected socket is EINVAL, on anything that is not a socket ENOTSOCK, as in POSIX.
        if (e.kind === 'socket') return errno.inval;
        if (e.kind !== 'listener') return errno.notsock;
        if ((e.base & rights.sockAccept) === 0n) return errno.notcapable;
        const ff = u32(flags);
        if ((ff & ~fdflags.nonblock) !== 0) return errno.inval;
        this.#refresh();
        const outPtr = u32(out);
        if (!this.#ok(outPtr, 4)) return errno.fault;
        const net = this.#net;
        for (;;) {
          const seq = net.seq();
          if (net.pending(e.listener) > 0) {
            this.#checkFds();
            const id = net.accept(e.listener)!;
            const n = this.#lowestFreeFd();
            this.#fds.set(n, {
              kind: 'socket',
              id,
              flags: ff,
              base: SOCKET_RIGHTS & e.inheriting,
              inheriting: 0n,
              readShut: false,
              writeShut: false,
            });
            this.#dv.setUint32(outPtr, n, true);
            return OK;
          }
          if ((e.flags & fdflags.nonblock) !== 0) return errno.again;
          net.wait(seq, Number.POSITIVE_INFINITY);
        }
      },
      sock_recv: (fd, data, dataLen, flags, outLen, outFlags) => {
        this.#enter();
        const e = this.#socketAt(fd, rights.fdRead);
        if (typeof e === 'number') return e;
        const f = u32(flags);
        if ((f & ~(riflags.peek | riflags.waitall)) !== 0) return errno.inval;
        this.#refresh();
        const lenPtr = u32(outLen);
        const flagsPtr = u32(outFlags);
        if (!this.#ok(lenPtr, 4) || !this.#ok(flagsPtr, 2)) return errno.fault;
        const list = this.#iovecs(u32(data), u32(dataLen));
        if (typeof list === 'number') return list;
        const got = this.#socketRead(e, list, (f & riflags.peek) !== 0, (f & riflags.waitall) !== 0);
        if (got < 0) return -got;
        this.#dv.setUint32(lenPtr, got, true);
        // roflags: a stream socket never truncates a datagram.
        this.#dv.setUint16(flagsPtr, 0, true);
        return OK;
      },
      sock_send: (fd, data, dataLen, flags, outLen) => {
        this.#enter();
        const e = this.#socketAt(fd, rights.fdWrite);
        if (typeof e === 'number') return e;
        // siflags defines no flags.
        if (u32(flags) !== 0) return errno.inval;
        this.#refresh();
        const lenPtr = u32(outLen);
        if (!this.#ok(lenPtr, 4)) return errno.fault;
        const list = this.#iovecs(u32(data), u32(dataLen));
        if (typeof list === 'number') return list;
        const sent = this.#socketWrite(e, list);
        if (sent < 0) return -sent;
        this.#dv.setUint32(lenPtr, sent, true);
        return OK;
      },
      sock_shutdown: (fd, how) => {
        this.#enter();
        const e = this.#socketAt(fd, rights.sockShutdown);
        if (typeof e === 'number') return e;
        const h = u32(how);
        if (h === 0 || (h & ~(sdflags.rd | sdflags.wr)) !== 0) return errno.inval;
        const read = (h & sdflags.rd) !== 0 && !e.readShut;
        const write = (h & sdflags.wr) !== 0 && !e.writeShut;
        if (read) e.readShut = true;
        if (write) e.writeShut = true;
        if (read || write) this.#net.shutdown(e.id, read, write);
        return OK;
      },
    };
    // Anything in the preview1 list without an implementation above still links, and says ENOSYS.
    for (const name of Object.keys(PREVIEW1_SIGNATURES)) {
      f[name] ??= () => {
        this.#enter();
        return errno.nosys;
      };
    }
    return f;
  }

  /** Ends the run when one more descriptor would pass the limit. */
  #checkFds(): void {
    const max = this.#opts.maxFds;
    if (max !== undefined && this.#fds.size >= max) {
      this.stop({ kind: 'limit', limit: 'fds', message: `Open descriptors exceeded the limit of ${max}` });
    }
  }

  #poll(inPtr: number, outPtr: number, nsubs: number, neventsPtr: number): number {
    if (nsubs === 0) return errno.inval;
    this.#refresh();
    if (
      !this.#ok(inPtr, nsubs * sizes.subscription) ||
      !this.#ok(outPtr, nsubs * sizes.event) ||
      !this.#ok(neventsPtr, 4)
    ) {
      return errno.fault;
    }
    type Sub =
      | { tag: 'clock'; userdata: bigint; deadline: bigint }
      | { tag: 'error'; userdata: bigint; type: number; error: number }
      | { tag: 'stdin'; userdata: bigint }
      | { tag: 'ready'; userdata: bigint; type: number; nbytes: bigint; flags?: number }
      | { tag: 'accept'; userdata: bigint; listener: number }
      | { tag: 'recv'; userdata: bigint; socket: SocketEntry }
      | { tag: 'send'; userdata: bigint; socket: SocketEntry };
    const subs: Sub[] = [];
    const monoStart = this.#opts.clock.monotonic();
    for (let i = 0; i < nsubs; i++) {
      const at = inPtr + i * sizes.subscription;
      const userdata = this.#dv.getBigUint64(at, true);
      const tag = this.#dv.getUint8(at + 8);
      if (tag === eventtype.clock) {
        const id = this.#dv.getUint32(at + 16, true);
        const timeout = this.#dv.getBigUint64(at + 24, true);
        const flags = this.#dv.getUint16(at + 40, true);
        if (flags > SUBCLOCK_ABSTIME) return errno.inval;
        let deadline: bigint;
        if (id === clockid.monotonic) {
          deadline = (flags & SUBCLOCK_ABSTIME) !== 0 ? timeout : monoStart + timeout;
        } else if (id === clockid.realtime) {
          const wait = (flags & SUBCLOCK_ABSTIME) !== 0 ? timeout - this.#opts.clock.realtime() : timeout;
          deadline = monoStart + (wait > 0n ? wait : 0n);
        } else {
          // CPU-time clocks cannot be waited on; report that on this subscription alone.
          subs.push({ tag: 'error', userdata, type: eventtype.clock, error: errno.inval });
          continue;
        }
        subs.push({ tag: 'clock', userdata, deadline });
      } else if (tag === eventtype.fdRead || tag === eventtype.fdWrite) {
        const e = this.#fds.get(this.#dv.getUint32(at + 16, true));
        const read = tag === eventtype.fdRead;
        if (e?.kind === 'listener' && read && (e.base & rights.pollFdReadwrite) !== 0n) {
          // A listening socket is readable when a connection waits to be accepted.
          subs.push({ tag: 'accept', userdata, listener: e.listener });
        } else if (
          e === undefined ||
          e.kind === 'dir' ||
          e.kind === 'listener' ||
          (e.base & (read ? rights.fdRead : rights.fdWrite)) === 0n
        ) {
          subs.push({ tag: 'error', userdata, type: tag, error: errno.badf });
        } else if (e.kind === 'socket') {
          subs.push({ tag: read ? 'recv' : 'send', userdata, socket: e });
        } else if (e.kind === 'null') {
          // /dev/null: at end of input, and always writable.
          subs.push({ tag: 'ready', userdata, type: tag, nbytes: 0n, flags: read ? EVENTRW_HANGUP : 0 });
        } else if (e.kind === 'file') {
          // Regular files are always ready, as in POSIX.
          const nbytes = read ? BigInt(Math.max(0, e.node.size - e.offset)) : 0n;
          subs.push({ tag: 'ready', userdata, type: tag, nbytes });
        } else if (read) {
          subs.push({ tag: 'stdin', userdata });
        } else {
          subs.push({ tag: 'ready', userdata, type: tag, nbytes: 65536n });
        }
      } else {
        return errno.inval;
      }
    }
    const net = this.#opts.net;
    const usesNet = subs.some((x) => x.tag === 'accept' || x.tag === 'recv' || x.tag === 'send');
    for (;;) {
      // Read before any state, so a change that lands after the checks still ends the wait below.
      const seq = usesNet ? net!.seq() : 0;
      const now = this.#opts.clock.monotonic();
      const stdin = this.#opts.stdin === 'null' ? { available: 0, ended: true } : this.#opts.io.stdinState();
      const stdinReady = stdin.available > 0 || stdin.ended;
      let count = 0;
      let earliest: bigint | undefined;
      let waitsOnStdin = false;
      for (const s of subs) {
        const at = outPtr + count * sizes.event;
        const event = (type: number, error: number, nbytes: bigint, flags: number): void => {
          this.#u8.fill(0, at, at + sizes.event);
          this.#dv.setBigUint64(at, s.userdata, true);
          this.#dv.setUint16(at + 8, error, true);
          this.#dv.setUint8(at + 10, type);
          this.#dv.setBigUint64(at + 16, nbytes, true);
          this.#dv.setUint16(at + 24, flags, true);
          count++;
        };
        switch (s.tag) {
          case 'error':
            event(s.type, s.error, 0n, 0);
            break;
          case 'ready':
            event(s.type, OK, s.nbytes, s.flags ?? 0);
            break;
          case 'accept': {
            const pending = net!.pending(s.listener);
            if (pending > 0) event(eventtype.fdRead, OK, BigInt(pending), 0);
            break;
          }
          case 'recv': {
            const st = net!.state(s.socket.id);
            if (s.socket.readShut || st.ended || st.reset) {
              event(eventtype.fdRead, OK, BigInt(s.socket.readShut ? 0 : st.available), EVENTRW_HANGUP);
            } else if (st.available > 0) {
              event(eventtype.fdRead, OK, BigInt(st.available), 0);
            }
            break;
          }
          case 'send': {
            const st = net!.state(s.socket.id);
            if (s.socket.writeShut || st.reset) event(eventtype.fdWrite, errno.pipe, 0n, EVENTRW_HANGUP);
            else if (st.sendRoom > 0) event(eventtype.fdWrite, OK, BigInt(st.sendRoom), 0);
            break;
          }
          case 'stdin':
            if (stdinReady) {
              const hangup = stdin.ended && stdin.available === 0 ? EVENTRW_HANGUP : 0;
              event(eventtype.fdRead, OK, BigInt(stdin.available), hangup);
            } else {
              waitsOnStdin = true;
            }
            break;
          case 'clock':
            if (s.deadline <= now) event(eventtype.clock, OK, 0n, 0);
            else if (earliest === undefined || s.deadline < earliest) earliest = s.deadline;
            break;
        }
      }
      if (count > 0) {
        this.#dv.setUint32(neventsPtr, count, true);
        return OK;
      }
      // Round up so a wake-up at the deadline finds it passed rather than spinning on a sub-ms remainder.
      const timeoutMs =
        earliest === undefined ? Number.POSITIVE_INFINITY : Math.ceil(Number(earliest - now) / 1e6);
      // The caller rings the doorbell for stdin too, so one wait covers sockets and stdin together.
      if (usesNet) net!.wait(seq, timeoutMs);
      else if (waitsOnStdin) this.#opts.io.waitStdin(timeoutMs);
      else this.#opts.io.sleep(timeoutMs);
    }
  }
}
