import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeepManager, loadOrCreateSimRoot, loadOrCreateSimSgxRoot } from '../host/index.ts';
import { builtFile } from '../paths.ts';
import { dataDir } from './paths.ts';
import type { Reporter } from './report.ts';

/** A Keep Manager living in the CLI's process for the duration of one command, on a loopback port. */
export interface EmbeddedHost {
  url: string;
  simRootFingerprint: string;
  /** The fingerprint of this machine's simulated Intel root, which the embedded host's `sgx-sim` Keeps quote under. */
  simSgxRootFingerprint: string;
  close(): Promise<void>;
  /**
   * Lets this process end without a graceful shutdown, for when it is about to exit: every Keep Loader is
   * attached and stops its Keep when our pipe on its stdin closes with this process, so nothing outlives it.
   * Removes the run folder now (the Keep Loaders' sockets in it are of no use to anyone else).
   */
  release(): void;
}

export async function startEmbeddedHost(reporter: Reporter): Promise<EmbeddedHost> {
  const simRoot = await loadOrCreateSimRoot(dataDir(), () =>
    reporter.note("creating this machine's simulated AMD root of trust (once; takes a few seconds)"),
  );
  const simSgxRoot = await loadOrCreateSimSgxRoot(dataDir());
  // Unix socket paths are limited to about 100 bytes, so the Keep Loaders' sockets live in a short private folder.
  const runDir = mkdtempSync(join(tmpdir(), 'donjon-'));
  const manager = new KeepManager({
    runtimePath: builtFile('keep.js'),
    keepldrPath: builtFile('keepldr.js'),
    simRootPath: simRoot.path,
    simSgxRootPath: simSgxRoot.path,
    runDir,
    // This process is the host: it plays the Keep Loader's role itself, and each Keep is its child.
    launcher: 'in-process',
  });
  const url = await manager.listen('127.0.0.1', 0);
  return {
    url,
    simRootFingerprint: simRoot.fingerprint,
    simSgxRootFingerprint: simSgxRoot.fingerprint,
    close: async () => {
      await manager.close();
      rmSync(runDir, { recursive: true, force: true });
    },
    release: () => rmSync(runDir, { recursive: true, force: true }),
  };
}
