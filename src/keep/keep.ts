import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { KeepConfig } from '../protocol/ipc.ts';
import { KeepLifecycle } from '../protocol/lifecycle.ts';
import type { KeepState, Message, MessageOf } from '../protocol/messages.ts';
import { MUX_ACCEPT, MUX_OPEN, MuxSession, type MuxStream } from '../protocol/mux.ts';
import { readFirstFrame, readFrames, writeFrame } from '../protocol/stream.ts';
import {
  startWasiWorker,
  type WasiResult,
  type WasiStandbyWorker,
  type WasiWorkerScript,
  warmWasiHost,
} from '../wasi/index.ts';
import { channelCertificate, type KeepKey, makeKeepKey, NO_ROOTS, warmCertificates } from './certificates.ts';
import { Control, endStream } from './control.ts';
import type { KeepErrorCode } from './errors.ts';
import { type EvidenceSource, GramineEvidence } from './gramine.ts';
import { OutputBuffer } from './output.ts';
import { KeepSockets, receiveHandOff } from './sockets.ts';
import { KEEP_TIMEOUTS } from './timeouts.ts';
import { nodeTls } from './tls.ts';
import { ownsWith, startWorkload, type Workload } from './workload.ts';

export type { KeepConfig } from '../protocol/ipc.ts';

/** Frame limit inside the channel: the workload module is the largest message. */
const CHANNEL_MAX_FRAME = 256 << 20;

/** How a Keep reaches its Keep Loader and how it ends; `main.ts` gives it the process's own. */
export interface KeepIo {
  /** The control pipe to the Keep Loader (fd 3): evidence and lifecycle events. */
  readonly control: Duplex;
  /** The channel pipe (fd 4), on which channels and the workload's sockets are multiplexed. */
  readonly pipe: Duplex;
  /** The WASI worker's code: carried in the Keep's own bundle, so covered by its measurement. */
  readonly workerUrl: WasiWorkerScript;
  /** Ends the Keep with a status: 0 once the workload's result was delivered or given up on, 1 otherwise. */
  exit(code: number): void;
  /** Where the Keep reports a bug of its own (a lifecycle step not in the table). Default: stderr. */
  log?(line: string): void;
}

