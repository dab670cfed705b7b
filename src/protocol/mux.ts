import { Duplex, type Readable, type Writable } from 'node:stream';
import { ProtocolError } from './errors.ts';

/**
 * Multiplexing of many byte streams over the one pipe between a Keep Loader and its Keep: the attested channels
 * (one after another, so a later client can attach), the TCP connections the Keep Loader accepts for the
 * workload's `listen` files when it relays them (by default it hands the sockets themselves to the Keep
 * process instead), and the connections the Keep asks it to open for `connect` files. Each frame is
 * `[kind u8][stream id u32 BE][length u32 BE][payload]`. The payload of a data stream is TLS records (after
 * one plaintext hello for a channel; for a `tcp` file, whatever the workload's peer sends): the Keep Loader
 * forwards it and, except for `tcp` files, cannot read it.
 *
 * Streams the host side opens have ids below 2^31; streams the Keep opens have the top bit set, so the two
 * sides never pick the same id. Every data stream has a flow-control window in each direction: a sender may
 * have at most {@link MUX_WINDOW_BYTES} unacknowledged payload bytes in flight, and the receiver grants more
 * with WINDOW frames as its reader consumes them. A slow reader thus holds back its own stream only, never
 * the pipe.
 */
/** Host → Keep: a new attested channel (the Keep Loader relays a tenant's connection). */
export const MUX_OPEN = 1;
/** Either way: payload bytes of a stream. */
export const MUX_DATA = 2;
/** Either way: the sender will send no more (half-close). */
export const MUX_END = 3;
/** Either way: the stream is abandoned; the payload, if any, is a UTF-8 reason. */
export const MUX_RESET = 4;
/** Keep → host: bind a host port for a `listen` file; payload: CBOR `{ name, port, addr }`. */
export const MUX_LISTEN = 5;
/** Host → Keep: the answer to LISTEN (payload: the host port, u16 BE) or to CONNECT (empty). */
export const MUX_BOUND = 6;
/**
 * Host → Keep: a new stream, a connection accepted on a listener and relayed; payload: the LISTEN stream's id
 * (u32 BE).
 */
export const MUX_ACCEPT = 7;
/** Keep → host: open a TCP connection for a `connect` file; payload: CBOR `{ host, port }`. */
export const MUX_CONNECT = 8;
/** Either way: the receiver grants the sender `payload` (u32 BE) more bytes on the stream. */
export const MUX_WINDOW = 9;

const HEADER = 9;
/** Largest payload of one frame; larger writes are split. */
export const MUX_MAX_PAYLOAD = 256 * 1024;
/** Bytes a sender may have in flight on one stream before the receiver grants more. */
export const MUX_WINDOW_BYTES = 1024 * 1024;
/** Stream ids the Keep opens carry this bit; ids the host opens do not. */
export const MUX_KEEP_ID_BIT = 0x8000_0000;
const MAX_REASON_BYTES = 1024;

/** The kind byte of a frame: one of the MUX_* constants. */
export type MuxKind = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;
/** One decoded frame. */
export type MuxFrame = { kind: MuxKind; id: number; payload: Uint8Array };

/** Encodes one frame. */
export function encodeMuxFrame(kind: MuxKind, id: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const frame = Buffer.allocUnsafe(HEADER + payload.length);
  frame.writeUInt8(kind, 0);
  frame.writeUInt32BE(id >>> 0, 1);
  frame.writeUInt32BE(payload.length, 5);
  frame.set(payload, HEADER);
  return frame;
}

/** Incremental decoder of mux frames; throws ProtocolError on a malformed header. */
export class MuxReader {
  #buffer: Buffer = Buffer.alloc(0);

