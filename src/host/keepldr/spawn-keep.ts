// How a Keep process is started, in a module that loads nothing else: `donjon run` starts its Keep this way
// before it has loaded its embedded host, and the Keep Loader it then runs adopts that process.
import { type ChildProcess, spawn } from 'node:child_process';

/**
 * The only environment of the Keep Loader's and the Keep's processes: glibc's allocator told to keep one arena
 * for all of a process's threads and to give the top of it back to the system once 64 KiB of it are free. By
 * default every thread that allocates gets an arena of its own, and glibc raises the trim threshold after a
 * large block is freed, so an idle Keep kept about 2 MiB (of 24) of memory its start-up had freed. It changes
 * nothing a tenant's workload sees (the worker's environment is the workload's own) and is ignored by other C
 * libraries. Measured in bench/startup.ts (section `memory`).
 */
export const PROCESS_ENV: Readonly<Record<string, string>> = Object.freeze({
  GLIBC_TUNABLES: 'glibc.malloc.arena_max=1:glibc.malloc.trim_threshold=65536',
});

/**
 * Starts the Keep runtime at `runtimePath` with its configuration `configJson` (argv[2]) and nothing of the
 * host's environment but {@link PROCESS_ENV}. fd 3: control pipe; fd 4: channel pipe; fd 5: the IPC channel
 * accepted connections are handed over on.
 */
export function spawnKeep(runtimePath: string, configJson: string): ChildProcess {
  return spawn(process.execPath, [runtimePath, configJson], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe', 'ipc'],
    // Nothing of the host's environment.
    env: { ...PROCESS_ENV },
  });
}

/** A Keep started ahead of its Keep Loader. */
interface EarlyKeep {
  runtimePath: string;
  configJson: string;
  child: ChildProcess;
}

// The `donjon` command's entry (dist/cli.cjs) starts the Keep and the CLI bundle it then loads
// (dist/cli-bundle.cjs) adopts it: two copies of this module, one process. They meet on a registered symbol.
const EARLY = Symbol.for('donjon.early-keep');
const slot = globalThis as { [EARLY]?: { keep?: EarlyKeep | undefined; hooked?: boolean } };
slot[EARLY] ??= {};
const state = slot[EARLY];

/**
 * Starts a Keep for a Keep Loader this process is about to run, so that the Keep's start-up (a Node start)
 * overlaps the loading of the host's code. The Keep waits on its pipes, as any new Keep does, until its Keep
 * Loader speaks. Not adopted by the time this process exits, it is killed.
 */
export function spawnKeepEarly(runtimePath: string, configJson: string): void {
  if (state.keep) return;
  const child = spawnKeep(runtimePath, configJson);
  // A failed start is seen at adoption (no pid, or ended), which then starts a Keep as usual.
  child.on('error', () => {});
  state.keep = { runtimePath, configJson, child };
  if (state.hooked) return;
  state.hooked = true;
  process.on('exit', () => {
    state.keep?.child.kill('SIGKILL');
    state.keep = undefined;
  });
}

/**
 * Hands over the Keep started by {@link spawnKeepEarly} when it was started exactly as `runtimePath` and
 * `configJson` say and is still running with its pipes; otherwise kills it, if any, and returns undefined.
 * A Keep is adopted once.
 */
export function adoptEarlyKeep(runtimePath: string, configJson: string): ChildProcess | undefined {
  const e = state.keep;
  state.keep = undefined;
  if (e === undefined) return undefined;
  const { child } = e;
  const usable =
    e.runtimePath === runtimePath &&
    e.configJson === configJson &&
    child.pid !== undefined &&
    child.exitCode === null &&
    child.signalCode === null &&
    child.connected;
  if (usable) return child;
  child.kill('SIGKILL');
  return undefined;
}
