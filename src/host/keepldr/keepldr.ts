import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { encodeFrame } from '../../protocol/frames.ts';
import type { KeepState, Limits, Message } from '../../protocol/messages.ts';
import { encodeMuxFrame, MUX_DATA, MUX_END, MUX_OPEN, MUX_RESET, MuxReader } from '../../protocol/mux.ts';
import { readFirstFrame, readFrames, writeFrame } from '../../protocol/stream.ts';
import { type Backend, cvmBackend, nilBackend, simBackend } from '../backends/index.ts';

/** The Keep Manager's instructions to one Keep Loader (public values only). */
export interface KeepLoaderConfig {
  id: string;
  backend: 'sim' | 'nil' | 'cvm';
  socketPath: string;
  runtimePath: string;
  simRootPath?: string;
  limits: Limits;
  maxWasmBytes?: number;
}

type LdrEvent = Extract<Message, { type: 'ldr-event' }>;

/**
 * The Keep Loader: one process per Keep. It launches the Keep on its backend (measuring the runtime it starts),
 * answers the Keep's evidence requests, relays tenants' byte streams to the Keep without reading them (one at a
 * time, multiplexed on one pipe so a later channel can attach), and reports the Keep's lifecycle to the Keep
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
  #nextStream = 1;
  #stopping = false;

  constructor(config: KeepLoaderConfig) {
    this.#config = config;
  }

  /** Launches the Keep and starts listening; resolves once the socket accepts connections. */
  async start(): Promise<void> {
    const runtime = readFileSync(this.#config.runtimePath);
    const measurement = new Uint8Array(createHash('sha384').update(runtime).digest());
    const keepConfig: Record<string, unknown> = { limits: this.#config.limits };
    if (this.#config.maxWasmBytes !== undefined) keepConfig['maxWasmBytes'] = this.#config.maxWasmBytes;
    // Start the Keep first: its start-up is the slowest step, and the rest can happen meanwhile.
    const keep = spawn(process.execPath, [this.#config.runtimePath, JSON.stringify(keepConfig)], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
      // The Keep gets nothing of the host's environment.
      env: {},
    });
    this.#keep = keep;
    const backend: Pick<Backend, 'evidence'> =
      this.#config.backend === 'sim'
        ? simBackend(this.#requireSimRoot(), measurement)
        : this.#config.backend === 'cvm'
          ? cvmBackend()
          : nilBackend();
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
                    ? { v: 1, type: 'evidence', kind: 'tdx', report: e.quote, certs: [] }
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
    const mux = new MuxReader();
    pipe.on('data', (chunk: Buffer) => {
      let frames: ReturnType<MuxReader['push']>;
      try {
        frames = mux.push(chunk);
      } catch {
        keep.kill('SIGKILL');
        return;
      }
      for (const f of frames) {
        const channel = this.#channel;
        if (!channel || (channel as Socket & { muxId?: number }).muxId !== f.id) continue;
        if (f.kind === MUX_DATA) channel.write(f.payload);
        else if (f.kind === MUX_END) channel.end();
        else if (f.kind === MUX_RESET) channel.destroy();
      }
    });
    pipe.on('error', () => {});
    keep.on('exit', (code, signal) => {
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
    this.#server = createServer((socket) => void this.#onConnection(socket, pipe));
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

  #requireSimRoot(): string {
    if (!this.#config.simRootPath) throw new Error('Cannot start a sim Keep: no simulated root was given');
    return this.#config.simRootPath;
  }

  #event(): LdrEvent {
    const e: LdrEvent = { v: 1, type: 'ldr-event', state: this.#state, ldrPid: process.pid };
    if (this.#keep?.pid !== undefined) e.keepPid = this.#keep.pid;
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

  async #onConnection(socket: Socket, pipe: Writable): Promise<void> {
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
        const id = this.#nextStream++;
        (socket as Socket & { muxId?: number }).muxId = id;
        this.#channel = socket;
        writeFrame(socket, this.#event());
        // From here on the bytes are the tenant's, to and from the Keep; they are passed, never read.
        pipe.write(encodeMuxFrame(MUX_OPEN, id));
        if (rest.length > 0) pipe.write(encodeMuxFrame(MUX_DATA, id, rest));
        socket.on('data', (chunk: Buffer) => {
          if (!pipe.write(encodeMuxFrame(MUX_DATA, id, chunk))) {
            socket.pause();
            pipe.once('drain', () => socket.resume());
          }
        });
        let ended = false;
        socket.on('end', () => {
          ended = true;
          pipe.write(encodeMuxFrame(MUX_END, id));
        });
        socket.on('close', () => {
          if (this.#channel === socket) this.#channel = undefined;
          // A connection that broke rather than ended resets the Keep's side of it.
          if (!ended) pipe.write(encodeMuxFrame(MUX_RESET, id));
        });
        socket.resume();
        return;
      }
      default:
        socket.destroy();
    }
  }

  #shutdown(): void {
    // Let watchers read the final state, then close everything.
    for (const w of this.#watchers) w.end();
    this.#channel?.destroy();
    this.#server?.close();
    rmSync(this.#config.socketPath, { force: true });
    setTimeout(() => process.exit(0), 50).unref();
  }
}