/** A promise that settles when `promise` does, or after `ms`, whichever comes first. */
function atMost(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.then(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * The Wasm Loader: the program inside the Keep, the code the tenant trusts. It makes its key pair once, then
 * serves attested channels one at a time: each opens with the client's nonce in plaintext, and the Keep
 * answers with a certificate whose evidence binds its key to that nonce. The first channel deploys the
 * workload; a later one may attach to it (proving it holds the deployer's secret) and receives the output kept
 * while nobody was attached. Workload data only ever travels inside TLS; the control pipe carries evidence
 * and lifecycle events.
 *
 * Its lifecycle is the protocol's ({@link KeepLifecycle}): `creating` until it has its key and pipes, `ready`
 * for a channel, `running` once a workload was deployed, then `exited` when the result was delivered (or given
 * up on) or `failed`. Ending is graceful first: the channel is ended and the Keep waits for the client to
 * close its side, which it does only once it has read the result; then the pipes to the Keep Loader are
 * flushed; only after {@link KEEP_TIMEOUTS} run out does the Keep exit regardless.
 */
export class Keep {
  readonly #config: KeepConfig;
  readonly #io: KeepIo;
  readonly #lifecycle: KeepLifecycle;
  readonly #control: Control;
  /** The Keep Loader (`#control`), or the enclave itself under Gramine. */
  readonly #evidence: EvidenceSource;
  readonly #mux: MuxSession;
  readonly #key: KeepKey;
  /**
   * The workload's thread, started while the Keep waits for a channel and a workload, not after them. It is
   * most of an idle Keep's own memory (a second V8 isolate, about 8 MiB of PSS), but started when a channel
   * opens instead, its start-up lands on the first byte's path: measured from the pool, an idle Keep (Keep
   * Loader + Keep) went from 23.7 to 15.5 MiB and the first byte from 68 to 126 ms (bench/startup.ts,
   * section `memory`).
   */
  readonly #standby: WasiStandbyWorker;
  /** Output and result kept while no client is attached. */
  readonly #output = new OutputBuffer();
  /** The workload's sockets, from the moment its deploy is being set up. */
  #sockets: KeepSockets | undefined;
  #workload: Workload | undefined;
  /** SHA-256 of the deployer's secret: who may attach. */
  #owner: Uint8Array | undefined;
  /** The workload's result, once it ended. */
  #result: Message | undefined;
  /** The attached client's channel. */
  #session: TLSSocket | undefined;
  #retention: NodeJS.Timeout | undefined;
  /** Whether a channel has opened: the warm-up is then of no use. */
  #channelSeen = false;

  constructor(config: KeepConfig, io: KeepIo) {
    this.#config = config;
    this.#io = io;
    const log = io.log ?? ((line: string) => process.stderr.write(`donjon keep: ${line}\n`));
    this.#lifecycle = new KeepLifecycle('creating', {
      onRefused: ({ from, to }) =>
        log(`Cannot move the Keep from ${from} to ${to}: not a step of its lifecycle`),
    });
    this.#control = new Control(io.control, () => this.#lost());
    const control = this.#control;
    this.#evidence =
      config.evidenceSource === 'gramine'
        ? new GramineEvidence({
            ...(config.attestationRoot === undefined ? {} : { root: config.attestationRoot }),
            collateral: (quote) => control.collateral(quote),
          })
        : control;
    this.#standby = startWasiWorker(io.workerUrl);
    this.#key = makeKeepKey();
    this.#mux = new MuxSession(io.pipe, {
      side: 'keep',
      onStream: ({ stream, kind, payload }) => {
        if (kind === MUX_OPEN) {
          stream.on('error', () => stream.destroy());
          void this.#serve(stream).catch(() => stream.destroy());
        } else if (kind === MUX_ACCEPT && this.#sockets) {
          this.#sockets.accepted(stream, payload);
        } else {
          stream.reset('nothing listens here');
        }
      },
      onError: () => this.#end('failed', 'the channel pipe broke its framing'),
    });
    io.pipe.on('error', () => this.#end('failed', 'the channel pipe broke'));
  }

  /** Where the Keep is in its lifecycle. */
  get state(): KeepState {
    return this.#lifecycle.state;
  }

  /**
   * Tells the Keep Loader that the Keep is ready for a channel, then, if none comes at once (within
   * `warmUpDelayMs`), runs once what a channel and a deploy will need (certificate, TLS context, module
   * compilation) while it waits, so that they do not pay for V8 compiling that code on first use.
   */
  start(): void {
    if (!this.#lifecycle.to('ready')) return;
    this.#control.event('ready');
    // Not at once: a channel that was waiting for this Keep to be ready comes first (see warmUpDelayMs).
    const warmUp = setTimeout(() => {
      if (this.#channelSeen || this.#lifecycle.state !== 'ready') return;
      // Only a head start: whatever fails here fails again, and is reported, when a channel needs it.
      try {
        warmCertificates(this.#key);
      } catch {}
      void warmWasiHost().catch(() => {});
    }, KEEP_TIMEOUTS.warmUpDelayMs);
    warmUp.unref();
  }

  /**
   * A connection the Keep Loader accepted on a listen file and handed over on the IPC channel (fd 5), with the
   * message that came with it; anything that does not fit is closed.
   */
  handOff(m: unknown, handle: unknown): void {
    receiveHandOff(m, handle, (listener, socket) => {
      if (this.#sockets) this.#sockets.handedOver(listener, socket);
      else socket.destroy();
    });
  }

  /** The Keep Loader is gone: nobody supervises this Keep any more, so it ends at once. */
  #lost(): void {
    if (this.#lifecycle.terminal) return;
    this.#lifecycle.to('failed');
    this.#workload?.run.kill();
    this.#io.exit(1);
  }

  /**
   * Ends the Keep: stops the workload and its sockets, tells the Keep Loader, then closes gracefully (see
   * {@link Keep}). Only the first call counts.
   */
  #end(state: 'exited' | 'failed', message?: string): void {
    if (this.#lifecycle.terminal || !this.#lifecycle.to(state)) return;
    clearTimeout(this.#retention);
    this.#workload?.run.kill();
    this.#workload?.stop();
    this.#sockets?.close();
    this.#control.event(state, message);
    void this.#terminate(state === 'exited' ? 0 : 1);
  }

  async #terminate(code: number): Promise<void> {
    const forced = setTimeout(
      () => this.#io.exit(code),
      KEEP_TIMEOUTS.resultDeliveryMs + KEEP_TIMEOUTS.pipeFlushMs,
    );
    await this.#closeSession();
    await atMost(Promise.all([this.#control.close(), endStream(this.#io.pipe)]), KEEP_TIMEOUTS.pipeFlushMs);
    clearTimeout(forced);
    this.#io.exit(code);
  }

  /**
   * Ends the attached client's channel and waits until the client closes its side. The client closes only
   * once it has read the result, so until then the last output and the result may still be on their way
   * through the host's relays, which drop what they hold when the Keep's process ends. A client that does not
   * close in time is cut off.
   */
  #closeSession(): Promise<void> {
    const session = this.#session;
    if (!session || session.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => session.destroy(), KEEP_TIMEOUTS.resultDeliveryMs);
      session.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      session.end();
    });
  }

  /** Sends to the attached client, or keeps for the next one (output up to a limit; the result always). */
  #emit(m: Message): void {
    const session = this.#session;
    if (session && !session.destroyed && session.writable) writeFrame(session, m);
    else this.#output.keep(m);
  }

  #onResult(r: WasiResult): void {
    let result: Message;
    switch (r.kind) {
      case 'exit':
        result = { v: 1, type: 'exit', code: r.code };
        break;
      case 'trap':
        result = { v: 1, type: 'trap', message: r.message };
        break;
      case 'limit':
        result = { v: 1, type: 'limit', limit: r.limit, message: r.message };
        break;
      case 'killed':
        return;
    }
    this.#result = result;
    this.#emit(result);
    if (this.#session && !this.#session.destroyed) this.#end('exited');
    else {
      this.#retention = setTimeout(
        () => this.#end('exited', 'the result was not collected in time'),
        KEEP_TIMEOUTS.resultRetentionMs,
      );
    }
  }

  #refuse(tls: TLSSocket, code: KeepErrorCode | string, message: string): void {
    writeFrame(tls, { v: 1, type: 'error', code, message });
    tls.end();
  }

  async #deploy(tls: TLSSocket, m: MessageOf<'deploy'>): Promise<void> {
    this.#owner = m.owner;
    // Known before the set-up ends: a connection may reach a listen file before the workload runs.
    const sockets = new KeepSockets(this.#mux);
    this.#sockets = sockets;
    let workload: Workload;
    try {
      workload = await startWorkload(m, {
        config: this.#config,
        key: this.#key,
        control: this.#evidence,
        sockets,
        workerUrl: this.#io.workerUrl,
        standby: this.#standby,
        onStdout: (data) => this.#emit({ v: 1, type: 'stdout', data }),
        onStderr: (data) => this.#emit({ v: 1, type: 'stderr', data }),
      });
    } catch (error) {
      this.#sockets = undefined;
      this.#owner = undefined;
      const e = error as { code?: unknown; message?: unknown };
      this.#refuse(
        tls,
        typeof e.code === 'string' ? e.code : 'ERR_KEEP_INTERNAL',
        typeof e.message === 'string' ? e.message : 'Cannot start the workload',
      );
      return;
    }
    if (!this.#lifecycle.to('running')) {
      // The Keep ended while the workload was being set up.
      workload.run.kill();
      workload.stop();
      return;
    }
    this.#workload = workload;
    const started: MessageOf<'started'> = { v: 1, type: 'started' };
    if (workload.ports.length > 0) started.ports = workload.ports;
    if (m.tier !== undefined) started.tier = m.tier;
    writeFrame(tls, started);
    if (m.detach === true) {
      // A service's deployer goes away now; its output is kept for whoever attaches with its secret.
      if (this.#session === tls) this.#session = undefined;
      tls.end();
    }
    this.#control.event('deployed');
    workload.run.result.then(
      (r) => this.#onResult(r),
      (error: unknown) => {
        this.#emit({
          v: 1,
          type: 'error',
          code: 'ERR_KEEP_INTERNAL',
          message: `Cannot run the workload: ${String(error)}`,
        });
        this.#end('failed', 'internal error');
      },
    );
  }

  #attach(tls: TLSSocket, m: MessageOf<'attach'>): void {
    if (!this.#owner || !ownsWith(this.#owner, m.secret)) {
      this.#refuse(tls, 'ERR_ATTACH_REFUSED', 'Cannot attach: this client did not deploy the workload');
      return;
    }
    writeFrame(tls, { v: 1, type: 'started' });
    for (const k of this.#output.drain()) writeFrame(tls, k);
    if (this.#result) this.#end('exited');
  }

  /** Serves one channel: its hello, the attested TLS, then a deploy or an attach and the stdin that follows. */
  async #serve(stream: MuxStream): Promise<void> {
    this.#channelSeen = true;
    const busy = (): boolean => this.#session !== undefined || this.#lifecycle.terminal;
    if (busy()) {
      stream.destroy();
      return;
    }
    let hello: MessageOf<'channel-hello'>;
    try {
      const first = await readFirstFrame(stream, { timeoutMs: KEEP_TIMEOUTS.helloMs });
      if (first.message.type !== 'channel-hello') throw new Error('expected channel-hello');
      hello = first.message;
      if (first.rest.length > 0) stream.unshift(first.rest);
    } catch {
      stream.destroy();
      return;
    }
    if (busy()) {
      stream.destroy();
      return;
    }
    const cert = await channelCertificate(this.#key, this.#evidence, hello.nonce);
    const tls = new (nodeTls().TLSSocket)(stream, {
      isServer: true,
      key: this.#key.keyPem,
      cert,
      ca: NO_ROOTS,
      minVersion: 'TLSv1.3',
    });
    this.#session = tls;
    stream.resume();
    let opened = false;
    // Stdin that arrives while the workload is still being compiled waits for it.
    let ready: Promise<void> = Promise.resolve();
    const feed = (m: Message): void => {
      ready = ready.then(() => {
        try {
          if (m.type === 'stdin') this.#workload?.run.writeStdin(m.data);
          else if (m.type === 'stdin-end') this.#workload?.run.endStdin();
        } catch {
          // stdin after its end, or to a workload without stdin: nothing to deliver it to
        }
      });
    };
    const detach = (): void => {
      if (this.#session === tls) this.#session = undefined;
      tls.destroy();
    };
    tls.on('error', detach);
    tls.on('close', detach);
    readFrames(
      tls,
      (m) => {
        if (!opened) {
          opened = true;
          const deployed = this.#owner !== undefined || this.#workload !== undefined;
          if (m.type === 'deploy' && !deployed) ready = this.#deploy(tls, m);
          else if (m.type === 'attach' && this.#workload) this.#attach(tls, m);
          else {
            this.#refuse(
              tls,
              'ERR_PROTOCOL_UNEXPECTED',
              `Cannot accept ${m.type}: expected ${this.#workload ? 'attach' : 'deploy'} first`,
            );
          }
          return;
        }
        if (m.type === 'stdin' || m.type === 'stdin-end') feed(m);
        else this.#refuse(tls, 'ERR_PROTOCOL_UNEXPECTED', `Cannot accept ${m.type} here`);
      },
      { maxFrameBytes: CHANNEL_MAX_FRAME, onError: detach, onEnd: detach },
    );
  }
}
