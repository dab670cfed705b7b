import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { KeepState, Limits, Message } from '../../protocol/messages.ts';
import { readFirstFrame, readFrames, writeFrame } from '../../protocol/stream.ts';
import { type Backend, nilBackend, simBackend } from '../backends/index.ts';

/** The Keep Manager's instructions to one Keep Loader (public values only). */
export interface KeepLoaderConfig {
  id: string;
  backend: 'sim' | 'nil';
  nonce: string;
  socketPath: string;
  runtimePath: string;
  simRootPath?: string;
  limits: Limits;
}

type LdrEvent = Extract<Message, { type: 'ldr-event' }>;

/**
 * The Keep Loader: one process per Keep. It launches the Keep on its backend (measuring the runtime it starts),
 * answers the Keep's evidence requests, relays the tenant's byte stream to the Keep without reading it, and
 * reports the Keep's lifecycle to the Keep Manager over a unix socket.
 */
export class KeepLoader {
  readonly #config: KeepLoaderConfig;
  readonly #watchers = new Set<Socket>();
  #state: KeepState = 'creating';
  #error: string | undefined;
  #keep: ChildProcess | undefined;
  #server: Server | undefined;
  #channelTaken = false;
  #stopping = false;

  constructor(config: KeepLoaderConfig) {
    this.#config = config;
  }

  /** Starts listening and launches the Keep; resolves once the socket accepts connections. */
  async start(): Promise<void> {
    const runtime = readFileSync(this.#config.runtimePath);
    const measurement = new Uint8Array(createHash('sha384').update(runtime).digest());
    const backend: Backend =
      this.#config.backend === 'sim' ? simBackend(this.#requireSimRoot(), measurement) : nilBackend();

    rmSync(this.#config.socketPath, { force: true });
    this.#server = createServer((socket) => this.#onConnection(socket));
    await new Promise<void>((resolve, reject) => {
      this.#server!.once('error', reject);
      this.#server!.listen(this.#config.socketPath, () => resolve());
    });

    const keepConfig = JSON.stringify({ nonce: this.#config.nonce, limits: this.#config.limits });
    const keep = spawn(process.execPath, [this.#config.runtimePath, keepConfig], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
      // The Keep gets nothing of the host's environment.
      env: {},
    });
    this.#keep = keep;
    const control = keep.stdio[3] as unknown as Readable & Writable;
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
                  : { v: 1, type: 'evidence', kind: e.kind, report: e.report, certs: e.certs },
              ),
            (error: unknown) => {
              this.#error = `evidence request failed: ${String(error)}`;
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
    keep.on('exit', (code, signal) => {
      if (this.#stopping) this.#setState('stopped');
      else if (code === 0) this.#setState('exited', 0);
      else {
        this.#error ??= signal ? `the Keep was killed by ${signal}` : `the Keep ended with status ${code}`;
        this.#setState('failed', code ?? undefined);
      }
      this.#shutdown();
    });
    this.#publish();
  }

  /** Stops the Keep (the workload is killed with it). */
  stop(): void {
    if (this.#stopping || !this.#keep || this.#keep.exitCode !== null) return;
    this.#stopping = true;
    this.#keep.kill('SIGKILL');
  }

  #requireSimRoot(): string {
    if (!this.#config.simRootPath) throw new Error('Cannot start a sim Keep: no simulated root was given');
    return this.#config.simRootPath;
  }

  #event(): LdrEvent {
    const e: LdrEvent = { v: 1, type: 'ldr-event', state: this.#state };
    if (this.#keep?.pid !== undefined) e.keepPid = this.#keep.pid;
    if (this.#exitCode !== undefined) e.exitCode = this.#exitCode;
    if (this.#error !== undefined && (this.#state === 'failed' || this.#state === 'stopped'))
      e.error = this.#error;
    return e;
  }

  #exitCode: number | undefined;

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
        const keepChannel = this.#keep?.stdio[4] as (Readable & Writable) | undefined;
        if (this.#channelTaken || !keepChannel || this.#state !== 'ready') {
          socket.destroy();
          return;
        }
        this.#channelTaken = true;
        // From here on the bytes are TLS records between the tenant and the Keep; they are passed, never read.
        if (rest.length > 0) keepChannel.write(rest);
        socket.pipe(keepChannel);
        keepChannel.pipe(socket);
        socket.resume();
        socket.on('close', () => keepChannel.end());
        return;
      }
      default:
        socket.destroy();
    }
  }

  #shutdown(): void {
    // Let watchers read the final state, then close everything.
    for (const w of this.#watchers) w.end();
    this.#server?.close();
    rmSync(this.#config.socketPath, { force: true });
    setTimeout(() => process.exit(0), 50).unref();
  }
}
