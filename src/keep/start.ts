// The Keep's thread of dist/keep.cjs: reads the configuration and starts the Keep on the Keep Loader's pipes.
import { Socket } from 'node:net';
import { decodeIpcJson, type KeepConfig, keepConfigSchema } from '../protocol/ipc.ts';
import type { WasiWorkerScript } from '../wasi/index.ts';
import { Keep } from './keep.ts';

/** Ends the Keep before it started, with a one-line reason. */
function refuseToStart(reason: string, code: number): never {
  process.stderr.write(`donjon keep: ${reason}\n`);
  process.exit(code);
}

/**
 * Reads the Keep's configuration from argv[2]: JSON from the Keep Loader, which is not trusted, so it is
 * decoded against its schema before anything of it is used. A missing or malformed one ends the Keep with
 * status 2.
 */
function readConfig(raw: string | undefined): KeepConfig {
  if (raw === undefined) refuseToStart('Cannot start: expected its configuration as the first argument', 2);
  try {
    return decodeIpcJson(keepConfigSchema, raw, 'keep-config');
  } catch (error) {
    return refuseToStart(error instanceof Error ? error.message : String(error), 2);
  }
}

/** Starts the Keep of this process; `workerUrl` is the WASI worker's code, which the bundle carries. */
export function startKeep(workerUrl: WasiWorkerScript): void {
  const config = readConfig(process.argv[2]);
  try {
    const keep = new Keep(config, {
      control: new Socket({ fd: 3, readable: true, writable: true }),
      pipe: new Socket({ fd: 4, readable: true, writable: true }),
      workerUrl,
      exit: (code) => process.exit(code),
    });
    // fd 5, when the Keep Loader opened it, is the IPC channel it hands the connections of listen files over on.
    if (process.channel) {
      process.on('message', (m: unknown, handle: unknown) => keep.handOff(m, handle));
      // It does not keep the Keep alive.
      process.channel.unref();
    }
    keep.start();
  } catch (error) {
    refuseToStart(error instanceof Error ? error.message : String(error), 1);
  }
}
