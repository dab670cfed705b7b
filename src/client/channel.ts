import type { Duplex } from 'node:stream';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import type { Policy, TrustRoots } from '../attestation/index.ts';
import { writeFrame } from '../protocol/stream.ts';
import { type KeepIdentity, verifyKeepCertificate } from '../ratls/index.ts';
import { ClientError } from './errors.ts';

export type { HelloSent } from './hello.ts';

export interface AttestedChannelOptions {
  nonce: Uint8Array;
  /** The hello carrying `nonce` was sent on the stream already (`sendChannelHello`). */
  helloSent?: boolean;
  policy: Policy;
  roots?: TrustRoots;
  insecure?: boolean;
  /** The verification time; default now. */
  now?: () => Date;
}

/**
 * Opens an attested channel over a raw stream to a Keep: sends the nonce in a plaintext hello, runs TLS 1.3, and
 * resolves only once the Keep's certificate has been verified: its evidence binds the TLS key and this nonce and
 * satisfies the policy. Until then nothing but the hello and handshake bytes has left this side; on any failure
 * the stream is destroyed and the error is thrown.
 */
export function openAttestedChannel(
  stream: Duplex,
  options: AttestedChannelOptions,
): Promise<{ tls: TLSSocket; identity: KeepIdentity }> {
  if (options.helloSent !== true) writeFrame(stream, { v: 1, type: 'channel-hello', nonce: options.nonce });
  return new Promise((resolve, reject) => {
    // The certificate is not checked against web PKI: the evidence inside it is the trust decision, made below.
    // So no root store either (`ca: []`): loading Node's costs about 40 ms the first time in a process.
    const tls = tlsConnect({
      socket: stream,
      rejectUnauthorized: false,
      ca: [],
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
    });
    let settled = false;
    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      tls.destroy();
      stream.destroy();
      reject(error);
    };
    tls.once('secureConnect', () => {
      // The DER alone: the legacy certificate object would print every extension, the evidence included.
      const peer = tls.getPeerX509Certificate();
      if (!peer?.raw) {
        fail(new ClientError('ERR_CHANNEL_FAILED', 'Cannot verify the Keep: it presented no certificate'));
        return;
      }
      try {
        const identity = verifyKeepCertificate(new Uint8Array(peer.raw), {
          nonce: options.nonce,
          policy: options.policy,
          now: options.now?.() ?? new Date(),
          ...(options.roots ? { roots: options.roots } : {}),
          ...(options.insecure ? { insecure: true } : {}),
        });
        settled = true;
        resolve({ tls, identity });
      } catch (error) {
        fail(error);
      }
    });
    tls.once('error', (cause) =>
      fail(
        new ClientError('ERR_CHANNEL_FAILED', `Cannot establish the channel to the Keep: ${cause.message}`, {
          cause,
        }),
      ),
    );
    tls.once('close', () =>
      fail(
        new ClientError(
          'ERR_CHANNEL_FAILED',
          'Cannot establish the channel to the Keep: the connection closed',
        ),
      ),
    );
  });
}
