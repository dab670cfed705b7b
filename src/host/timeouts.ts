/**
 * Every timeout of the host's supervising processes (the Keep Manager and the Keep Loaders), named and in one
 * place, so a reader sees what the host waits for and how long. Times are milliseconds.
 */
export const TIMEOUTS = {
  /** How long a new Keep may take to become ready before its creation fails. */
  keepStart: 30_000,
  /** Between attempts to reach a starting Keep Loader's socket. */
  watchRetry: 5,
  /** After a Keep Loader's process exits: how long its last words may still take on the watch socket. */
  lastWordGrace: 200,
  /** After a watch socket closes: how long before a Keep still not ended is marked failed. */
  watchLostGrace: 50,
  /** How long a stop request waits for the Keep Loader to report the Keep stopped. */
  stopReport: 5_000,
  /** Termination of a Keep by its Keep Loader: after SIGTERM, how long before SIGKILL. */
  killAfter: 2_000,
  /**
   * Termination of a Keep Loader by the Keep Manager: after the stop request (or SIGTERM), how long before
   * SIGKILL. Longer than `killAfter` plus `finalFlush`, so a Keep Loader whose Keep ignores SIGTERM still kills it
   * and reports `stopped` first.
   */
  keepldrKillAfter: 4_000,
  /** How long a Keep Loader waits for a connection's opening frame. */
  openingFrame: 10_000,
  /** How long the Keep Manager waits for a Keep Loader to answer a channel request. */
  channelAnswer: 10_000,
  /** How long a Keep Loader lets its watchers read the final state before it exits. */
  finalFlush: 200,
  /** How long an outbound connection of a connect file may take to open. */
  connect: 10_000,
  /** How long the Keep Manager waits for a process it asked to end before asking again (no handle to wait on). */
  exitPoll: 50,
  /** After a pool fill failed: how long before the next attempt. */
  poolRetry: 1_000,
  /**
   * After a Keep is handed out from the pool: how long its replacement waits for it to run (or end) before it
   * starts anyway. Starting at once would compete for the cores with the Keep the tenant is waiting on.
   */
  poolRefill: 2_000,
  /**
   * After a Keep handed out from the pool started its workload: how long its replacement waits for it to end
   * before it starts anyway (within `poolRefill`). A workload's first output comes right after its start.
   */
  poolRefillRunning: 250,
  /** How long an API connection may take to finish its TLS handshake (a socket that never sends a ClientHello). */
  handshake: 10_000,
  /** How long an API connection may take to send a whole request head (or an upgrade) after it opened. */
  requestHead: 10_000,
  /** How long an API request may take to arrive whole, body included. */
  request: 30_000,
  /** Before a deployment's first restart after its Keep ended; doubled for each restart since, up to the next. */
  restartBackoff: 1_000,
  /** The longest wait between two restarts of a deployment. */
  restartBackoffMax: 60_000,
  /** How long the Keep Manager's deploy of a recreated deployment may take, the module's compilation included. */
  hostDeploy: 60_000,
} as const;

export type TimeoutName = keyof typeof TIMEOUTS;
