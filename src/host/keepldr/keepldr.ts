import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { KeepConfig } from '../../protocol/ipc.ts';
import { KeepLifecycle } from '../../protocol/lifecycle.ts';
import type { KeepState, MessageOf } from '../../protocol/messages.ts';
import { MUX_CONNECT, MUX_LISTEN, MUX_OPEN, type MuxIncoming } from '../../protocol/mux.ts';
import { type Backend, createBackend } from '../backends/index.ts';
import { TIMEOUTS } from '../timeouts.ts';
import type { KeepLoaderConfig } from './config.ts';
import { connectOut } from './connect.ts';
import { KeepProcess } from './keep-process.ts';
import { ManagerSocket } from './manager-socket.ts';
import { HostPorts } from './ports.ts';

export { cvmCollateralOptions } from '../backends/cvm.ts';
export { decodeKeepLoaderConfig, type KeepLoaderConfig, keepLoaderConfigSchema } from './config.ts';

/** The timeouts a Keep Loader uses; an embedding (a test) may shorten them. */
export type KeepLoaderTimeouts = {
  [K in 'killAfter' | 'openingFrame' | 'finalFlush' | 'connect']: number;
};

/**
 * What an embedding may replace: the backend (a test drives the cvm backend over a fake configfs-tsm in its own
 * process), what happens when the Keep Loader is done (the program exits), where its log lines go (stderr)
 * and its timeouts.
 */
export interface KeepLoaderHooks {
  backend?: Pick<Backend, 'evidence' | 'collateral'>;
  exit?: (code: number) => void;
  log?: (line: string) => void;
  timeouts?: Partial<KeepLoaderTimeouts>;
}

/** The lifecycle state each event of the Keep moves to, when the event moves it. */
const EVENT_STATES: { readonly [E in MessageOf<'keep-event'>['event']]: KeepState | undefined } = {
  ready: 'ready',
  deployed: 'running',
  // The Keep ends after saying either; its exit decides the state it ends in.
  exited: undefined,
  failed: undefined,
};

/**
 * The Keep Loader: one process per Keep. It launches the Keep on its backend (measuring the runtime it starts),
 * answers the Keep's evidence requests, relays tenants' byte streams to the Keep without reading them (one at a
 * time, multiplexed on one pipe so a later channel can attach), binds the host ports of the workload's listen
 * files and hands each connection they accept to the Keep process, and reports the Keep's lifecycle to the Keep
 * Manager over a unix socket, which outlives the Keep Manager.
 *
 * Its state follows the lifecycle table (src/protocol/lifecycle.ts), and it sees every event of its Keep:
 * an event the table does not allow (a second `ready`, `deployed` before `ready`) is logged and refused.
 * The parts are in files of their own: the Keep process and its control pipe (keep-process.ts), the listen
 * files' host ports (ports.ts), the connect files (connect.ts), and the Keep Manager's socket
 * (manager-socket.ts).
 */
export class KeepLoader {
  readonly #config: KeepLoaderConfig;
  readonly #hooks: KeepLoaderHooks;
  readonly #timeouts: KeepLoaderTimeouts;
  readonly #lifecycle: KeepLifecycle;
  readonly #socket: ManagerSocket;
  readonly #ports: HostPorts;
  #keep: KeepProcess | undefined;
  #error: string | undefined;
  #exitCode: number | undefined;
  #stopping = false;
  /** start() failed: the Keep, if any, is killed and nothing more is reported. */
  #abandoned = false;

