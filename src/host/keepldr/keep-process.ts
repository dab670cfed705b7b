// The Keep as a process of the Keep Loader: started with its configuration and nothing of the host's
// environment, answered on its control pipe (evidence for the report_data it supplies, its lifecycle events),
// joined on its channel pipe by a mux, sent accepted connections on its IPC channel, and ended gracefully.
import type { ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { reasonOf } from '../../lib/errors.ts';
import { type HandOffAccept, type KeepConfig, keepConfigSchema } from '../../protocol/ipc.ts';
import type { MessageOf } from '../../protocol/messages.ts';
import { type MuxIncoming, MuxSession } from '../../protocol/mux.ts';
import { readFrames, writeFrame } from '../../protocol/stream.ts';
import { encodeDcapCollateral } from '../../ratls/cmw.ts';
import type { Backend, BackendEvidence } from '../backends/index.ts';
import { adoptEarlyKeep, spawnKeep } from './spawn-keep.ts';
import { encodeIpc } from './wire.ts';

/** The `evidence` answer to the Keep for what the backend gave. */
export function evidenceMessage(e: BackendEvidence): MessageOf<'evidence'> {
  switch (e.kind) {
    case 'none':
      return { v: 1, type: 'evidence', kind: 'none', report: new Uint8Array(0), certs: [] };
    case 'tdx':
    case 'sgx':
      return {
        v: 1,
        type: 'evidence',
        kind: e.kind,
        report: e.quote,
        certs: [],
        ...(e.collateral === undefined ? {} : { collateral: encodeDcapCollateral(e.collateral) }),
      };
    case 'sev-snp':
      return { v: 1, type: 'evidence', kind: e.kind, report: e.report, certs: e.certs };
  }
}

export { PROCESS_ENV } from './spawn-keep.ts';

/** How a Keep process is started, and who hears from it. */
export interface KeepProcessOptions {
  /** The Keep runtime bundle. */
  runtimePath: string;
  /** What the Keep is told (argv[2]), checked against `keepConfigSchema` before it is sent. */
  config: KeepConfig;
  /** Where the Keep's evidence comes from. */
  backend: Pick<Backend, 'evidence' | 'collateral'>;
  /** After SIGTERM, how long the Keep has to end before SIGKILL (`TIMEOUTS.killAfter`). */
  killAfterMs: number;
  /** Where the Keep's stderr goes, a line at a time, and what this file has to say. */
  log(line: string): void;
  /** A lifecycle event the Keep reported on its control pipe. */
  onEvent(event: MessageOf<'keep-event'>): void;
  /** A stream the Keep opened on its channel pipe (LISTEN or CONNECT). */
  onStream(incoming: MuxIncoming): void;
  /** A message from the Keep on its IPC channel (unchecked). */
  onMessage(message: unknown): void;
  /** The Keep broke a rule of its pipes, or its evidence could not be had: it is being killed, for `reason`. */
  onFailure(reason: string): void;
  /** The Keep process ended. */
  onExit(code: number | null, signal: NodeJS.Signals | null): void;
}

/** One Keep process and its three channels to the Keep Loader. */
export class KeepProcess {
  readonly #child: ChildProcess;
  readonly #killAfterMs: number;
  /** The mux of the channel pipe: tenants' channels and ACCEPT streams out, LISTEN and CONNECT in. */
  readonly mux: MuxSession;
  #killTimer: NodeJS.Timeout | undefined;

  constructor(options: KeepProcessOptions) {
    this.#killAfterMs = options.killAfterMs;
    const config = encodeIpc(keepConfigSchema, options.config, 'Keep configuration');
    const configJson = JSON.stringify(config);
    // One started ahead for this very configuration (by `donjon run`) is used; otherwise a new one.
    const child =
      adoptEarlyKeep(options.runtimePath, configJson) ?? spawnKeep(options.runtimePath, configJson);
    this.#child = child;
    child.on('message', (m: unknown) => options.onMessage(m));
    child.stderr?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line) options.log(line);
    });
    const fail = (reason: string): void => {
      options.onFailure(reason);
      this.kill();
    };
    const control = child.stdio[3] as unknown as Readable & Writable;
    // The Keep pairs answers with its requests by their order, so they are written in that order.
    let answered: Promise<void> = Promise.resolve();
    const answer = (made: Promise<MessageOf<'evidence'>>, what: string): void => {
      answered = answered.then(() =>
        made.then(
          (e) => {
            writeFrame(control, e);
          },
          (error: unknown) => fail(`the ${what} failed: ${reasonOf(error)}`),
        ),
      );
    };
    readFrames(
      control,
      (m) => {
        if (m.type === 'evidence-request') {
          answer(options.backend.evidence(m.reportData).then(evidenceMessage), 'evidence request');
        } else if (m.type === 'collateral-request') {
          const backend = options.backend;
          answer(
            backend.collateral === undefined
              ? Promise.reject(new Error('this backend has no collateral to give'))
              : backend
                  .collateral(m.quote)
                  .then((collateral) => evidenceMessage({ kind: 'sgx', quote: m.quote, collateral })),
            'collateral request',
          );
        } else if (m.type === 'keep-event') options.onEvent(m);
        else options.log(`ignored a '${m.type}' message on the control pipe`);
      },
      { onError: () => fail('the Keep broke the framing of its control pipe') },
    );
    const pipe = child.stdio[4] as unknown as Readable & Writable;
    pipe.on('error', () => {});
    this.mux = new MuxSession(pipe, {
      side: 'host',
      onStream: options.onStream,
      onError: () => fail('the Keep broke the framing of its pipe'),
    });
    child.on('exit', (code, signal) => {
      if (this.#killTimer) clearTimeout(this.#killTimer);
      options.onExit(code, signal);
    });
  }

  /** The Keep's process id. */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Whether the process has ended. */
  get ended(): boolean {
    return this.#child.exitCode !== null || this.#child.signalCode !== null;
  }

  /**
   * Sends a connection to the Keep over its IPC channel with its accept message; `failed` runs if that
   * fails. False, having done nothing, when the channel is gone.
   */
  send(accept: HandOffAccept, socket: Socket, failed: () => void): boolean {
    if (!this.#child.connected) return false;
    this.#child.send(accept, socket, {}, (error) => {
      if (error !== null) failed();
    });
    return true;
  }

  /**
   * Ends the Keep gracefully: SIGTERM, on which it ends its workload and exits, then SIGKILL if it is still
   * there after `killAfterMs`.
   */
  terminate(): void {
    if (this.ended || this.#killTimer) return;
    this.#child.kill('SIGTERM');
    this.#killTimer = setTimeout(() => this.kill(), this.#killAfterMs);
  }

  /** Ends the Keep at once. */
  kill(): void {
    if (!this.ended) this.#child.kill('SIGKILL');
  }
}