  push(chunk: Uint8Array): MuxFrame[] {
    this.#buffer = this.#buffer.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.#buffer, chunk]);
    const frames: MuxFrame[] = [];
    let at = 0;
    while (this.#buffer.length - at >= HEADER) {
      const kind = this.#buffer.readUInt8(at);
      const id = this.#buffer.readUInt32BE(at + 1);
      const length = this.#buffer.readUInt32BE(at + 5);
      if (kind < MUX_OPEN || kind > MUX_WINDOW) {
        throw new ProtocolError('ERR_MESSAGE_UNKNOWN_TYPE', `Cannot read a mux frame: unknown kind ${kind}`);
      }
      if (length > MUX_MAX_PAYLOAD) {
        throw new ProtocolError(
          'ERR_FRAME_TOO_LARGE',
          `Cannot read a mux frame: ${length} bytes is over the limit`,
        );
      }
      if (this.#buffer.length - at < HEADER + length) break;
      const payload = this.#buffer.subarray(at + HEADER, at + HEADER + length);
      frames.push({ kind: kind as MuxKind, id, payload: new Uint8Array(payload) });
      at += HEADER + length;
    }
    this.#buffer = this.#buffer.subarray(at);
    return frames;
  }
}

/** The frame writer a stream sends through: its session, which owns the pipe. */
interface MuxLink {
  send(frame: Buffer, onDrained: () => void): boolean;
  forget(id: number): void;
}

function u32(n: number): Uint8Array {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

/**
 * One multiplexed stream as a Duplex: writes become DATA frames within the peer's window (and honour the
 * pipe's backpressure), end() sends END, destroy() sends RESET unless both directions already ended. The
 * session feeds incoming frames in.
 */
export class MuxStream extends Duplex {
  readonly id: number;
  readonly #link: MuxLink;
  #closedRemotely = false;
  #resetReason: string | undefined;
  #sendCredit = MUX_WINDOW_BYTES;
  #recvRoom = MUX_WINDOW_BYTES;
  #unacked = 0;
  #ackWhenRead = false;
  #waitingForCredit: (() => void) | undefined;

  constructor(link: MuxLink, id: number) {
    super({ allowHalfOpen: true });
    this.id = id;
    this.#link = link;
  }

  /** The reason the peer gave with its RESET, if it gave one. */
  get resetReason(): string | undefined {
    return this.#resetReason;
  }

  /** Sends a control frame of this stream (BOUND); used by the session's owner. */
  sendControl(kind: typeof MUX_BOUND, payload: Uint8Array = new Uint8Array(0)): void {
    this.#link.send(encodeMuxFrame(kind, this.id, payload), () => {});
  }

  /** Abandons the stream, telling the peer why. */
  reset(reason?: string): void {
    if (this.destroyed) return;
    if (!this.#closedRemotely) {
      const bytes = Buffer.from(reason ?? '', 'utf8').subarray(0, MAX_REASON_BYTES);
      this.#link.send(encodeMuxFrame(MUX_RESET, this.id, bytes), () => {});
    }
    this.#closedRemotely = true;
    this.destroy();
  }

  /** @internal DATA arrived. Returns false when the peer overran its window. */
  receive(payload: Uint8Array): boolean {
    if (payload.length > this.#recvRoom) return false;
    this.#recvRoom -= payload.length;
    this.#unacked += payload.length;
    if (this.push(payload)) this.#ack(false);
    else this.#ackWhenRead = true;
    return true;
  }

  /** @internal END arrived. */
  receiveEnd(): void {
    this.push(null);
  }

  /** @internal RESET arrived. */
  receiveReset(reason: string): void {
    this.#closedRemotely = true;
    if (reason !== '') this.#resetReason = reason;
    this.destroy();
  }

  /** @internal WINDOW arrived. */
  receiveWindow(bytes: number): void {
    this.#sendCredit += bytes;
    const waiting = this.#waitingForCredit;
    this.#waitingForCredit = undefined;
    waiting?.();
  }

  #ack(force: boolean): void {
    // Granting in quarters of the window keeps WINDOW frames few without ever starving the sender.
    if (this.#unacked === 0 || (!force && this.#unacked < MUX_WINDOW_BYTES / 4) || this.destroyed) return;
    const n = this.#unacked;
    this.#unacked = 0;
    this.#recvRoom += n;
    this.#link.send(encodeMuxFrame(MUX_WINDOW, this.id, u32(n)), () => {});
  }

  override _read(): void {
    if (this.#ackWhenRead) {
      this.#ackWhenRead = false;
      this.#ack(true);
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    let at = 0;
    const next = (): void => {
      while (at < chunk.length) {
        if (this.destroyed) {
          callback();
          return;
        }
        if (this.#sendCredit === 0) {
          this.#waitingForCredit = next;
          return;
        }
        const n = Math.min(chunk.length - at, MUX_MAX_PAYLOAD, this.#sendCredit);
        this.#sendCredit -= n;
        const frame = encodeMuxFrame(MUX_DATA, this.id, chunk.subarray(at, at + n));
        at += n;
        if (!this.#link.send(frame, next)) return;
      }
      callback();
    };
    next();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#link.send(encodeMuxFrame(MUX_END, this.id), () => {});
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const done = this.writableFinished && this.readableEnded;
    if (!this.#closedRemotely && !done) this.#link.send(encodeMuxFrame(MUX_RESET, this.id), () => {});
    this.#link.forget(this.id);
    const waiting = this.#waitingForCredit;
    this.#waitingForCredit = undefined;
    waiting?.();
    callback(error);
  }
}

/** A stream the peer opened, with what it asked for. */
export interface MuxIncoming {
  stream: MuxStream;
  /** OPEN, LISTEN, ACCEPT or CONNECT. */
  kind: typeof MUX_OPEN | typeof MUX_LISTEN | typeof MUX_ACCEPT | typeof MUX_CONNECT;
  payload: Uint8Array;
}

/** How a {@link MuxSession} is set up. */
export interface MuxSessionOptions {
  /** Which end of the pipe this is: it decides the id space of the streams it opens. */
  side: 'host' | 'keep';
  /** A stream the peer opened. */
  onStream(incoming: MuxIncoming): void;
  /** The peer broke the framing or the rules of the mux; the pipe should be abandoned. */
  onError(error: ProtocolError): void;
}

const OPENING_KINDS: Record<'host' | 'keep', readonly number[]> = {
  // What each side accepts from its peer.
  host: [MUX_LISTEN, MUX_CONNECT],
  keep: [MUX_OPEN, MUX_ACCEPT],
};

/**
 * One end of a multiplexed pipe: demultiplexes incoming frames to their streams, opens streams of its own
 * and shares the pipe's backpressure between them.
 */
export class MuxSession {
  readonly #pipe: Writable;
  readonly #options: MuxSessionOptions;
  readonly #streams = new Map<number, MuxStream>();
  readonly #reader = new MuxReader();
  readonly #drainWaiters: (() => void)[] = [];
  readonly #link: MuxLink;
  #nextId = 1;
  #failed = false;

  constructor(pipe: Readable & Writable, options: MuxSessionOptions) {
    this.#pipe = pipe;
    this.#options = options;
    this.#link = {
      send: (frame, onDrained) => {
        if (!this.#pipe.writable) return true;
        if (this.#pipe.write(frame)) return true;
        this.#drainWaiters.push(onDrained);
        if (this.#drainWaiters.length === 1) {
          this.#pipe.once('drain', () => {
            for (const w of this.#drainWaiters.splice(0)) w();
          });
        }
        return false;
      },
      forget: (id) => {
        this.#streams.delete(id);
      },
    };
    pipe.on('data', (chunk: Buffer) => this.#onData(chunk));
  }

  /** Streams open now. */
  get size(): number {
    return this.#streams.size;
  }

  /** Opens a stream of this side's id space, announcing it with `kind` and `payload`. */
  open(
    kind: typeof MUX_OPEN | typeof MUX_LISTEN | typeof MUX_ACCEPT | typeof MUX_CONNECT,
    payload: Uint8Array = new Uint8Array(0),
  ): MuxStream {
    const base = this.#options.side === 'keep' ? MUX_KEEP_ID_BIT : 0;
    let id: number;
    do {
      id = (base | this.#nextId) >>> 0;
      this.#nextId = this.#nextId >= 0x7fff_ffff ? 1 : this.#nextId + 1;
    } while (this.#streams.has(id));
    const stream = new MuxStream(this.#link, id);
    this.#streams.set(id, stream);
    this.#link.send(encodeMuxFrame(kind, id, payload), () => {});
    return stream;
  }

  /** Resets every stream (the pipe is going away). */
  destroyAll(): void {
    for (const s of [...this.#streams.values()]) s.destroy();
  }

  #fail(error: ProtocolError): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#options.onError(error);
  }

  #onData(chunk: Buffer): void {
    if (this.#failed) return;
    let frames: MuxFrame[];
    try {
      frames = this.#reader.push(chunk);
    } catch (error) {
      this.#fail(error as ProtocolError);
      return;
    }
    for (const f of frames) {
      if (this.#failed) return;
      this.#dispatch(f);
    }
  }

  #dispatch(f: MuxFrame): void {
    const peerIsKeep = this.#options.side === 'host';
    if (f.kind === MUX_OPEN || f.kind === MUX_LISTEN || f.kind === MUX_ACCEPT || f.kind === MUX_CONNECT) {
      if (
        !OPENING_KINDS[this.#options.side].includes(f.kind) ||
        f.id >= MUX_KEEP_ID_BIT !== peerIsKeep ||
        f.id === 0 ||
        this.#streams.has(f.id)
      ) {
        this.#fail(
          new ProtocolError(
            'ERR_MESSAGE_INVALID',
            `Cannot open mux stream ${f.id}: kind ${f.kind} is not the peer's to open, or the id is taken`,
          ),
        );
        return;
      }
      const stream = new MuxStream(this.#link, f.id);
      this.#streams.set(f.id, stream);
      this.#options.onStream({ stream, kind: f.kind, payload: f.payload });
      return;
    }
    const stream = this.#streams.get(f.id);
    // A frame for a stream this side already closed is stale, not an error.
    if (!stream) return;
    switch (f.kind) {
      case MUX_DATA:
        if (!stream.receive(f.payload)) stream.reset('the peer overran the flow-control window');
        return;
      case MUX_END:
        stream.receiveEnd();
        return;
      case MUX_RESET:
        stream.receiveReset(Buffer.from(f.payload).toString('utf8'));
        return;
      case MUX_WINDOW:
        if (f.payload.length !== 4) {
          stream.reset('a WINDOW frame must carry 4 bytes');
          return;
        }
        stream.receiveWindow(Buffer.from(f.payload).readUInt32BE(0));
        return;
      case MUX_BOUND:
        stream.emit('bound', f.payload);
        return;
    }
  }
}
