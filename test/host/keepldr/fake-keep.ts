// A stand-in for the Keep runtime, for tests of the Keep Loader: a tiny script the Keep Loader starts as its
// runtimePath, which joins its control pipe (fd 3) and channel pipe (fd 4) to unix sockets of the test. The
// test then plays the Keep with the real protocol code: frames on the control pipe, a mux on the other.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Message } from '../../../src/protocol/messages.ts';
import { type MuxIncoming, MuxSession } from '../../../src/protocol/mux.ts';
import { readFrames, writeFrame } from '../../../src/protocol/stream.ts';

/** How the fake Keep behaves. */
export interface FakeKeepOptions {
  /** Ignore SIGTERM (a Keep that does not end when asked). */
  ignoreTerm?: boolean;
  /** Messages it sends on its IPC channel once started. */
  ipc?: unknown[];
  /** What it does with a stream the Keep Loader opens on the channel pipe; by default it resets it. */
  onStream?: (incoming: MuxIncoming) => void;
}

const SCRIPT = `import { connect, Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
const o = JSON.parse(OPTIONS);
writeFileSync(o.argsFile, process.argv[2] ?? '');
if (o.ignoreTerm) process.on('SIGTERM', () => writeFileSync(o.termFile, 'SIGTERM'));
for (const m of o.ipc) process.send(m);
for (const [fd, path] of [[3, o.control], [4, o.pipe]]) {
  const local = new Socket({ fd, readable: true, writable: true });
  const remote = connect(path);
  local.on('error', () => {});
  remote.on('error', () => {});
  local.pipe(remote);
  remote.pipe(local);
  // The test hung up: the Keep ends, as a Keep whose workload has exited does.
  if (fd === 3) remote.on('close', () => process.exit(0));
}
`;

/** One fake Keep runtime and the test's ends of its pipes. */
export class FakeKeep {
  readonly dir: string;
  readonly runtimePath: string;
  readonly #argsFile: string;
  readonly #termFile: string;
  readonly #servers: Server[] = [];
  /** The test's end of the control pipe, once the Keep has started. */
  readonly control: Promise<Socket>;
  /** The Keep's side of the channel pipe's mux, once the Keep has started. */
  readonly mux: Promise<MuxSession>;
  /** Every message the Keep Loader sent on the control pipe. */
  readonly received: Message[] = [];

  constructor(options: FakeKeepOptions = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'djfk-'));
    this.runtimePath = join(this.dir, 'keep.mjs');
    this.#argsFile = join(this.dir, 'argv');
    this.#termFile = join(this.dir, 'sigterm');
    const o = {
      control: join(this.dir, 'c.sock'),
      pipe: join(this.dir, 'p.sock'),
      argsFile: this.#argsFile,
      termFile: this.#termFile,
      ignoreTerm: options.ignoreTerm === true,
      ipc: options.ipc ?? [],
    };
    writeFileSync(this.runtimePath, SCRIPT.replace('OPTIONS', JSON.stringify(JSON.stringify(o))));
    this.control = this.#accept(o.control).then((socket) => {
      readFrames(socket, (m) => this.received.push(m), { onError: () => {} });
      return socket;
    });
    this.mux = this.#accept(o.pipe).then(
      (socket) =>
        new MuxSession(socket, {
          side: 'keep',
          onStream:
            options.onStream ??
            ((incoming: MuxIncoming) => incoming.stream.reset('the fake Keep takes no streams')),
          onError: () => socket.destroy(),
        }),
    );
  }

  /** Sends a lifecycle event, as the Keep does on its control pipe. */
  async event(event: 'ready' | 'deployed' | 'exited' | 'failed', message?: string): Promise<void> {
    const m: Message =
      message === undefined
        ? { v: 1, type: 'keep-event', event }
        : { v: 1, type: 'keep-event', event, message };
    writeFrame(await this.control, m);
  }

  /** The configuration the Keep was started with (its argv[2]). */
  startedWith(): string {
    return readFileSync(this.#argsFile, 'utf8');
  }

  /** Whether it was sent SIGTERM (with `ignoreTerm` only). */
  get sawSigterm(): boolean {
    return existsSync(this.#termFile);
  }

  /** Closes the test's sockets. */
  close(): void {
    for (const s of this.#servers) s.close();
    void this.control.then((s) => s.destroy());
  }

  #accept(path: string): Promise<Socket> {
    return new Promise((resolve) => {
      const server = createServer((socket) => {
        socket.on('error', () => {});
        resolve(socket);
      });
      this.#servers.push(server);
      server.listen(path);
    });
  }
}
