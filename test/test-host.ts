// A `donjon host` daemon for the end-to-end tests that need one with its token and pins (apart from
// helpers.ts, which every test loads: this one loads the SDK).
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeepManagerClient } from '../src/client/index.ts';
import { loadOrCreateSimRoot } from '../src/host/simroot.ts';
import { freePort, runCli, startDaemon, testHome } from './helpers.ts';

/** A `donjon host` daemon on loopback for one test file, with what a tenant needs to reach it. */
export interface TestHost {
  readonly port: number;
  readonly state: string;
  /** Its TLS certificate's SHA-256 fingerprint, to pin. */
  readonly fingerprint: string;
  /** The run's simulated root (shared by every test, see {@link testHome}): to trust its evidence. */
  readonly simRootFingerprint: string;
  /** A tenant token. */
  readonly token: string;
  /** The daemon's process: replaced by {@link TestHost.restart}. */
  readonly daemon: ChildProcess;
  /** An SDK client of the tenant. */
  client(): KeepManagerClient;
  /** The flags that point a CLI command at it: `--host`, `--token`, `--host-fingerprint`. */
  cliArgs(): string[];
  /** kill -9 of the daemon, then `meanwhile`, then a new daemon on the same state and port. */
  restart(meanwhile?: () => Promise<void> | void): Promise<void>;
  /** Kills every Keep it lists (Keep Loaders and Keeps outlive their daemon), then the daemon; removes its state. */
  stop(): Promise<void>;
}

/**
 * Starts a daemon on a fresh state directory holding the run's simulated root (so no RSA key generation),
 * with a token made for it, as an operator would.
 */
export async function startTestHost(): Promise<TestHost> {
  const state = mkdtempSync(join(tmpdir(), 'djh-'));
  const root = await loadOrCreateSimRoot(testHome);
  copyFileSync(root.path, join(state, 'sim-root.cbor'));
  const port = await freePort();
  const info = JSON.parse((await runCli(['host', 'info', '--state', state, '--json'])).stdout) as {
    fingerprint: string;
    simRootFingerprint: string;
  };
  const token = (await runCli(['host', 'token', 'create', '--state', state])).stdout.trim();
  let daemon = await startDaemon(port, state);
  const client = (): KeepManagerClient =>
    new KeepManagerClient(`https://127.0.0.1:${port}`, { token, trust: { fingerprint: info.fingerprint } });
  return {
    port,
    state,
    fingerprint: info.fingerprint,
    simRootFingerprint: info.simRootFingerprint,
    token,
    get daemon() {
      return daemon;
    },
    client,
    cliArgs: () => [
      ...['--host', `https://127.0.0.1:${port}`, '--token', token],
      ...['--host-fingerprint', info.fingerprint],
    ],
    async restart(meanwhile) {
      daemon.kill('SIGKILL');
      await meanwhile?.();
      daemon = await startDaemon(port, state);
    },
    async stop() {
      const keeps = await client()
        .listKeeps()
        .catch(() => []);
      for (const k of keeps) {
        for (const pid of [k.keepldrPid, k.keepPid]) {
          try {
            if (pid !== undefined) process.kill(pid, 'SIGKILL');
          } catch {}
        }
      }
      daemon.kill('SIGKILL');
      rmSync(state, { recursive: true, force: true });
    },
  };
}
