// A single-producer single-consumer byte ring over a SharedArrayBuffer: stdin flows through one from the
// caller's thread to the worker, output through another the other way. The side that must block (the
// worker) waits with Atomics.wait; the caller's thread never blocks and waits with Atomics.waitAsync.
//
// Positions are free-running 32-bit counters; their difference is the fill level, which stays correct
// across wrap-around because the capacity is far below 2^31. Each side bumps its own sequence word on
// every change, so a waiter that read the sequence before checking the state cannot miss a wake-up. A
// waiter counts itself in before it checks the state and out when it wakes, and a side only calls
// Atomics.notify while someone is counted in: a chatty producer (a module printing a million short lines)
// then pays for a notification only when the consumer has caught up and gone to sleep.

const WRITE = 0;
const READ = 1;
const CLOSED = 2;
/** Bumped by the producer (data written, ring closed). */
const PRODUCER_SEQ = 3;
/** Bumped by the consumer (data read). */
const CONSUMER_SEQ = 4;
/** How many waiters are waiting (or about to wait) on PRODUCER_SEQ. */
const PRODUCER_WAITERS = 5;
/** How many waiters are waiting (or about to wait) on CONSUMER_SEQ. */
const CONSUMER_WAITERS = 6;
/** Payloads up to this size are copied byte by byte: cheaper than TypedArray#set on shared memory. */
const SMALL_COPY = 64;
const HEADER_BYTES = 64;

/** Bytes of record header in an output ring: the descriptor, then the payload length (24 bits). */
export const RECORD_HEADER = 4;

type WaitAsyncResult =
  | { async: false; value: 'not-equal' | 'timed-out' }
  | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): WaitAsyncResult })
  .waitAsync;

/** One end of a shared byte ring; both threads construct one over the same buffer. */
export class ByteRing {
  readonly #ctrl: Int32Array;
  readonly #data: Uint8Array;
  readonly #mask: number;

  /** Allocates the shared buffer for a ring of `capacity` bytes (a power of two, at most 2^30). */
  static allocate(capacity: number): SharedArrayBuffer {
    if (
      !Number.isInteger(capacity) ||
      capacity < 16 ||
      capacity > 2 ** 30 ||
      (capacity & (capacity - 1)) !== 0
    ) {
      throw new RangeError('Cannot allocate a ring: its capacity must be a power of two between 16 and 2^30');
    }
    return new SharedArrayBuffer(HEADER_BYTES + capacity);
  }

  constructor(buffer: SharedArrayBuffer) {
    const capacity = buffer.byteLength - HEADER_BYTES;
    if (capacity < 16 || (capacity & (capacity - 1)) !== 0)
      throw new RangeError('Cannot use the ring: bad buffer');
    this.#ctrl = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.#data = new Uint8Array(buffer, HEADER_BYTES, capacity);
    this.#mask = capacity - 1;
  }

  /** The ring's size in bytes. */
  get capacity(): number {
    return this.#data.length;
  }

