import type { Duplex } from 'node:stream';
import type { MessageOf } from '../protocol/messages.ts';
import { readFrames, writeFrame } from '../protocol/stream.ts';

/** What the Keep tells its Keep Loader of its lifecycle (never anything of the workload's). */
export type ControlEvent = MessageOf<'keep-event'>['event'];

/**
 * The Keep's side of the control pipe to its Keep Loader (fd 3): evidence requests and their answers, and the
 * Keep's lifecycle events. The pipe carries nothing of the workload's; what comes back on it is the host's
 * evidence, which the Keep passes on unread for the client to verify.
 */
export class Control {
  readonly #socket: Duplex;
  readonly #waiting: ((m: MessageOf<'evidence'>) => void)[] = [];
  #kind: MessageOf<'evidence'>['kind'] | undefined;

  /** `onLost` runs once the Keep Loader has gone (the pipe ended or broke). */
  constructor(socket: Duplex, onLost: () => void) {
    this.#socket = socket;
    let lost = false;
    const lose = (): void => {
      if (lost) return;
      lost = true;
      onLost();
    };
    readFrames(
      socket,
      (m) => {
        // Answers come in the order of the requests; anything else from the host is ignored.
        if (m.type === 'evidence') {
          this.#kind = m.kind;
          this.#waiting.shift()?.(m);
        }
      },
      { onError: lose, onEnd: lose },
    );
  }

  /** The kind of the host's last evidence (the channel's came before any deploy), once there was one. */
  get evidenceKind(): MessageOf<'evidence'>['kind'] | undefined {
    return this.#kind;
  }

  /** Asks the host for evidence binding `reportData` (64 bytes); resolves to its answer. */
  evidence(reportData: Uint8Array): Promise<MessageOf<'evidence'>> {
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      writeFrame(this.#socket, { v: 1, type: 'evidence-request', reportData });
    });
  }

  /**
   * Asks the host for the DCAP collateral of a quote the Keep made itself (the `gramine` evidence source);
   * resolves to the collateral of its answer, or undefined when it gave none.
   */
  collateral(quote: Uint8Array): Promise<Uint8Array | undefined> {
    return new Promise((resolve) => {
      this.#waiting.push((m) => resolve(m.collateral));
      writeFrame(this.#socket, { v: 1, type: 'collateral-request', quote });
    });
  }

  /** Reports a step of the Keep's lifecycle, with a message for the host's record when there is one. */
  event(event: ControlEvent, message?: string): void {
    if (!this.#socket.writable) return;
    writeFrame(
      this.#socket,
      message === undefined
        ? { v: 1, type: 'keep-event', event }
        : { v: 1, type: 'keep-event', event, message },
    );
  }

  /** Ends the Keep's side of the pipe; resolves once what was written has left the process. */
  close(): Promise<void> {
    return endStream(this.#socket);
  }
}

/** Ends a stream's writing side and resolves once its last bytes are written (or it broke or was closed). */
export function endStream(stream: Duplex): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || stream.writableFinished) {
      resolve();
      return;
    }
    stream.once('error', () => resolve());
    stream.once('close', () => resolve());
    stream.end(() => resolve());
  });
}
