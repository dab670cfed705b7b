import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { reasonOf } from '../../lib/errors.ts';
import { PROCESS_ENV } from '../keepldr/keep-process.ts';
import type { KeepLoaderConfig } from '../keepldr/keepldr.ts';
import { inProcessLauncher } from './inprocess-launcher.ts';

/** Room given to a systemd unit above the workload's memory ceiling: the Keep Loader and the Keep's runtime. */
const SYSTEMD_MEMORY_HEADROOM = 512 * 1024 * 1024;

/** What a launcher needs to start one Keep Loader. */
export interface LaunchSpec {
  readonly config: KeepLoaderConfig;
  /** The Keep Loader program. */
  readonly keepldrPath: string;
  /** The folder of the Keep Loaders' sockets and logs. */
  readonly runDir: string;
  /** The Keep Loader's stderr, line by line, where the launcher can read it (attached ones). */
  readonly onLine: (line: string) => void;
  /**
   * The process this one started ended, or could not be started. Wired as soon as it is spawned: a spawn
   * error is emitted on the next tick, before the caller could listen.
   */
  readonly onEnd: (how: { code: number | null; signal: NodeJS.Signals | null; error?: Error }) => void;
}

/** Tells `spec.onEnd` once how a child ended. */
function follow(child: ChildProcess, spec: LaunchSpec): ChildProcess {
  let told = false;
  const tell = (how: { code: number | null; signal: NodeJS.Signals | null; error?: Error }): void => {
    if (told) return;
    told = true;
    spec.onEnd(how);
  };
  child.on('error', (error) => tell({ code: null, signal: null, error }));
  child.once('exit', (code, signal) => tell({ code, signal }));
  return child;
}

/**
 * What a launcher started and this process answers for: a child process, or a Keep Loader running inside this
 * process (no pid of its own: nothing to signal, its end is told through `onEnd`).
 */
export type Launched = Pick<ChildProcess, 'pid'>;

/**
 * One way to start a Keep Loader. `launch` resolves with what it started when this process answers for it,
 * with nothing when another (systemd) does; it throws with the reason when the start itself failed.
 */
export interface Launcher {
  readonly kind: 'attached' | 'detached' | 'systemd';
  launch(spec: LaunchSpec): Promise<Launched | undefined>;
}

/** The path of a detached Keep Loader's log (its stderr). */
export function logPath(runDir: string, id: string): string {
  return join(runDir, `${id}.log`);
}

/**
 * A child of this process that ends with it: the Keep Manager embedded in one `donjon run`. The Keep Loader
 * holds our pipe on its stdin and stops its Keep when the pipe closes, so a crash here leaves nothing behind.
 */
export const attachedLauncher: Launcher = {
  kind: 'attached',
  async launch(spec) {
    const config = { ...spec.config, attached: true };
    const child = spawn(process.execPath, [spec.keepldrPath, JSON.stringify(config)], {
      stdio: ['pipe', 'ignore', 'pipe'],
      env: { ...PROCESS_ENV },
    });
    child.stdin?.on('error', () => {});
    child.stderr?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') spec.onLine(line.trim());
    });
    return follow(child, spec);
  },
};

/**
 * A child in its own session, with its stderr in `run/<id>.log`: it outlives this process (the daemon), and
 * the next start adopts it through its socket.
 */
export const detachedLauncher: Launcher = {
  kind: 'detached',
  async launch(spec) {
    const logFd = openSync(logPath(spec.runDir, spec.config.id), 'a', 0o600);
    try {
      const child = spawn(process.execPath, [spec.keepldrPath, JSON.stringify(spec.config)], {
        stdio: ['ignore', 'ignore', logFd],
        env: { ...PROCESS_ENV },
        detached: true,
      });
      child.unref();
      return follow(child, spec);
    } finally {
      closeSync(logFd);
    }
  },
};

/**
 * A transient systemd service `donjon-keep-<id>` through `systemd-run`, so an operator sees and limits each
 * Keep with systemd's own tools. systemd is the parent: the Keep Loader's pid arrives on its watch socket.
 */
export const systemdLauncher: Launcher = {
  kind: 'systemd',
  async launch(spec) {
    const { config } = spec;
    const args = [
      `--unit=donjon-keep-${config.id}`,
      '--collect',
      '--quiet',
      '--property=KillMode=mixed',
      `--description=Donjon Keep ${config.id} (${config.backend})`,
      ...Object.entries(PROCESS_ENV).map(([name, value]) => `--setenv=${name}=${value}`),
    ];
    const memory = config.limits.memoryBytes;
    if (memory !== undefined) args.push(`--property=MemoryMax=${memory + SYSTEMD_MEMORY_HEADROOM}`);
    const run = spawn(
      'systemd-run',
      [...args, '--', process.execPath, spec.keepldrPath, JSON.stringify(config)],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    run.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    const outcome = await new Promise<{ code: number | null; error?: unknown }>((resolve) => {
      run.on('error', (error) => resolve({ code: null, error }));
      run.on('close', (code) => resolve({ code }));
    });
    if (outcome.code !== 0) {
      const why = stderr.trim() || (outcome.error ? reasonOf(outcome.error) : `status ${outcome.code}`);
      throw new Error(`systemd-run failed: ${why}`);
    }
    return undefined;
  },
};

/** The launcher for the Keep Manager's options. */
export function launcherFor(options: {
  detachKeeps?: boolean;
  launcher?: 'child' | 'systemd' | 'in-process';
}): Launcher {
  if (options.launcher === 'systemd') return systemdLauncher;
  if (options.launcher === 'in-process') return inProcessLauncher;
  return options.detachKeeps ? detachedLauncher : attachedLauncher;
}
