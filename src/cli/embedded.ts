import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  existingSimRootPath,
  KeepManager,
  loadOrCreateSimRoot,
  loadOrCreateSimSgxRoot,
  type StoredSimRoot,
} from '../host/index.ts';
import { builtFile } from '../paths.ts';
import { dataDir } from './paths.ts';
import type { Reporter } from './report.ts';

/** A Keep Manager living in the CLI's process for the duration of one command, on a loopback port. */
export interface EmbeddedHost {
  url: string;
  /**
   * The fingerprint of this machine's simulated root that the host's Keeps on the backend asked for are
   * attested under: the AMD root for `sim`, the Intel platform for `sgx-sim`; none for another backend. Read
   * when asked (a parse of keys and certificates), after the Keep has been asked for.
   */
  rootFingerprint(): Promise<string | undefined>;
  close(): Promise<void>;
  /**
   * Lets this process end without a graceful shutdown, for when it is about to exit: each Keep is a child of
   * this process and gets SIGTERM when it exits, so nothing outlives it. Removes the run folder now (the
   * sockets in it are of no use to anyone else).
   */
  release(): void;
  /**
   * Resolves once the next Keep's start has begun (its record made and its process spawned, which happen in
   * one turn): a caller that asked for a Keep waits for this before it loads more code, so that the loading
   * does not hold the request up.
   */
  nextLaunch(): Promise<void>;
}

/**
 * Starts a Keep Manager in this process for Keeps on `backend`, with only that backend's simulated root (each
 * takes a parse of keys and certificates; the one a run does not use is not read), made on first use.
 */
export async function startEmbeddedHost(reporter: Reporter, backend: string): Promise<EmbeddedHost> {
  // An existing root is only named here: its Keep Loader reads it, and its fingerprint is read when asked.
  let simRoot: Promise<StoredSimRoot> | undefined;
  let simRootPath = backend === 'sim' ? existingSimRootPath(dataDir()) : undefined;
  if (backend === 'sim' && simRootPath === undefined) {
    const made = await loadOrCreateSimRoot(dataDir(), () =>
      reporter.note("creating this machine's simulated AMD root of trust (once; takes a few seconds)"),
    );
    simRoot = Promise.resolve(made);
    simRootPath = made.path;
  }
  const simSgxRoot = backend === 'sgx-sim' ? await loadOrCreateSimSgxRoot(dataDir()) : undefined;
  // Unix socket paths are limited to about 100 bytes, so the Keep Loaders' sockets live in a short private folder.
  const runDir = mkdtempSync(join(tmpdir(), 'donjon-'));
  let launched: (() => void) | undefined;
  const manager = new KeepManager({
    runtimePath: builtFile('keep.cjs'),
    keepldrPath: builtFile('keepldr.cjs'),
    ...(simRootPath ? { simRootPath } : {}),
    ...(simSgxRoot ? { simSgxRootPath: simSgxRoot.path } : {}),
    runDir,
    // This process is the host: it plays the Keep Loader's role itself, and each Keep is its child.
    launcher: 'in-process',
    log: (entry) => {
      if (entry['event'] === 'keep' && entry['state'] === 'creating') launched?.();
    },
  });
  const url = await manager.listen('127.0.0.1', 0);
  return {
    url,
    rootFingerprint: async () => {
      if (simRootPath === undefined) return simSgxRoot?.fingerprint;
      simRoot ??= loadOrCreateSimRoot(dataDir());
      return (await simRoot).fingerprint;
    },
    close: async () => {
      await manager.close();
      rmSync(runDir, { recursive: true, force: true });
    },
    release: () => rmSync(runDir, { recursive: true, force: true }),
    nextLaunch: () =>
      new Promise<void>((resolve) => {
        launched = resolve;
      }),
  };
}
