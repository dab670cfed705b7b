import { KeepLoader } from '../keepldr/keepldr.ts';
import type { Launcher, LaunchSpec } from './launchers.ts';

/** The Keep Loaders running in this process, whose Keeps end when it does. */
const running = new Set<KeepLoader>();
let hooked = false;

/** Stops the Keeps of this process's Keep Loaders when it exits (SIGTERM: sent at once, whatever follows). */
function stopWithProcess(loader: KeepLoader): void {
  running.add(loader);
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const l of running) l.stop();
  });
}

/**
 * The Keep Loader's role played inside this process, for the Keep Manager embedded in one `donjon run`: that
 * process is the host already (the Keep Loader is host code, trusted by nobody), so a Keep Loader process of
 * its own would only add one Node start before each Keep. The Keep Loader is the same class a Keep Loader
 * process runs (src/host/keepldr/keepldr.ts); it starts the Keep as its own process, measures the runtime,
 * answers its evidence requests and listens on the same unix socket, which the Supervisor watches as it
 * watches any other. Its end (the Keep's end, reported) is told through `onEnd`, with no pid to signal.
 *
 * Attached by nature: when this process exits, however it exits short of SIGKILL, each Keep still running is
 * sent SIGTERM (which ends a Keep at once), as a Keep Loader process does when our pipe on its stdin closes; a
 * Keep that loses its control pipe while it runs ends by itself.
 */
export const inProcessLauncher: Launcher = {
  kind: 'attached',
  async launch(spec: LaunchSpec) {
    let ended = false;
    const end = (how: { code: number | null; error?: Error }): void => {
      if (ended) return;
      ended = true;
      running.delete(loader);
      spec.onEnd({ signal: null, ...how });
    };
    const loader = new KeepLoader(spec.config, {
      exit: (code) => end({ code }),
      log: (line) => spec.onLine(line),
    });
    stopWithProcess(loader);
    loader.start().catch((error: unknown) => {
      end({ code: 1, error: error instanceof Error ? error : new Error(String(error)) });
    });
    return { pid: undefined };
  },
};
