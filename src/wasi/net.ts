// Over 400 lines: the socket half of the WASI host (the worker's side and the Keep thread's side of one protocol) reads best in one file.
import type { Duplex } from 'node:stream';
import { type MessagePort, receiveMessageOnPort } from 'node:worker_threads';

// Sockets between the caller's thread, which owns the real byte streams and does their asynchronous I/O, and
// the worker, which runs the module and must block. They talk over a MessagePort: the caller posts what
// arrives, the worker takes messages synchronously with receiveMessageOnPort() whenever the module calls in,
// and sleeps on a shared "doorbell" word with Atomics.wait when it has to wait. The caller rings the doorbell
// after every message it posts (and after stdin changes), so one wait covers any mix of sockets, stdin and
// time. Each direction of each connection has a window, so neither side buffers more than it agreed to.

/** Bytes the caller posts to the worker on one connection before the worker has consumed them. */
export const RX_WINDOW = 256 * 1024;
/** Bytes the worker hands the caller on one connection before the caller has written them out. */
export const TX_WINDOW = 256 * 1024;

/** Caller → worker. */
type ToWorker =
  | readonly ['conn', listener: number, id: number]
  | readonly ['data', id: number, bytes: Uint8Array]
  | readonly ['eof', id: number]
  | readonly ['reset', id: number]
  | readonly ['sent', id: number, n: number];

/** Worker → caller. */
type ToCaller =
  | readonly ['send', id: number, bytes: Uint8Array]
  | readonly ['consumed', id: number, n: number]
  | readonly ['shutdown', id: number]
  | readonly ['close', id: number]
  | readonly ['unlisten', listener: number];

/** A shared word both threads use to wake the worker. */
export class Doorbell {
  readonly #word: Int32Array;

