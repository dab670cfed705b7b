import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { parseDcapCollateral } from '../../attestation/index.ts';
import { decode } from '../../protocol/cbor.ts';
import { encodeFrame } from '../../protocol/frames.ts';
import type { KeepState, Limits, Message, PortMapping } from '../../protocol/messages.ts';
import {
  MUX_ACCEPT,
  MUX_BOUND,
  MUX_CONNECT,
  MUX_LISTEN,
  MUX_OPEN,
  MuxSession,
  type MuxStream,
} from '../../protocol/mux.ts';
import { readFirstFrame, readFrames, writeFrame } from '../../protocol/stream.ts';
import { encodeDcapCollateral } from '../../ratls/cmw.ts';
import type { CvmBackendOptions } from '../backends/cvm.ts';
import { type Backend, cvmBackend, nilBackend, simBackend } from '../backends/index.ts';
import { CollateralClient } from '../collateral/index.ts';

/** The Keep Manager's instructions to one Keep Loader (public values only). */
export interface KeepLoaderConfig {
  id: string;
  backend: 'sim' | 'nil' | 'cvm';
  socketPath: string;
  runtimePath: string;
  simRootPath?: string;
  limits: Limits;
  maxWasmBytes?: number;
  /**
   * `cvm`: the host's collateral cache, where the VCEK chain is fetched from AMD's KDS when the hypervisor
   * supplied no certificate table with a report.
   */
  collateralCacheDir?: string;
  /**
   * Where the host ports of the workload's listen files are bound: default the address each file names
   * (Enarx's default "::", every interface).
   */
  listenAddress?: string;
  /**
   * Which host port a listen file gets: 'any' (default) a free one the host picks, 'same' the port the
   * file names.
   */
  hostPorts?: 'any' | 'same';
  /** Refuse the workload's connect files (outbound connections). Default: allowed. */
  denyConnect?: boolean;
  /**
   * How a connection accepted on a listen file reaches the Keep: 'hand-off' (default) passes the socket itself
   * to the Keep process, which then owns it; 'relay' keeps it here and relays its bytes over the channel pipe.
   * Either way the Keep Loader never reads them.
   */
  connections?: 'hand-off' | 'relay';
  /** Connections one listener has open at once, relayed or handed off; more are closed on arrival. */
  maxConnectionsPerListener?: number;
}

/** Connections one listener has open at once, by default. */
const MAX_CONNECTIONS_PER_LISTENER = 1024;
/** How long an outbound connection may take to open. */
const CONNECT_TIMEOUT_MS = 10_000;

function u16(n: number): Uint8Array {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(n, 0);
  return b;
}

