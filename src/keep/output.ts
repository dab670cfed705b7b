import type { Message } from '../protocol/messages.ts';

/** Output kept for a client that is not attached, bytes; beyond it output is dropped and the client told. */
export const DETACHED_OUTPUT_LIMIT = 4 << 20;

/**
 * What the Keep holds for the next client while none is attached: the workload's output up to a byte limit
 * (what does not fit is dropped and counted), and the result, which is never dropped.
 */
export class OutputBuffer {
  /** Most bytes of stdout and stderr kept. */
  readonly limit: number;
  #kept: Message[] = [];
  #bytes = 0;
  #dropped = 0;

  constructor(limit = DETACHED_OUTPUT_LIMIT) {
    this.limit = limit;
  }

  /** Bytes of output kept now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Bytes of output dropped since the last {@link drain}. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Keeps a message for the next client: output while it fits, anything else always. */
  keep(m: Message): void {
    if (m.type === 'stdout' || m.type === 'stderr') {
      if (this.#bytes + m.data.length > this.limit) {
        this.#dropped += m.data.length;
        return;
      }
      this.#bytes += m.data.length;
    }
    this.#kept.push(m);
  }

  /**
   * Hands everything over to a client that attached, in order, led by a notice of the bytes dropped if any
   * were, and starts afresh.
   */
  drain(): Message[] {
    const out: Message[] = [];
    if (this.#dropped > 0) {
      out.push({
        v: 1,
        type: 'notice',
        message: `${this.#dropped} bytes of output were dropped while no client was attached`,
      });
    }
    out.push(...this.#kept);
    this.#kept = [];
    this.#bytes = 0;
    this.#dropped = 0;
    return out;
  }
}
