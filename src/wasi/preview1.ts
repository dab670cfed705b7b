import {
  clockid,
  EVENTRW_HANGUP,
  errno,
  eventtype,
  fdflags,
  filetype,
  PREVIEW1_SIGNATURES,
  rights,
  SUBCLOCK_ABSTIME,
  sizes,
} from './abi.ts';

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
}

interface FdEntry {
  readonly stream: 0 | 1 | 2;
  flags: number;
  base: bigint;
  inheriting: bigint;
}

/** A preview1 import: the guest passes i32 as number and i64 as bigint; every result is an errno. */
export type Preview1Function = (...args: unknown[]) => number | undefined;

const OK = errno.success;
const U32_MAX = 0xffff_ffff;
const RANDOM_CHUNK = 65536;
const ALLOC_FAILED = /memory allocation of (\d{1,15}) bytes failed\n?$/;
const encoder = new TextEncoder();

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
    const stdio = rights.fdFdstatSetFlags | rights.fdFilestatGet | rights.pollFdReadwrite;
    this.#fds.set(0, { stream: 0, flags: 0, base: stdio | rights.fdRead, inheriting: 0n });
    this.#fds.set(1, { stream: 1, flags: fdflags.append, base: stdio | rights.fdWrite, inheriting: 0n });
    this.#fds.set(2, { stream: 2, flags: fdflags.append, base: stdio | rights.fdWrite, inheriting: 0n });
    this.imports = this.#build();
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

  /** errno for an operation that needs `right` on `fd`, or undefined when allowed. */
  #need(fd: number, right: bigint): number | undefined {
    const e = this.#fds.get(fd);
    if (e === undefined) return errno.badf;
    return (e.base & right) === 0n ? errno.notcapable : undefined;
  }

  /** For operations stdio cannot do: EBADF for an unknown descriptor, else `err`. */
  #stdioCannot(fd: unknown, err: number): number {
    this.#enter();
    return this.#fds.has(u32(fd)) ? err : errno.badf;
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
        if (e === undefined || (e.base & rights.fdWrite) === 0n || e.stream === 0) return errno.badf;
        this.#refresh();
        const out = u32(nwritten);
        if (!this.#ok(out, 4)) return errno.fault;
        const list = this.#iovecs(u32(iovs), u32(iovsLen));
        if (typeof list === 'number') return list;
        let written = 0;
        for (let i = 0; i < list.length; i += 2) {
          const ptr = list[i]!;
          const len = list[i + 1]!;
          this.#emit(e.stream, this.#u8.subarray(ptr, ptr + len));
          written += len;
        }
        this.#dv.setUint32(out, written, true);
        return OK;
      },
      fd_read: (fd, iovs, iovsLen, nread) => {
        this.#enter();
        const e = this.#fds.get(u32(fd));
        if (e === undefined || (e.base & rights.fdRead) === 0n || e.stream !== 0) return errno.badf;
        this.#refresh();
        const out = u32(nread);
        if (!this.#ok(out, 4)) return errno.fault;
        const list = this.#iovecs(u32(iovs), u32(iovsLen));
        if (typeof list === 'number') return list;
        let read = 0;
        if (this.#opts.stdin === 'pipe') {
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
      fd_fdstat_get: (fd, out) => {
        this.#enter();
        const e = this.#fds.get(u32(fd));
        if (e === undefined) return errno.badf;
        this.#refresh();
        const ptr = u32(out);
        if (!this.#ok(ptr, sizes.fdstat)) return errno.fault;
        this.#u8.fill(0, ptr, ptr + sizes.fdstat);
        this.#dv.setUint8(ptr, filetype.characterDevice);
        this.#dv.setUint16(ptr + 2, e.flags, true);
        this.#dv.setBigUint64(ptr + 8, e.base, true);
        this.#dv.setBigUint64(ptr + 16, e.inheriting, true);
        return OK;
      },
      fd_fdstat_set_flags: (fd, flags) => {
        this.#enter();
        const n = u32(fd);
        const denied = this.#need(n, rights.fdFdstatSetFlags);
        if (denied !== undefined) return denied;
        const v = u32(flags);
        if (v > 0x1f) return errno.inval;
        // Synchronised I/O means nothing for a stream; say so rather than pretend.
        if ((v & (fdflags.dsync | fdflags.rsync | fdflags.sync)) !== 0) return errno.notsup;
        this.#fds.get(n)!.flags = v;
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
        const denied = this.#need(u32(fd), rights.fdFilestatGet);
        if (denied !== undefined) return denied;
        this.#refresh();
        const ptr = u32(out);
        if (!this.#ok(ptr, sizes.filestat)) return errno.fault;
        this.#u8.fill(0, ptr, ptr + sizes.filestat);
        this.#dv.setUint8(ptr + 16, filetype.characterDevice);
        this.#dv.setBigUint64(ptr + 24, 1n, true);
        return OK;
      },
      fd_close: (fd) => {
        this.#enter();
        return this.#fds.delete(u32(fd)) ? OK : errno.badf;
      },
      fd_renumber: (from, to) => {
        this.#enter();
        const a = u32(from);
        const b = u32(to);
        const e = this.#fds.get(a);
        if (e === undefined || !this.#fds.has(b)) return errno.badf;
        if (a !== b) {
          this.#fds.set(b, e);
          this.#fds.delete(a);
        }
        return OK;
      },
      fd_prestat_get: (fd) => {
        this.#enter();
        u32(fd);
        // No preopened directories: every descriptor answers EBADF, which ends libc's preopen scan.
        return errno.badf;
      },
      fd_prestat_dir_name: () => {
        this.#enter();
        return errno.badf;
      },
      fd_seek: (fd) => this.#stdioCannot(fd, errno.spipe),
      fd_tell: (fd) => this.#stdioCannot(fd, errno.spipe),
      fd_pread: (fd) => this.#stdioCannot(fd, errno.spipe),
      fd_pwrite: (fd) => this.#stdioCannot(fd, errno.spipe),
      fd_advise: (fd, _offset, _len, advice) => {
        this.#enter();
        if (!this.#fds.has(u32(fd))) return errno.badf;
        return u32(advice) > 5 ? errno.inval : errno.spipe;
      },
      fd_allocate: (fd) => this.#stdioCannot(fd, errno.spipe),
      fd_datasync: (fd) => this.#stdioCannot(fd, errno.inval),
      fd_sync: (fd) => this.#stdioCannot(fd, errno.inval),
      fd_filestat_set_size: (fd) => this.#stdioCannot(fd, errno.inval),
      fd_filestat_set_times: (fd, _atim, _mtim, flags) => {
        this.#enter();
        if (!this.#fds.has(u32(fd))) return errno.badf;
        const v = u32(flags);
        // ATIM with ATIM_NOW, or MTIM with MTIM_NOW, contradict each other.
        if (v > 0x0f || (v & 0x03) === 0x03 || (v & 0x0c) === 0x0c) return errno.inval;
        return errno.notsup;
      },
      fd_readdir: (fd) => this.#stdioCannot(fd, errno.notdir),
      path_create_directory: (fd) => this.#stdioCannot(fd, errno.notdir),
      path_filestat_get: (fd) => this.#stdioCannot(fd, errno.notdir),
      path_filestat_set_times: (fd) => this.#stdioCannot(fd, errno.notdir),
      path_link: (oldFd, _flags, _path, _len, newFd) => {
        this.#enter();
        return this.#fds.has(u32(oldFd)) && this.#fds.has(u32(newFd)) ? errno.notdir : errno.badf;
      },
      path_open: (fd) => this.#stdioCannot(fd, errno.notdir),
      path_readlink: (fd) => this.#stdioCannot(fd, errno.notdir),
      path_remove_directory: (fd) => this.#stdioCannot(fd, errno.notdir),
      path_rename: (fd, _old, _len, newFd) => {
        this.#enter();
        return this.#fds.has(u32(fd)) && this.#fds.has(u32(newFd)) ? errno.notdir : errno.badf;
      },
      path_symlink: (_old, _len, fd) => this.#stdioCannot(fd, errno.notdir),
      path_unlink_file: (fd) => this.#stdioCannot(fd, errno.notdir),
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
      sock_accept: (fd) => this.#stdioCannot(fd, errno.notsock),
      sock_recv: (fd) => this.#stdioCannot(fd, errno.notsock),
      sock_send: (fd) => this.#stdioCannot(fd, errno.notsock),
      sock_shutdown: (fd) => this.#stdioCannot(fd, errno.notsock),
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
      | { tag: 'out'; userdata: bigint };
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
        const wantRead = tag === eventtype.fdRead;
        if (e === undefined || (wantRead ? e.stream !== 0 : e.stream === 0)) {
          subs.push({ tag: 'error', userdata, type: tag, error: errno.badf });
        } else {
          subs.push(wantRead ? { tag: 'stdin', userdata } : { tag: 'out', userdata });
        }
      } else {
        return errno.inval;
      }
    }
    for (;;) {
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
          case 'out':
            event(eventtype.fdWrite, OK, 65536n, 0);
            break;
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
      if (waitsOnStdin) this.#opts.io.waitStdin(timeoutMs);
      else this.#opts.io.sleep(timeoutMs);
    }
  }
}