function u32(n: number): Uint8Array {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

/** Reads the small CBOR map of a LISTEN or CONNECT request; undefined when it is not one. */
function request(payload: Uint8Array): Record<string, unknown> | undefined {
  try {
    const v = decode(payload, { maxBytes: 4096, maxDepth: 2, maxItems: 8, maxStringBytes: 1024 });
    return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Joins a TCP socket and a mux stream both ways. A clean close on one side (both directions ended) lets the
 * other finish on its own; anything else tears the other down too.
 */
function splice(socket: Socket, stream: MuxStream): void {
  socket.pipe(stream);
  stream.pipe(socket);
  socket.on('error', () => socket.destroy());
  stream.on('error', () => stream.destroy());
  socket.on('close', () => {
    if (!(socket.readableEnded && socket.writableFinished)) stream.destroy();
  });
  stream.on('close', () => {
    if (!(stream.readableEnded && stream.writableFinished)) socket.destroy();
  });
}

/**
 * How the `cvm` backend completes evidence from the host's collateral cache: the VCEK chain of an SEV-SNP
 * report the hypervisor gave no certificates for, the DCAP collateral of a TDX quote. `warn` hears why a
 * quote goes without collateral.
 */
export function cvmCollateralOptions(
  client: () => Pick<CollateralClient, 'snpCertificates' | 'dcapCollateral'>,
  warn: (message: string) => void,
): Pick<CvmBackendOptions, 'snpCertificates' | 'dcapCollateral' | 'onCollateralError'> {
  return {
    snpCertificates: (report) => client().snpCertificates(report),
    dcapCollateral: async (quote) => parseDcapCollateral(await client().dcapCollateral(quote)),
    onCollateralError: (error) =>
      warn(
        `the TDX quote goes without collateral: ${error instanceof Error ? error.message : String(error)}`,
      ),
  };
}

type LdrEvent = Extract<Message, { type: 'ldr-event' }>;

/**
 * What an embedding may replace: the backend (a test drives the cvm backend over a fake configfs-tsm in its own
 * process) and what happens when the Keep Loader is done (the program exits).
 */
export interface KeepLoaderHooks {
  backend?: Pick<Backend, 'evidence'>;
  exit?: (code: number) => void;
}

/**
 * The Keep Loader: one process per Keep. It launches the Keep on its backend (measuring the runtime it starts),
 * answers the Keep's evidence requests, relays tenants' byte streams to the Keep without reading them (one at a
 * time, multiplexed on one pipe so a later channel can attach), binds the host ports of the workload's listen
 * files and hands each connection they accept to the Keep process, and reports the Keep's lifecycle to the Keep
 * Manager over a unix socket, which outlives the Keep Manager.
 */
export class KeepLoader {
  readonly #config: KeepLoaderConfig;
  readonly #watchers = new Set<Socket>();
  #state: KeepState = 'creating';
  #error: string | undefined;
  #exitCode: number | undefined;
  #keep: ChildProcess | undefined;
  #server: Server | undefined;
  #channel: Socket | undefined;
  #mux: MuxSession | undefined;
  readonly #listeners = new Map<number, { server: Server; name: string; port: number }>();
  /** Connections handed to the Keep and not yet reported closed: what to do when they are. */
  readonly #handedOver = new Map<number, () => void>();
  #nextHandOff = 1;
  #stopping = false;

  readonly #hooks: KeepLoaderHooks;

  constructor(config: KeepLoaderConfig, hooks: KeepLoaderHooks = {}) {
    this.#config = config;
    this.#hooks = hooks;
  }

  /** Launches the Keep and starts listening; resolves once the socket accepts connections. */
  async start(): Promise<void> {
    const runtime = readFileSync(this.#config.runtimePath);
    const measurement = new Uint8Array(createHash('sha384').update(runtime).digest());
    const keepConfig: Record<string, unknown> = { limits: this.#config.limits };
    if (this.#config.maxWasmBytes !== undefined) keepConfig['maxWasmBytes'] = this.#config.maxWasmBytes;
    // Start the Keep first: its start-up is the slowest step, and the rest can happen meanwhile.
    const keep = spawn(process.execPath, [this.#config.runtimePath, JSON.stringify(keepConfig)], {
      // fd 3: control pipe; fd 4: channel pipe; fd 5: the channel accepted connections are handed over on.
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe', 'ipc'],
      // The Keep gets nothing of the host's environment.
      env: {},
    });
    this.#keep = keep;
    keep.on('message', (m: unknown) => this.#onKeepMessage(m));
    const backend: Pick<Backend, 'evidence'> =
      this.#hooks.backend ??
      (this.#config.backend === 'sim'
        ? simBackend(this.#requireSimRoot(), measurement)
        : this.#config.backend === 'cvm'
          ? cvmBackend(this.#cvmOptions())
          : nilBackend());
    const control = keep.stdio[3] as unknown as Readable & Writable;
    const pipe = keep.stdio[4] as unknown as Readable & Writable;
    keep.stderr?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line) process.stderr.write(`keep ${this.#config.id}: ${line}\n`);
      }
    });
    readFrames(
      control,
      (m) => {
        if (m.type === 'evidence-request') {
          backend.evidence(m.reportData).then(
            (e) =>
              writeFrame(
                control,
                e.kind === 'none'
                  ? { v: 1, type: 'evidence', kind: 'none', report: new Uint8Array(0), certs: [] }
                  : e.kind === 'tdx'
                    ? {
                        v: 1,
                        type: 'evidence',
                        kind: 'tdx',
                        report: e.quote,
                        certs: [],
                        ...(e.collateral === undefined
                          ? {}
                          : { collateral: encodeDcapCollateral(e.collateral) }),
                      }
                    : { v: 1, type: 'evidence', kind: e.kind, report: e.report, certs: e.certs },
              ),
            (error: unknown) => {
              this.#error = `the evidence request failed: ${String(error)}`;
              keep.kill('SIGKILL');
            },
          );
        } else if (m.type === 'keep-event') {
          if (m.event === 'ready') this.#setState('ready');
          else if (m.event === 'deployed') this.#setState('running');
          else if (m.event === 'failed' && m.message !== undefined) this.#error = m.message;
        }
      },
      { onError: () => keep.kill('SIGKILL') },
    );
    this.#mux = new MuxSession(pipe, {
      side: 'host',
      onStream: ({ stream, kind, payload }) => {
        if (kind === MUX_LISTEN) this.#listen(stream, payload);
        else if (kind === MUX_CONNECT) this.#connect(stream, payload);
        else stream.reset('not a request a Keep may make');
      },
      onError: () => {
        this.#error = 'the Keep broke the framing of its pipe';
        keep.kill('SIGKILL');
      },
    });
    pipe.on('error', () => {});
    keep.on('exit', (code, signal) => {
      // Its ports close with it, so the last event reports none; the connections it held closed with it.
      for (const l of this.#listeners.values()) l.server.close();
      this.#listeners.clear();
      this.#handedOver.clear();
      if (this.#stopping) this.#setState('stopped');
      else if (code === 0) this.#setState('exited', 0);
      else {
        this.#error ??= signal ? `the Keep was killed by ${signal}` : `the Keep ended with status ${code}`;
        this.#setState('failed', code ?? undefined);
      }
      this.#shutdown();
    });
    if (this.#stopping) keep.kill('SIGKILL');

    rmSync(this.#config.socketPath, { force: true });
    this.#server = createServer((socket) => void this.#onConnection(socket));
    await new Promise<void>((resolve, reject) => {
      this.#server!.once('error', reject);
      this.#server!.listen(this.#config.socketPath, () => resolve());
    });
    this.#publish();
  }

  /** Stops the Keep (the workload is killed with it). */
  stop(): void {
    this.#stopping = true;
    if (this.#keep && this.#keep.exitCode === null && this.#keep.signalCode === null)
      this.#keep.kill('SIGKILL');
  }

  #cvmOptions(): Parameters<typeof cvmBackend>[0] {
    const cacheDir = this.#config.collateralCacheDir;
    if (cacheDir === undefined) return {};
    let client: CollateralClient | undefined;
    return cvmCollateralOptions(
      () => {
        client ??= new CollateralClient({ cacheDir });
        return client;
      },
      (message) => process.stderr.write(`keepldr ${this.#config.id}: ${message}\n`),
    );
  }

  #requireSimRoot(): string {
    if (!this.#config.simRootPath) throw new Error('Cannot start a sim Keep: no simulated root was given');
    return this.#config.simRootPath;
  }

  /**
   * Binds a host port for one of the workload's listen files and passes its connections to the Keep: handed
   * over, or relayed as ACCEPT streams of the mux.
   */
  #listen(stream: MuxStream, payload: Uint8Array): void {
    stream.on('error', () => {});
    const r = request(payload);
    const name = r?.['name'];
    const port = r?.['port'];
    const addr = r?.['addr'];
    if (
      typeof name !== 'string' ||
      typeof port !== 'number' ||
      !Number.isInteger(port) ||
      port < 0 ||
      port > 65535 ||
      typeof addr !== 'string'
    ) {
      stream.reset('a LISTEN request must be { name, port, addr }');
      return;
    }
    const max = this.#config.maxConnectionsPerListener ?? MAX_CONNECTIONS_PER_LISTENER;
    let open = 0;
    const closed = (): void => {
      open--;
    };
    // Paused: the bytes of a connection are read by the Keep, not here.
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (socket) => {
      if (!this.#mux || stream.destroyed || open >= max) {
        socket.destroy();
        return;
      }
      open++;
      if (this.#handOver(socket, stream.id, closed)) return;
      socket.once('close', closed);
      splice(socket, this.#mux.open(MUX_ACCEPT, u32(stream.id)));
    });
    const hostPort = this.#config.hostPorts === 'same' ? port : 0;
    const host = this.#config.listenAddress ?? addr;
    const bind = (at: string, retry: boolean): void => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        // A host without IPv6 still serves "::" files, on every IPv4 interface.
        if (retry && at === '::' && (error.code === 'EAFNOSUPPORT' || error.code === 'EADDRNOTAVAIL')) {
          bind('0.0.0.0', false);
          return;
        }
        stream.reset(`${error.code ?? 'error'} binding ${at} port ${hostPort}`);
      });
      server.listen(hostPort, at, () => {
        if (stream.destroyed) {
          server.close();
          return;
        }
        const bound = (server.address() as { port: number }).port;
        this.#listeners.set(stream.id, { server, name, port: bound });
        stream.sendControl(MUX_BOUND, u16(bound));
        this.#publish();
      });
    };
    bind(host, true);
    stream.on('close', () => {
      // Like closing a listening socket: connections already accepted go on.
      server.close();
      if (this.#listeners.delete(stream.id)) this.#publish();
    });
    stream.resume();
  }

  /**
   * Passes an accepted connection to the Keep process over its IPC channel: from then on the Keep owns the
   * socket and this process holds none of it. `closed` runs once the Keep reports the connection closed (or the
   * hand-off failed). Returns false, having done nothing, when connections are relayed instead.
   */
  #handOver(socket: Socket, listener: number, closed: () => void): boolean {
    const keep = this.#keep;
    if (this.#config.connections === 'relay' || !keep?.connected) return false;
    const id = this.#nextHandOff++;
    this.#handedOver.set(id, closed);
    keep.send({ t: 'accept', listener, id }, socket, {}, (error) => {
      if (error === null) return;
      socket.destroy();
      const done = this.#handedOver.get(id);
      this.#handedOver.delete(id);
      done?.();
    });
    return true;
  }

  /** A message from the Keep on its IPC channel: only that a handed-over connection closed. */
  #onKeepMessage(m: unknown): void {
    if (typeof m !== 'object' || m === null) return;
    const { t, id } = m as Record<string, unknown>;
    if (t !== 'closed' || typeof id !== 'number') return;
    const done = this.#handedOver.get(id);
    this.#handedOver.delete(id);
    done?.();
  }

  /** Opens an outbound connection for one of the workload's connect files. */
  #connect(stream: MuxStream, payload: Uint8Array): void {
    stream.on('error', () => {});
    if (this.#config.denyConnect) {
      stream.reset('this host does not open outbound connections');
      return;
    }
    const r = request(payload);
    const host = r?.['host'];
    const port = r?.['port'];
    if (
      typeof host !== 'string' ||
      host === '' ||
      typeof port !== 'number' ||
      !Number.isInteger(port) ||
      port < 1 ||
      port > 65535
    ) {
      stream.reset('a CONNECT request must be { host, port }');
      return;
    }
    const socket = tcpConnect({
      host,
      port,
      allowHalfOpen: true,
      noDelay: true,
      timeout: CONNECT_TIMEOUT_MS,
    });
    const fail = (why: string): void => {
      socket.destroy();
      stream.reset(why);
    };
    socket.once('timeout', () => fail('the connection timed out'));
    socket.once('error', (error: NodeJS.ErrnoException) => fail(error.code ?? error.message));
    socket.once('connect', () => {
      socket.setTimeout(0);
      socket.removeAllListeners('timeout');
      socket.removeAllListeners('error');
      stream.sendControl(MUX_BOUND);
      splice(socket, stream);
    });
    stream.once('close', () => {
      if (socket.connecting) socket.destroy();
    });
  }

  #event(): LdrEvent {
    const e: LdrEvent = { v: 1, type: 'ldr-event', state: this.#state, ldrPid: process.pid };
    if (this.#keep?.pid !== undefined) e.keepPid = this.#keep.pid;
    if (this.#listeners.size > 0) {
      e.ports = [...this.#listeners.values()].map((l): PortMapping => ({ name: l.name, port: l.port }));
    }
    if (this.#exitCode !== undefined) e.exitCode = this.#exitCode;
    if (this.#error !== undefined && (this.#state === 'failed' || this.#state === 'stopped'))
      e.error = this.#error;
    return e;
  }

  #setState(state: KeepState, exitCode?: number): void {
    this.#state = state;
    if (exitCode !== undefined) this.#exitCode = exitCode;
    this.#publish();
  }

  #publish(): void {
    const e = this.#event();
    for (const w of this.#watchers) if (!w.destroyed) writeFrame(w, e);
  }

  async #onConnection(socket: Socket): Promise<void> {
    socket.on('error', () => socket.destroy());
    let opening: { message: Message; rest: Buffer };
    try {
      opening = await readFirstFrame(socket, { timeoutMs: 10_000 });
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
        writeFrame(socket, this.#event());
        return;
      case 'ldr-stop':
        this.stop();
        socket.end();
        return;
      case 'ldr-channel': {
        if (this.#state !== 'ready' && this.#state !== 'running') {
          socket.end(
            encodeFrame({
              v: 1,
              type: 'error',
              code: 'ERR_KEEP_NOT_READY',
              message: `the Keep is ${this.#state}`,
            }),
          );
          return;
        }
        if (this.#channel) {
          socket.end(
            encodeFrame({
              v: 1,
              type: 'error',
              code: 'ERR_KEEP_CHANNEL_BUSY',
              message: 'another client is attached to the Keep',
            }),
          );
          return;
        }
        const mux = this.#mux;
        if (!mux) {
          socket.destroy();
          return;
        }
        this.#channel = socket;
        writeFrame(socket, this.#event());
        // From here on the bytes are the tenant's, to and from the Keep; they are passed, never read.
        const stream = mux.open(MUX_OPEN);
        if (rest.length > 0) stream.write(rest);
        socket.on('close', () => {
          if (this.#channel === socket) this.#channel = undefined;
        });
        splice(socket, stream);
        socket.resume();
        return;
      }
      default:
        socket.destroy();
    }
  }

  #shutdown(): void {
    // Let watchers read the final state (the process ends once their sockets have flushed it), then close
    // everything.
    const flushed = [...this.#watchers].map(
      (w) => new Promise<void>((resolve) => (w.destroyed ? resolve() : w.end(() => resolve()))),
    );
    this.#channel?.destroy();
    for (const l of this.#listeners.values()) l.server.close();
    this.#listeners.clear();
    this.#mux?.destroyAll();
    this.#server?.close();
    rmSync(this.#config.socketPath, { force: true });
    const exit = this.#hooks.exit ?? ((code: number) => process.exit(code));
    let exited = false;
    const once = (): void => {
      if (exited) return;
      exited = true;
      exit(0);
    };
    void Promise.all(flushed).then(once);
    setTimeout(once, 200).unref();
  }
}
