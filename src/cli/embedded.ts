import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostRefusal, type KeepHost, startFailureOf } from '../client/keepmgr-client.ts';
import {
  ApiError,
  existingSimRootPath,
  KeepManager,
  type LocalKeepApi,
  loadOrCreateSimRoot,
  loadOrCreateSimSgxRoot,
  type StoredSimRoot,
} from '../host/index.ts';
import { builtFile } from '../paths.ts';
import type { MessageOf } from '../protocol/messages.ts';
import { dataDir } from './paths.ts';
import type { Reporter } from './report.ts';

/**
 * A Keep Manager living in the CLI's process for the duration of one command. Its client is in the same
 * process, so it serves no HTTP: the client calls its API directly, and a Keep's channel is the Keep Loader's
 * connection itself (one relay, not two). The Keep Loader and the Keep are as for any host.
 */
export interface EmbeddedHost {
  /** The host, as the client sees one. */
  client: KeepHost;
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
  return {
    client: localClient(manager.local()),
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

/** A refusal of the embedded host, as a client reports one from a host over HTTP. */
function refused(what: string, action: string, error: unknown): never {
  const e =
    error instanceof ApiError
      ? error
      : new ApiError('ERR_HOST_INTERNAL', `Cannot ${action}: internal error`, { cause: error });
  throw hostRefusal(what, e.code, e.message);
}

/** The client's view of a host in this process: its API, called directly. */
function localClient(api: LocalKeepApi): KeepHost {
  return {
    createKeep: (backend, limits, publish, options = {}) => {
      const request: MessageOf<'create-keep'> = { v: 1, type: 'create-keep', backend };
      if (limits !== undefined) request.limits = limits;
      if (publish !== undefined && publish.length > 0) request.publish = [...publish];
      if (options.wait !== undefined) request.wait = options.wait;
      return api.create(request).catch((e: unknown) => refused('', 'create a Keep', e));
    },
    getKeep: async (id) => {
      try {
        return api.get(id);
      } catch (e) {
        return refused('', 'read the Keep', e);
      }
    },
    stopKeep: (id) => api.stop(id).catch((e: unknown) => refused('', 'stop the Keep', e)),
    openChannel: (id) =>
      api.channel(id).catch((e: unknown) => refused(' the channel', 'open the channel', e)),
    startFailure: async (id) => {
      try {
        return startFailureOf(api.get(id));
      } catch {
        return undefined;
      }
    },
  };
}
