// The Keep Manager deploying a recreated deployment into its Keep, as a tenant's client would, over the same
// channel: a plaintext hello, TLS to the Keep, one `deploy`. The host does not verify the Keep's evidence
// (it trusts nothing it could check there, and the Keep trusts nothing from it): the deploy carries the
// registry artifact and the Keep checks its digests and signatures itself. Nobody may attach afterwards: the
// owner is the hash of a secret thrown away at once.
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { encodeFrame } from '../../protocol/frames.ts';
import type { MessageOf } from '../../protocol/messages.ts';
import { readFirstFrame, readFrames, writeFrame } from '../../protocol/stream.ts';
import type { PulledArtifact } from './puller.ts';

/** Frame limit of the channel's answers (started, error, notices). */
const ANSWER_MAX_FRAME = 64 * 1024;

/** The `deploy` of a pulled artifact, detached, with an owner nobody holds the secret of. */
export function hostDeployMessage(
  fields: Omit<MessageOf<'deploy'>, 'v' | 'type' | 'owner' | 'digest' | 'stdin' | 'detach'>,
): MessageOf<'deploy'> {
  return {
    v: 1,
    type: 'deploy',
    ...fields,
    digest: new Uint8Array(createHash('sha256').update(fields.wasm).digest()),
    stdin: false,
    detach: true,
    owner: new Uint8Array(createHash('sha256').update(randomBytes(32)).digest()),
  };
}

/** The Keep's refusal of a deploy, with the Keep's own code (`hostCode`, as the CLI reports it). */
export class KeepRefusal extends Error {
  override readonly name = 'KeepRefusal';
  readonly hostCode: string;

  constructor(code: string, message: string) {
    super(`the Keep refused it (${code}): ${message}`);
    this.hostCode = code;
  }
}

/**
 * The `deploy` of an artifact pulled by digest: the module with the artifact attached (its manifest, and with
 * `keys` the keys and the signatures the Keep checks again), so the Keep trusts nothing the host says of it.
 */
export function pulledDeployMessage(
  pulled: PulledArtifact,
  keys: readonly string[],
  fields: Omit<
    MessageOf<'deploy'>,
    'v' | 'type' | 'owner' | 'digest' | 'stdin' | 'detach' | 'wasm' | 'artifact'
  >,
): MessageOf<'deploy'> {
  return hostDeployMessage({
    ...fields,
    wasm: pulled.wasm,
    artifact: {
      reference: pulled.reference,
      digest: pulled.digest,
      manifest: pulled.manifest,
      ...(keys.length > 0
        ? {
            keys: [...keys],
            signatures: pulled.signatures
              .filter((s) => s.oversize === undefined)
              .map((s) => ({ payload: s.payload, signature: s.signature })),
          }
        : {}),
    },
  });
}

/**
 * Opens the channel of the Keep whose Keep Loader listens on `socketPath`, sends `deploy` and resolves once
 * the Keep says the workload started; rejects with the Keep's refusal, or when nothing comes by `timeoutMs`.
 */
export function deliverDeploy(
  socketPath: string,
  deploy: MessageOf<'deploy'>,
  timeoutMs: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const ldr = connect(socketPath);
    let done = false;
    const finish = (error?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (error) {
        ldr.destroy();
        reject(error);
      } else resolve();
    };
    const timer = setTimeout(
      () => finish(new Error('the Keep did not start the workload in time')),
      timeoutMs,
    );
    ldr.on('error', (e) => finish(new Error(`its Keep Loader cannot be reached: ${e.message}`)));
    ldr.once('connect', async () => {
      ldr.write(encodeFrame({ v: 1, type: 'ldr-channel' }));
      let answer: Awaited<ReturnType<typeof readFirstFrame>>;
      try {
        answer = await readFirstFrame(ldr, { timeoutMs });
      } catch {
        finish(new Error('its Keep Loader did not answer'));
        return;
      }
      if (answer.message.type === 'error') {
        finish(new Error(answer.message.message));
        return;
      }
      if (answer.rest.length > 0) ldr.unshift(answer.rest);
      ldr.write(encodeFrame({ v: 1, type: 'channel-hello', nonce: new Uint8Array(randomBytes(32)) }));
      const tls = tlsConnect({
        socket: ldr,
        rejectUnauthorized: false,
        ca: [],
        minVersion: 'TLSv1.3',
        servername: '',
      });
      tls.on('error', (e) => finish(new Error(`the channel failed: ${e.message}`)));
      tls.on('close', () => finish(new Error('the Keep closed the channel')));
      tls.once('secureConnect', () => {
        writeFrame(tls, deploy);
        readFrames(
          tls,
          (m) => {
            if (m.type === 'started') {
              finish();
              tls.end();
            } else if (m.type === 'error') finish(new KeepRefusal(m.code, m.message));
          },
          {
            maxFrameBytes: ANSWER_MAX_FRAME,
            onError: () => finish(new Error('the channel broke its framing')),
            onEnd: () => finish(new Error('the Keep closed the channel')),
          },
        );
      });
    });
  });
}