  /** Wraps `buffer` (4 bytes, shared), or allocates one. */
  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.#word = new Int32Array(buffer, 0, 1);
  }

  get buffer(): SharedArrayBuffer {
    return this.#word.buffer as SharedArrayBuffer;
  }

  /** The current count; read it before checking state, then wait on it. */
  seq(): number {
    return Atomics.load(this.#word, 0);
  }

  ring(): void {
    Atomics.add(this.#word, 0, 1);
    Atomics.notify(this.#word, 0);
  }

  /** Blocks until the count differs from `seq` or `timeoutMs` passes (Infinity: no timeout). */
  wait(seq: number, timeoutMs: number): void {
    Atomics.wait(this.#word, 0, seq, timeoutMs);
  }
}

/** One connection as the caller's thread holds it. */
interface CallerConn {
  readonly stream: Duplex;
  /** Bytes posted to the worker that it has not yet consumed. */
  unconsumed: number;
  /** Bytes of the worker's written out and not yet reported to it. */
  written: number;
  paused: boolean;
  closed: boolean;
}

/**
 * The caller's side: owns the byte streams (TCP, or TLS already terminated) and relays them to the worker.
 * Streams are destroyed when the worker closes them, and all of them when the run ends.
 */
export class CallerNet {
  readonly #port: MessagePort;
  readonly #bell: Doorbell;
  readonly #conns = new Map<number, CallerConn>();
  readonly #closedListeners = new Set<number>();
  #nextId = 1;
  #ended = false;

  constructor(port: MessagePort, bell: Doorbell) {
    this.#port = port;
    this.#bell = bell;
    port.on('message', (m: ToCaller) => this.#onMessage(m));
  }

  /** Registers a connected stream and returns its id; the worker learns of it from the descriptor table. */
  register(stream: Duplex): number {
    const id = this.#nextId++;
    const conn: CallerConn = { stream, unconsumed: 0, written: 0, paused: false, closed: false };
    this.#conns.set(id, conn);
    const post = (m: ToWorker, transfer: ArrayBuffer[] = []): void => {
      if (this.#ended || conn.closed) return;
      this.#port.postMessage(m, transfer);
      this.#bell.ring();
    };
    stream.on('data', (chunk: Buffer) => {
      if (conn.closed) return;
      // A copy of exactly these bytes: a Buffer is often a view into a larger pool, all of which a post
      // would otherwise clone.
      const bytes = new Uint8Array(chunk);
      conn.unconsumed += bytes.length;
      post(['data', id, bytes], [bytes.buffer as ArrayBuffer]);
      if (conn.unconsumed > RX_WINDOW && !conn.paused) {
        conn.paused = true;
        stream.pause();
      }
    });
    let ended = false;
    stream.on('end', () => {
      ended = true;
      post(['eof', id]);
    });
    stream.on('error', () => {
      stream.destroy();
    });
    stream.on('close', () => {
      if (!ended) post(['reset', id]);
      this.#conns.delete(id);
    });
    return id;
  }

  /**
   * Hands a connection to the listener `listener` (the index of its file). Returns false, having taken
   * nothing, when the workload closed that listener or the run ended: the caller then closes the stream.
   */
  offer(listener: number, stream: Duplex): boolean {
    if (this.#ended || this.#closedListeners.has(listener)) return false;
    const id = this.register(stream);
    this.#port.postMessage(['conn', listener, id] satisfies ToWorker);
    this.#bell.ring();
    return true;
  }

  /** Wakes the worker (stdin changed). */
  ring(): void {
    this.#bell.ring();
  }

  /** Ends every connection and stops relaying (the run is over). */
  close(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const c of this.#conns.values()) {
      c.closed = true;
      c.stream.destroy();
    }
    this.#conns.clear();
    this.#port.close();
  }

  #onMessage(m: ToCaller): void {
    if (this.#ended) return;
    if (m[0] === 'unlisten') {
      this.#closedListeners.add(m[1]);
      return;
    }
    const id = m[1];
    const conn = this.#conns.get(id);
    if (!conn) return;
    switch (m[0]) {
      case 'send': {
        const bytes = m[2];
        conn.stream.write(bytes, () => {
          if (this.#ended || conn.closed) return;
          // Reported in quarters of the window, like 'consumed': the worker waits for room only once it has a
          // whole window in flight, so a write that empties a small one need not wake it.
          conn.written += bytes.length;
          if (conn.written < TX_WINDOW / 4) return;
          this.#port.postMessage(['sent', id, conn.written] satisfies ToWorker);
          conn.written = 0;
          this.#bell.ring();
        });
        return;
      }
      case 'consumed':
        conn.unconsumed -= m[2];
        if (conn.paused && conn.unconsumed <= RX_WINDOW) {
          conn.paused = false;
          conn.stream.resume();
        }
        return;
      case 'shutdown':
        conn.stream.end();
        return;
      case 'close':
        conn.closed = true;
        this.#conns.delete(id);
        // Gracefully: what the workload wrote goes out first. Whatever still arrives is dropped.
        conn.stream.end();
        conn.stream.resume();
        setTimeout(() => conn.stream.destroy(), 30_000).unref();
        return;
    }
  }
}

/** One connection as the worker sees it. */
interface WorkerConn {
  readonly rx: Uint8Array[];
  rxBytes: number;
  /** Bytes consumed and not yet reported to the caller. */
  consumed: number;
  /** Bytes handed to the caller and not yet written out. */
  inflight: number;
  ended: boolean;
  reset: boolean;
  /** The module shut its read side: what arrives is dropped. */
  readShut: boolean;
}

/** What the module's host functions need of the sockets; the worker's side of {@link CallerNet}. */
export interface Preview1Net {
  /** The doorbell's count; read it before checking any state, then pass it to wait(). */
  seq(): number;
  /** Blocks until anything may have changed after `seq`, or `timeoutMs` passed (Infinity: no timeout). */
  wait(seq: number, timeoutMs: number): void;
  /** Takes the oldest connection waiting on listener `listener`: its id, or undefined when none waits. */
  accept(listener: number): number | undefined;
  /** Connections waiting on listener `listener`. */
  pending(listener: number): number;
  /** Stops listener `listener`: connections waiting on it, and later ones, are refused. */
  closeListener(listener: number): void;
  /** The state of connection `id`: bytes readable now, whether the peer ended or reset it, send room. */
  state(id: number): { available: number; ended: boolean; reset: boolean; sendRoom: number };
  /** Copies up to `dst.length` received bytes into `dst` (consuming them unless `peek`); returns how many. */
  recv(id: number, dst: Uint8Array, peek: boolean): number;
  /** Hands up to the send room of `data` to the caller (copied); returns how many bytes it took. */
  send(id: number, data: Uint8Array): number;
  /** Discards what was received and will be (read side), or ends the stream (write side). */
  shutdown(id: number, read: boolean, write: boolean): void;
  /** Closes connection `id`: what was sent goes out, then the stream ends. */
  close(id: number): void;
}

/** The worker's side: connection state built from the caller's messages, taken synchronously. */
export class WorkerNet implements Preview1Net {
  readonly #port: MessagePort;
  readonly #bell: Doorbell;
  readonly #conns = new Map<number, WorkerConn>();
  readonly #pending = new Map<number, number[]>();
  readonly #closedListeners = new Set<number>();
  /** Connections the module closed, so late messages about them are dropped. */
  readonly #gone = new Set<number>();

  constructor(port: MessagePort, bell: Doorbell, connected: readonly number[]) {
    this.#port = port;
    this.#bell = bell;
    for (const id of connected) this.#conn(id);
  }

  #conn(id: number): WorkerConn {
    let c = this.#conns.get(id);
    if (c === undefined) {
      c = { rx: [], rxBytes: 0, consumed: 0, inflight: 0, ended: false, reset: false, readShut: false };
      this.#conns.set(id, c);
    }
    return c;
  }

  #post(m: ToCaller, transfer: ArrayBuffer[] = []): void {
    this.#port.postMessage(m, transfer);
  }

  /** Applies every message the caller posted so far. */
  #drain(): void {
    for (;;) {
      const r = receiveMessageOnPort(this.#port);
      if (r === undefined) return;
      const m = r.message as ToWorker;
      if (m[0] === 'conn') {
        const [, listener, id] = m;
        if (this.#closedListeners.has(listener)) {
          this.#post(['close', id]);
          continue;
        }
        this.#conn(id);
        const list = this.#pending.get(listener) ?? [];
        list.push(id);
        this.#pending.set(listener, list);
        continue;
      }
      const id = m[1];
      if (this.#gone.has(id)) continue;
      const c = this.#conn(id);
      switch (m[0]) {
        case 'data':
          if (c.readShut) this.#post(['consumed', id, m[2].length]);
          else {
            c.rx.push(m[2]);
            c.rxBytes += m[2].length;
          }
          break;
        case 'eof':
          c.ended = true;
          break;
        case 'reset':
          c.reset = true;
          break;
        case 'sent':
          c.inflight -= m[2];
          break;
      }
    }
  }

  seq(): number {
    return this.#bell.seq();
  }

  wait(seq: number, timeoutMs: number): void {
    this.#bell.wait(seq, timeoutMs);
  }

  accept(listener: number): number | undefined {
    this.#drain();
    return this.#pending.get(listener)?.shift();
  }

  pending(listener: number): number {
    this.#drain();
    return this.#pending.get(listener)?.length ?? 0;
  }

  closeListener(listener: number): void {
    this.#drain();
    this.#closedListeners.add(listener);
    this.#post(['unlisten', listener]);
    for (const id of this.#pending.get(listener) ?? []) this.close(id);
    this.#pending.delete(listener);
  }

  state(id: number): { available: number; ended: boolean; reset: boolean; sendRoom: number } {
    this.#drain();
    const c = this.#conn(id);
    return {
      available: c.rxBytes,
      ended: c.ended,
      reset: c.reset,
      sendRoom: c.reset ? 0 : Math.max(0, TX_WINDOW - c.inflight),
    };
  }

  recv(id: number, dst: Uint8Array, peek: boolean): number {
    this.#drain();
    const c = this.#conn(id);
    let n = 0;
    let i = 0;
    while (n < dst.length && i < c.rx.length) {
      const head = c.rx[i]!;
      const take = Math.min(head.length, dst.length - n);
      dst.set(head.subarray(0, take), n);
      n += take;
      if (peek) i++;
      else if (take === head.length) c.rx.shift();
      else c.rx[0] = head.subarray(take);
    }
    if (!peek && n > 0) {
      c.rxBytes -= n;
      c.consumed += n;
      // Report in quarters of the window: enough for the caller to resume before the worker runs dry.
      if (c.consumed >= RX_WINDOW / 4) {
        this.#post(['consumed', id, c.consumed]);
        c.consumed = 0;
      }
    }
    return n;
  }

  send(id: number, data: Uint8Array): number {
    this.#drain();
    const c = this.#conn(id);
    if (c.reset) return 0;
    const n = Math.min(data.length, TX_WINDOW - c.inflight);
    if (n <= 0) return 0;
    // slice(): a view would make the post clone the module's whole memory.
    const bytes = data.slice(0, n);
    c.inflight += n;
    this.#post(['send', id, bytes], [bytes.buffer as ArrayBuffer]);
    return n;
  }

  shutdown(id: number, read: boolean, write: boolean): void {
    this.#drain();
    const c = this.#conn(id);
    if (read) {
      c.readShut = true;
      c.rx.length = 0;
      if (c.rxBytes > 0) this.#post(['consumed', id, c.rxBytes + c.consumed]);
      c.rxBytes = 0;
      c.consumed = 0;
    }
    if (write) this.#post(['shutdown', id]);
  }

  close(id: number): void {
    this.#conns.delete(id);
    this.#gone.add(id);
    this.#post(['close', id]);
  }
}
