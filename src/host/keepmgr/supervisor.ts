import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { reasonOf } from '../../lib/errors.ts';
import { encodeFrame } from '../../protocol/frames.ts';
import { readFrames } from '../../protocol/stream.ts';
import type { KeepLoaderConfig } from '../keepldr/keepldr.ts';
import type { TimeoutName } from '../timeouts.ts';
import { type Launched, type Launcher, logPath } from './launchers.ts';
import type { KeepRecords, LogEntry } from './records.ts';
import { isTerminal, type KeepRecord } from './store.ts';

/** The timeouts a Keep Manager runs on: src/host/timeouts.ts, which tests may shorten. */
export type Timeouts = { readonly [K in TimeoutName]: number };

/** What the Supervisor holds for one Keep Loader it watches. */
interface Supervised {
  /** The process, when this process started it (attached and detached launchers, until a restart). */
  child?: Launched;
  /** The watch socket: the Keep Loader reports every state of its Keep on it. */
  watch?: Socket;
  /** Set once this process saw the Keep Loader's process end (or fail to start). */
  exited: boolean;
  /** Why it ended, as this process saw it. */
  exitReason?: string;
  /** Its last stderr lines (attached ones), for the reason of a failed start. */
  tail: string[];
}

const TAIL_LINES = 40;
const REASON_CHARS = 300;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether a pid names a live process (EPERM: alive, under another user). */
export function pidAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signal(pid: number | undefined, name: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

/** The line of a Keep Loader's stderr that says why it ended: its own message, else the first error line. */
function telling(lines: readonly string[]): string | undefined {
  const own = [...lines].reverse().find((l) => l.startsWith('donjon keepldr: '));
  const thrown = lines.find((l) => /^[A-Za-z]*Error\b/.test(l));
  const line = own ?? thrown ?? lines.filter((l) => !l.startsWith('Node.js v')).at(-1);
  return line?.slice(0, REASON_CHARS);
}

/**
 * Starts, watches and ends Keep Loaders. A launcher strategy starts the process (attached child, detached
 * child in its own session, transient systemd unit); the Supervisor then follows it through its socket and
 * writes what it reports into the records, along the lifecycle table. Ending one is graceful first (the Keep
 * Loader is asked to stop, or sent SIGTERM when it cannot be reached), then after `keepldrKillAfter` SIGKILL.
 *
 * It also tidies the run folder: a Keep Loader killed outright leaves its socket file, which is removed once
 * the Supervisor learns the process is gone; a detached one's log goes with its record.
 */
export class Supervisor {
  readonly #launcher: Launcher;
  readonly #keepldrPath: string;
  readonly #runDir: string;
  readonly #records: KeepRecords;
  readonly #timeouts: Timeouts;
  readonly #log: (entry: LogEntry) => void;
  readonly #supervised = new Map<string, Supervised>();
  #closing = false;

  constructor(options: {
    launcher: Launcher;
    keepldrPath: string;
    runDir: string;
    records: KeepRecords;
    timeouts: Timeouts;
    log: (entry: LogEntry) => void;
  }) {
    this.#launcher = options.launcher;
    this.#keepldrPath = options.keepldrPath;
    this.#runDir = options.runDir;
    this.#records = options.records;
    this.#timeouts = options.timeouts;
    this.#log = options.log;
  }

  /**
   * Starts the Keep Loader of a record already inserted and watches it. Resolves once it is watched (not yet
   * ready: the caller waits for that on the records); throws with the reason when it could not be started or
   * never opened its socket before `deadline` (a time in ms since the epoch).
   */
  async start(config: KeepLoaderConfig, deadline: number): Promise<void> {
    const { id } = config;
    const s: Supervised = { exited: false, tail: [] };
    this.#supervised.set(id, s);
    const child = await this.#launcher.launch({
      config,
      keepldrPath: this.#keepldrPath,
      runDir: this.#runDir,
      onLine: (line) => {
        s.tail.push(line);
        if (s.tail.length > TAIL_LINES) s.tail.shift();
        this.#log({ event: 'keepldr-log', id, line });
      },
      onEnd: ({ code, signal, error }) =>
        this.#exited(
          id,
          s,
          error
            ? `the Keep Loader could not be started: ${reasonOf(error)}`
            : this.#exitReason(id, s, code, signal),
        ),
    });
    if (child) {
      s.child = child;
      if (child.pid !== undefined) this.#records.patch(id, { keepldrPid: child.pid });
    }
    const socketPath = this.#records.get(id)?.socketPath;
    if (socketPath === undefined) throw new Error('its record is gone');
    for (;;) {
      try {
        await this.#watch(id, s, socketPath);
        return;
      } catch {
        if (s.exited) throw new Error(s.exitReason ?? 'the Keep Loader ended');
        if (Date.now() >= deadline) throw new Error('its Keep Loader did not open its socket in time');
        await sleep(this.#timeouts.watchRetry);
      }
    }
  }

  /** Watches the Keep Loader of a record a previous run left; false when it does not answer (it is gone). */
  async adopt(record: KeepRecord): Promise<boolean> {
    const s: Supervised = { exited: false, tail: [] };
    this.#supervised.set(record.id, s);
    try {
      await this.#watch(record.id, s, record.socketPath);
      return true;
    } catch {
      this.#supervised.delete(record.id);
      rmSync(record.socketPath, { force: true });
      return false;
    }
  }

  #exitReason(id: string, s: Supervised, code: number | null, sig: NodeJS.Signals | null): string {
    let lines = s.tail;
    if (this.#launcher.kind === 'detached') {
      try {
        lines = readFileSync(logPath(this.#runDir, id), 'utf8')
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean);
      } catch {
        lines = [];
      }
    }
    const how = sig !== null ? `signal ${sig}` : `status ${code}`;
    const why = telling(lines);
    return `the Keep Loader ended (${how})${why === undefined ? '' : `: ${why}`}`;
  }

  /** The Keep Loader's process ended: after its last words had time to arrive, a Keep not ended failed. */
  #exited(id: string, s: Supervised, reason: string): void {
    if (s.exited) return;
    s.exited = true;
    s.exitReason = reason;
    setTimeout(() => {
      if (this.#closing) return;
      if (!s.watch || s.watch.destroyed) this.#records.fail(id, reason);
      this.#collect(id);
    }, this.#timeouts.lastWordGrace).unref();
  }

  /** Whether the Keep Loader of `id` is known to be gone. */
  #gone(id: string): boolean {
    const s = this.#supervised.get(id);
    if (s?.child) return s.exited;
    return !pidAlive(this.#records.get(id)?.keepldrPid);
  }

  /** Removes what a Keep Loader that is gone left in the run folder (its socket, when it could not). */
  #collect(id: string): void {
    if (this.#closing || !this.#gone(id)) return;
    const r = this.#records.get(id);
    if (r) rmSync(r.socketPath, { force: true });
  }

  /** Connects to a Keep Loader's socket and follows its reports; rejects when it cannot connect. */
  async #watch(id: string, s: Supervised, socketPath: string): Promise<void> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const c = connect(socketPath);
      c.once('connect', () => {
        c.off('error', reject);
        resolve(c);
      });
      c.once('error', reject);
    });
    s.watch = socket;
    socket.on('error', () => socket.destroy());
    socket.write(encodeFrame({ v: 1, type: 'ldr-watch' }));
    readFrames(
      socket,
      (m) => {
        if (m.type !== 'ldr-event') return;
        const patch: Partial<KeepRecord> = {};
        if (m.ldrPid !== undefined) patch.keepldrPid = m.ldrPid;
        if (m.keepPid !== undefined) patch.keepPid = m.keepPid;
        if (m.exitCode !== undefined) patch.exitCode = m.exitCode;
        if (m.error !== undefined) patch.error = m.error;
        // Every ldr-event carries the whole current list; none means no ports (any more).
        patch.ports = m.ports ?? [];
        this.#records.setState(id, m.state, patch);
      },
      { onError: () => socket.destroy(), onEnd: () => socket.destroy() },
    );
    socket.on('close', () => {
      if (s.watch === socket) delete s.watch;
      // A Keep Loader that vanished without saying how its Keep ended: the Keep is gone with it.
      setTimeout(() => {
        if (this.#closing) return;
        this.#records.fail(id, s.exitReason ?? 'the Keep Loader ended unexpectedly');
        this.#collect(id);
        // A Keep Loader still alive a moment after its watch closed (it is finishing): look again once.
        if (!this.#gone(id)) setTimeout(() => this.#collect(id), this.#timeouts.keepldrKillAfter).unref();
      }, this.#timeouts.watchLostGrace).unref();
    });
  }

  /**
   * Ends a Keep Loader: graceful (asked over its socket to stop its Keep, or SIGTERM when its socket does not
   * answer), then SIGKILL if it is still there after `keepldrKillAfter`. Resolves once it is gone or killed.
   */
  async terminate(id: string): Promise<void> {
    const r = this.#records.get(id);
    if (!r) return;
    const asked = await new Promise<boolean>((resolve) => {
      const socket = connect(r.socketPath);
      socket.once('error', () => resolve(false));
      socket.once('connect', () => resolve(true));
      socket.on('close', () => resolve(false));
      socket.end(encodeFrame({ v: 1, type: 'ldr-stop' }));
    });
    const s = this.#supervised.get(id);
    // One this process answers for has its own pid, or none (in this process): never the one it reported.
    const pid = () => (s?.child ? s.child.pid : (this.#records.get(id)?.keepldrPid ?? r.keepldrPid));
    if (!asked) signal(pid(), 'SIGTERM');
    const deadline = Date.now() + this.#timeouts.keepldrKillAfter;
    while (!this.#gone(id) && Date.now() < deadline) await sleep(this.#timeouts.exitPoll);
    if (!this.#gone(id)) {
      this.#log({ event: 'keepldr-killed', id, pid: pid() });
      signal(pid(), 'SIGKILL');
    }
  }

  /**
   * A stop request: ends the Keep Loader in the background (graceful, then timeout, then kill) and resolves once its
   * record has ended, or after `stopReport`. A Keep Loader killed without reporting leaves its Keep `stopped`.
   */
  async stop(id: string): Promise<void> {
    const r = this.#records.get(id);
    if (!r || isTerminal(r.state)) return;
    const ended = this.terminate(id).then(() => {
      if (!this.#closing) this.#records.setState(id, 'stopped');
    });
    await Promise.race([
      ended,
      this.#records.waitFor(id, (x) => isTerminal(x.state), this.#timeouts.stopReport),
    ]);
  }

  /**
   * Gives up on a Keep whose start failed: its watch is dropped first (its record already says why it
   * failed, and a late `stopped` from the Keep Loader would only contradict it), then it is terminated.
   */
  async abandon(id: string): Promise<void> {
    this.#supervised.get(id)?.watch?.destroy();
    await this.terminate(id);
  }

  /** A record removed: forget its Keep Loader and remove its log and socket files. */
  forget(record: KeepRecord): void {
    this.#supervised.get(record.id)?.watch?.destroy();
    this.#supervised.delete(record.id);
    rmSync(logPath(this.#runDir, record.id), { force: true });
    if (this.#gone(record.id)) rmSync(record.socketPath, { force: true });
  }

  /** Removes the sockets and logs in the run folder that belong to no record (left by records removed while away). */
  sweep(known: ReadonlySet<string>): void {
    let names: string[];
    try {
      names = readdirSync(this.#runDir);
    } catch {
      return;
    }
    for (const name of names) {
      const m = /^([0-9a-f]{16})\.(sock|log)$/.exec(name);
      if (m && !known.has(m[1]!)) rmSync(join(this.#runDir, name), { force: true });
    }
  }

  /**
   * Stops watching. Attached Keep Loaders (which end with this process anyway) are ended and their Keeps
   * recorded `stopped`; detached and systemd ones run on for the next start to adopt.
   */
  async close(): Promise<void> {
    const ending: Promise<void>[] = [];
    for (const [id, s] of this.#supervised) {
      s.watch?.destroy();
      if (this.#launcher.kind !== 'attached' || !s.child || s.exited) continue;
      ending.push(
        this.terminate(id).then(() => {
          const r = this.#records.get(id);
          if (r && !isTerminal(r.state)) this.#records.setState(id, 'stopped');
        }),
      );
    }
    this.#closing = true;
    await Promise.all(ending);
  }
}