  constructor(config: KeepLoaderConfig, hooks: KeepLoaderHooks = {}) {
    this.#config = config;
    this.#hooks = hooks;
    this.#timeouts = { ...TIMEOUTS, ...hooks.timeouts };
    this.#lifecycle = new KeepLifecycle('creating', {
      onRefused: ({ from, to }) =>
        this.#log(`refused the step ${from} → ${to}: the lifecycle has no such step`),
    });
    this.#socket = new ManagerSocket({
      path: config.socketPath,
      openingFrameMs: this.#timeouts.openingFrame,
      finalFlushMs: this.#timeouts.finalFlush,
      state: () => this.#lifecycle.state,
      event: () => this.#event(),
      stop: () => this.stop(),
      drain: () => this.#ports.drain(),
      openChannel: () => this.#keep?.mux.open(MUX_OPEN),
    });
    this.#ports = new HostPorts({
      config,
      mux: () => this.#keep?.mux,
      send: (accept, socket, failed) => this.#keep?.send(accept, socket, failed) ?? false,
      changed: () => this.#socket.publish(),
      log: (line) => this.#log(line),
    });
  }

  /** The Keep's state as this Keep Loader reports it. */
  get state(): KeepState {
    return this.#lifecycle.state;
  }

  /** The Keep's process id, once it has been started. */
  get keepPid(): number | undefined {
    return this.#keep?.pid;
  }

  /**
   * Launches the Keep and starts listening; resolves once the socket accepts connections. When it fails, the
   * Keep it started is killed and the socket removed before it rejects.
   */
  async start(): Promise<void> {
    try {
      const runtime = readFileSync(this.#config.runtimePath);
      const measurement = new Uint8Array(createHash('sha384').update(runtime).digest());
      const mrEnclave = new Uint8Array(createHash('sha256').update(runtime).digest());
      let backend = this.#hooks.backend;
      const keepConfig: KeepConfig = { limits: this.#config.limits };
      if (this.#config.maxWasmBytes !== undefined) keepConfig.maxWasmBytes = this.#config.maxWasmBytes;
      if (this.#config.evidenceSource !== undefined) keepConfig.evidenceSource = this.#config.evidenceSource;
      if (this.#config.attestationRoot !== undefined)
        keepConfig.attestationRoot = this.#config.attestationRoot;
      // Start the Keep first: its start-up is the slowest step, and the rest can happen meanwhile.
      this.#keep = new KeepProcess({
        runtimePath: this.#config.runtimePath,
        config: keepConfig,
        // Set below, in this same turn: the Keep cannot ask before its first message arrives.
        backend: {
          evidence: (reportData) => backend!.evidence(reportData),
          collateral: (quote) =>
            backend!.collateral === undefined
              ? Promise.reject(new Error('this backend has no collateral to give'))
              : backend!.collateral(quote),
        },
        killAfterMs: this.#timeouts.killAfter,
        log: (line) => this.#write(`keep ${this.#config.id}: ${line}`),
        onEvent: (e) => this.#onEvent(e),
        onStream: (incoming) => this.#onStream(incoming),
        onMessage: (m) => this.#ports.message(m),
        onFailure: (reason) => {
          this.#error = reason;
        },
        onExit: (code, signal) => this.#onExit(code, signal),
      });
      // The backend is made while the Keep starts on another core: the sim backend reads and checks its
      // simulated root (RSA and ECDSA keys, a certificate chain), which would otherwise delay the Keep.
      backend ??= createBackend(this.#config.backend, {
        ...this.#config,
        measurement,
        mrEnclave,
        warn: (m) => this.#log(m),
      });
      if (this.#stopping) this.#keep.terminate();
      await this.#socket.listen();
    } catch (error) {
      this.#abandoned = true;
      this.#keep?.kill();
      this.#socket.removeSocket();
      throw error;
    }
    this.#socket.publish();
  }

  /** Stops the Keep: asks it to end (SIGTERM), and kills it after `TIMEOUTS.killAfter` if it has not. */
  stop(): void {
    this.#stopping = true;
    this.#keep?.terminate();
  }

  /** Removes the socket file, whatever state the Keep Loader is in: for the last moment of the process. */
  removeSocket(): void {
    this.#socket.removeSocket();
  }

  #onEvent(e: MessageOf<'keep-event'>): void {
    const to = EVENT_STATES[e.event];
    if (e.event === 'failed' && e.message !== undefined) this.#error = e.message;
    if (to === undefined) return;
    if (to === this.#lifecycle.state) {
      this.#log(`refused the Keep's event '${e.event}': the Keep is ${to} already`);
      return;
    }
    if (this.#lifecycle.to(to)) this.#socket.publish();
  }

  #onStream({ stream, kind, payload }: MuxIncoming): void {
    if (kind === MUX_LISTEN) this.#ports.listen(stream, payload);
    else if (kind === MUX_CONNECT)
      connectOut(stream, payload, {
        deny: this.#config.denyConnect === true,
        timeoutMs: this.#timeouts.connect,
      });
    else stream.reset('not a request a Keep may make');
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#abandoned) return;
    // Its ports close with it, so the last event reports none; the connections it held closed with it.
    this.#ports.closeAll();
    if (this.#stopping) this.#lifecycle.to('stopped');
    else if (code === 0 && this.#lifecycle.to('exited')) this.#exitCode = 0;
    else {
      this.#error ??=
        code === 0
          ? 'the Keep exited before a workload was deployed'
          : signal
            ? `the Keep was killed by ${signal}`
            : `the Keep ended with status ${code}`;
      if (code !== null) this.#exitCode = code;
      this.#lifecycle.to('failed');
    }
    this.#socket.publish();
    void this.#shutdown();
  }

  #event(): MessageOf<'ldr-event'> {
    const state = this.#lifecycle.state;
    const e: MessageOf<'ldr-event'> = { v: 1, type: 'ldr-event', state, ldrPid: process.pid };
    const keepPid = this.#keep?.pid;
    if (keepPid !== undefined) e.keepPid = keepPid;
    const ports = this.#ports.mappings();
    if (ports.length > 0) e.ports = ports;
    if (this.#exitCode !== undefined) e.exitCode = this.#exitCode;
    if (this.#error !== undefined && (state === 'failed' || state === 'stopped')) e.error = this.#error;
    return e;
  }

  async #shutdown(): Promise<void> {
    // Let watchers read the final state, then close everything; the process ends once they have.
    this.#keep?.mux.destroyAll();
    await this.#socket.close();
    (this.#hooks.exit ?? ((code: number) => process.exit(code)))(0);
  }

  #log(line: string): void {
    this.#write(`keepldr ${this.#config.id}: ${line}`);
  }

  #write(line: string): void {
    if (this.#hooks.log) this.#hooks.log(line);
    else process.stderr.write(`${line}\n`);
  }
}
