// The Keep Loader's unix socket, which the Keep Manager talks to and which outlives it: each connection opens
// with one frame saying what it is for. `ldr-watch` hears every state of the Keep, `ldr-stop` stops it,
// `ldr-drain` stops its listen files accepting (the connection closes once those accepted have closed), and
// `ldr-channel` becomes a tenant's byte stream to the Keep (one at a time), relayed without being read. A
// channel asked for while the Keep is still starting is answered at once and held, unread, until the Keep is
// ready (or closed if it never is): the tenant's first bytes then wait here instead of a round trip away.
import { rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { encodeFrame } from '../../protocol/frames.ts';
import type { KeepState, Message, MessageOf } from '../../protocol/messages.ts';
import type { MuxStream } from '../../protocol/mux.ts';
import { readFirstFrame, writeFrame } from '../../protocol/stream.ts';
import { splice } from './wire.ts';

/** What the socket needs of the Keep Loader. */
export interface ManagerSocketOptions {
  /** Where the socket is bound. */
  path: string;
  /** How long a connection may take to send its opening frame (`TIMEOUTS.openingFrame`). */
  openingFrameMs: number;
  /** How long watchers may take to read the last event before the socket closes (`TIMEOUTS.finalFlush`). */
  finalFlushMs: number;
  /** The Keep's state now. */
  state(): KeepState;
  /** The event that tells a watcher the Keep as it is now. */
  event(): MessageOf<'ldr-event'>;
  /** Stops the Keep. */
  stop(): void;
  /** Stops accepting on the listen files; resolves once the connections already accepted have closed. */
  drain(): Promise<void>;
  /** Opens a stream to the Keep for a tenant's channel; undefined when the Keep's pipe is gone. */
  openChannel(): MuxStream | undefined;
}

function refusal(code: string, message: string): Buffer {
  return Buffer.from(encodeFrame({ v: 1, type: 'error', code, message }));
}

/** The socket the Keep Manager watches, stops and opens channels on. */
export class ManagerSocket {
  readonly #options: ManagerSocketOptions;
  readonly #watchers = new Set<Socket>();
  #server: Server | undefined;
  #channel: Socket | undefined;
  /** A channel asked for while the Keep was starting, with the bytes read past its opening frame. */
  #held: { socket: Socket; rest: Buffer } | undefined;

  constructor(options: ManagerSocketOptions) {
    this.#options = options;
  }

  /** Binds the socket (replacing a stale one); resolves once it accepts connections. */
  async listen(): Promise<void> {
    this.removeSocket();
    const server = createServer((socket) => void this.#onConnection(socket));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#options.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  /** Tells every watcher the Keep as it is now; a held channel is connected once the Keep is ready. */
  publish(): void {
    const e = this.#options.event();
    for (const w of this.#watchers) if (!w.destroyed) writeFrame(w, e);
    const held = this.#held;
    if (held === undefined) return;
    const state = this.#options.state();
    if (state === 'creating') return;
    this.#held = undefined;
    if (held.socket.destroyed) return;
    if (state === 'ready' || state === 'running') this.#connect(held.socket, held.rest);
    else held.socket.destroy();
  }

  /**
   * Closes everything: the watchers once they have read what was published (at most `finalFlushMs`), the
   * tenant's channel at once, the server and its socket file. Resolves when the watchers are done.
   */
  close(): Promise<void> {
    const flushed = [...this.#watchers].map(
      (w) => new Promise<void>((resolve) => (w.destroyed ? resolve() : w.end(() => resolve()))),
    );
    this.#channel?.destroy();
    this.#server?.close();
    this.removeSocket();
    return new Promise<void>((resolve) => {
      void Promise.all(flushed).then(() => resolve());
      setTimeout(resolve, this.#options.finalFlushMs).unref();
    });
  }

  /** Removes the socket file; safe to call on any exit path, any number of times. */
  removeSocket(): void {
    rmSync(this.#options.path, { force: true });
  }

  async #onConnection(socket: Socket): Promise<void> {
    socket.on('error', () => socket.destroy());
    let opening: { message: Message; rest: Buffer };
    try {
      // A connection that never says what it is for is dropped, not held.
      opening = await readFirstFrame(socket, { timeoutMs: this.#options.openingFrameMs });
    } catch {
      socket.destroy();
      return;
    }
    const { message, rest } = opening;
    switch (message.type) {
      case 'ldr-watch':
        this.#watchers.add(socket);
        socket.on('close', () => this.#watchers.delete(socket));
        socket.resume();
        writeFrame(socket, this.#options.event());
        return;
      case 'ldr-stop':
        this.#options.stop();
        socket.end();
        return;
      case 'ldr-drain':
        // Answered by closing the connection once drained; the requester decides how long it waits.
        socket.resume();
        void this.#options.drain().then(() => socket.end());
        return;
      case 'ldr-channel':
        this.#attach(socket, rest);
        return;
      default:
        socket.destroy();
    }
  }

  #attach(socket: Socket, rest: Buffer): void {
    const state = this.#options.state();
    if (state !== 'creating' && state !== 'ready' && state !== 'running') {
      socket.end(refusal('ERR_KEEP_NOT_READY', `the Keep is ${state}`));
      return;
    }
    if (this.#channel) {
      socket.end(refusal('ERR_KEEP_CHANNEL_BUSY', 'another client is attached to the Keep'));
      return;
    }
    this.#channel = socket;
    socket.on('close', () => {
      if (this.#channel === socket) this.#channel = undefined;
      if (this.#held?.socket === socket) this.#held = undefined;
    });
    if (state === 'creating') {
      // Answered now, read later: the socket stays paused (what the tenant sends waits in the kernel's
      // buffers) until publish() sees the Keep ready.
      writeFrame(socket, this.#options.event());
      this.#held = { socket, rest };
      return;
    }
    this.#connect(socket, rest, true);
  }

  /** Relays `socket` to a new stream to the Keep; `answer` first tells the other side it is connected. */
  #connect(socket: Socket, rest: Buffer, answer = false): void {
    const stream = this.#options.openChannel();
    if (!stream) {
      socket.destroy();
      return;
    }
    if (answer) writeFrame(socket, this.#options.event());
    // From here on the bytes are the tenant's, to and from the Keep; they are passed, never read.
    if (rest.length > 0) stream.write(rest);
    splice(socket, stream);
    socket.resume();
  }
}
