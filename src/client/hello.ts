// A channel's plaintext hello, sent on its own: `donjon run` sends it as soon as its Keep's channel is open,
// before it has loaded the channel and verification code that the rest of the channel needs.
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { writeFrame } from '../protocol/stream.ts';

/** A channel to a Keep whose plaintext hello went out ahead of the rest of it. */
export interface HelloSent {
  stream: Duplex;
  /** The 32 fresh random bytes the hello carried: the Keep's evidence must bind them. */
  nonce: Uint8Array;
}

/**
 * Sends a channel's plaintext hello, with a fresh nonce, on a stream to a Keep, ahead of the TLS that follows
 * (see `openAttestedChannel`, option `helloSent`): the Keep can make its evidence and certificate while this side
 * still gets ready. The hello is the only byte that leaves before the Keep's certificate has been verified.
 */
export function sendChannelHello(stream: Duplex): HelloSent {
  const nonce = new Uint8Array(randomBytes(32));
  writeFrame(stream, { v: 1, type: 'channel-hello', nonce });
  return { stream, nonce };
}
