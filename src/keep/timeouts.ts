/**
 * Every timeout of the Keep, named in one place. The host's side has its own table (src/host/timeouts.ts);
 * these are the Keep's, the code the tenant trusts, and no host can change them.
 */
export const KEEP_TIMEOUTS = {
  /** How long a new channel may take to send its `channel-hello`. */
  helloMs: 30_000,
  /** How long a finished workload's result waits, with no client attached, for one to collect it. */
  resultRetentionMs: 10 * 60_000,
  /**
   * Once the Keep has sent the result and ended the channel: how long the client has to read it and close its
   * own side. The Keep exits as soon as the client closes; it cuts the channel when this runs out.
   */
  resultDeliveryMs: 30_000,
  /** How long the pipes to the Keep Loader get to take the Keep's last bytes before the Keep exits anyway. */
  pipeFlushMs: 2_000,
  /** How long the Keep Loader may take to bind a port or open a connection for the workload. */
  hostAnswerMs: 15_000,
  /** How long a client of a `tls` listen file may take over its TLS handshake. */
  serviceHandshakeMs: 30_000,
  /**
   * How long a ready Keep waits for a channel before it warms up what a channel and a deploy will need. A
   * channel asked for while the Keep started arrives within a few milliseconds, and the warm-up (about 6 ms)
   * would only delay it; a Keep waiting in a pool warms up long before its channel comes.
   */
  warmUpDelayMs: 25,
} as const;