  /** Bytes written and not yet read. */
  available(): number {
    return (Atomics.load(this.#ctrl, WRITE) - Atomics.load(this.#ctrl, READ)) | 0;
  }

  /** Bytes the producer can write now. */
  free(): number {
    return this.#data.length - this.available();
  }

  /** Whether the producer closed the ring (end of stream). Data written before closing stays readable. */
  closed(): boolean {
    return Atomics.load(this.#ctrl, CLOSED) !== 0;
  }

  /** The producer's sequence word; read it before checking state, then wait on it. */
  producerSeq(): number {
    return Atomics.load(this.#ctrl, PRODUCER_SEQ);
  }

  /** The consumer's sequence word; read it before checking state, then wait on it. */
  consumerSeq(): number {
    return Atomics.load(this.#ctrl, CONSUMER_SEQ);
  }

  /** Producer: writes as much of `src` as fits and returns how much that was. */
  write(src: Uint8Array): number {
    const n = Math.min(src.length, this.free());
    if (n === 0) return 0;
    const w = Atomics.load(this.#ctrl, WRITE);
    this.#copyIn(w, src.subarray(0, n));
    this.#publish(w, n);
    return n;
  }

  /**
   * Producer: writes one output record (descriptor and payload) if it fits whole, so the consumer never
   * sees half a record. Returns whether it was written.
   */
  writeRecord(fd: number, payload: Uint8Array): boolean {
    const n = RECORD_HEADER + payload.length;
    if (payload.length >= 2 ** 24 || n > this.free()) return false;
    const w = Atomics.load(this.#ctrl, WRITE);
    const len = payload.length;
    const data = this.#data;
    const mask = this.#mask;
    data[w & mask] = fd;
    data[(w + 1) & mask] = len & 0xff;
    data[(w + 2) & mask] = (len >>> 8) & 0xff;
    data[(w + 3) & mask] = len >>> 16;
    this.#copyIn((w + RECORD_HEADER) | 0, payload);
    this.#publish(w, n);
    return true;
  }

  /** Producer: marks the end of the stream. */
  close(): void {
    Atomics.store(this.#ctrl, CLOSED, 1);
    Atomics.add(this.#ctrl, PRODUCER_SEQ, 1);
    Atomics.notify(this.#ctrl, PRODUCER_SEQ);
  }

  /** Consumer: reads up to `dst.length` bytes into `dst` and returns how many. */
  read(dst: Uint8Array): number {
    const n = Math.min(dst.length, this.available());
    if (n === 0) return 0;
    const r = Atomics.load(this.#ctrl, READ);
    const start = r & this.#mask;
    const first = Math.min(n, this.#data.length - start);
    dst.set(this.#data.subarray(start, start + first), 0);
    if (first < n) dst.set(this.#data.subarray(0, n - first), first);
    Atomics.store(this.#ctrl, READ, (r + n) | 0);
    Atomics.add(this.#ctrl, CONSUMER_SEQ, 1);
    if (Atomics.load(this.#ctrl, CONSUMER_WAITERS) !== 0) Atomics.notify(this.#ctrl, CONSUMER_SEQ);
    return n;
  }

  /** Blocks the calling thread until the producer's sequence differs from `seq` or `timeoutMs` passes. */
  waitProducer(seq: number, timeoutMs = Number.POSITIVE_INFINITY): void {
    this.#wait(PRODUCER_SEQ, PRODUCER_WAITERS, seq, timeoutMs);
  }

  /** Blocks the calling thread until the consumer's sequence differs from `seq`. */
  waitConsumer(seq: number): void {
    this.#wait(CONSUMER_SEQ, CONSUMER_WAITERS, seq, Number.POSITIVE_INFINITY);
  }

  /** Resolves once the producer's sequence differs from `seq` (or at once if it already does). */
  producerChanged(seq: number): Promise<unknown> | undefined {
    return this.#waitAsync(PRODUCER_SEQ, PRODUCER_WAITERS, seq);
  }

  /** Resolves once the consumer's sequence differs from `seq` (or at once if it already does). */
  consumerChanged(seq: number): Promise<unknown> | undefined {
    return this.#waitAsync(CONSUMER_SEQ, CONSUMER_WAITERS, seq);
  }

  #wait(word: number, waiters: number, seq: number, timeoutMs: number): void {
    Atomics.add(this.#ctrl, waiters, 1);
    try {
      Atomics.wait(this.#ctrl, word, seq, timeoutMs);
    } finally {
      Atomics.sub(this.#ctrl, waiters, 1);
    }
  }

  #waitAsync(word: number, waiters: number, seq: number): Promise<unknown> | undefined {
    // Counted in before the sequence is compared, so a change after the comparison is always notified.
    Atomics.add(this.#ctrl, waiters, 1);
    const r = waitAsync(this.#ctrl, word, seq);
    if (!r.async) {
      Atomics.sub(this.#ctrl, waiters, 1);
      return undefined;
    }
    return r.value.finally(() => Atomics.sub(this.#ctrl, waiters, 1));
  }

  /** Wakes every waiter on either sequence without changing state, so pending waits can re-check. */
  wakeAll(): void {
    Atomics.add(this.#ctrl, PRODUCER_SEQ, 1);
    Atomics.notify(this.#ctrl, PRODUCER_SEQ);
    Atomics.add(this.#ctrl, CONSUMER_SEQ, 1);
    Atomics.notify(this.#ctrl, CONSUMER_SEQ);
  }

  #copyIn(pos: number, src: Uint8Array): void {
    if (src.length <= SMALL_COPY) {
      const data = this.#data;
      const mask = this.#mask;
      for (let i = 0; i < src.length; i++) data[(pos + i) & mask] = src[i]!;
      return;
    }
    const start = pos & this.#mask;
    const first = Math.min(src.length, this.#data.length - start);
    this.#data.set(src.subarray(0, first), start);
    if (first < src.length) this.#data.set(src.subarray(first), 0);
  }

  #publish(w: number, n: number): void {
    Atomics.store(this.#ctrl, WRITE, (w + n) | 0);
    Atomics.add(this.#ctrl, PRODUCER_SEQ, 1);
    if (Atomics.load(this.#ctrl, PRODUCER_WAITERS) !== 0) Atomics.notify(this.#ctrl, PRODUCER_SEQ);
  }
}

/**
 * Splits bytes drained from an output ring into records and joins consecutive records of the same
 * descriptor, so the caller sees few, large chunks in the order they were written.
 */
export function splitRecords(bytes: Uint8Array): { fd: number; data: Uint8Array }[] {
  const out: { fd: number; data: Uint8Array }[] = [];
  let pos = 0;
  let runFd = -1;
  let run: Uint8Array[] = [];
  const flush = (): void => {
    if (run.length === 0) return;
    if (run.length === 1) out.push({ fd: runFd, data: run[0]! });
    else {
      const joined = new Uint8Array(run.reduce((sum, part) => sum + part.length, 0));
      let at = 0;
      for (const part of run) {
        joined.set(part, at);
        at += part.length;
      }
      out.push({ fd: runFd, data: joined });
    }
    run = [];
  };
  while (pos + RECORD_HEADER <= bytes.length) {
    const fd = bytes[pos]!;
    const len = bytes[pos + 1]! | (bytes[pos + 2]! << 8) | (bytes[pos + 3]! << 16);
    const end = pos + RECORD_HEADER + len;
    if (end > bytes.length) throw new RangeError('Cannot split output records: a record is cut short');
    if (fd !== runFd) flush();
    runFd = fd;
    if (len > 0) run.push(bytes.subarray(pos + RECORD_HEADER, end));
    pos = end;
  }
  if (pos !== bytes.length) throw new RangeError('Cannot split output records: a record is cut short');
  flush();
  return out;
}
