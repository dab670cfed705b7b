import { createHash, randomBytes } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import type { Policy, TrustRoots } from '../attestation/index.ts';
import type { Backend, Limits, Message } from '../protocol/messages.ts';
import { readFrames, writeFrame } from '../protocol/stream.ts';
import type { KeepIdentity } from '../ratls/index.ts';
import { openAttestedChannel } from './channel.ts';
import { ClientError } from './errors.ts';
import type { KeepInfo, KeepManagerClient } from './keepmgr-client.ts';

/** How a workload ended, as the Keep reported it inside the attested channel. */
export type RunOutcome =
  | { kind: 'exit'; code: number }
  | { kind: 'trap'; message: string }
  | { kind: 'limit'; limit: 'memory' | 'time' | 'output' | 'fds'; message: string };

/** Progress of a run, for a caller that wants to show it. None of it is workload data. */
export type RunEvent =
  | { type: 'keep-created'; keep: KeepInfo }
  | { type: 'evidence-verified'; identity: KeepIdentity }
  | { type: 'workload-sent'; bytes: number; digest: string }
  | { type: 'workload-started' };

export interface RunOptions {
  host: KeepManagerClient;
  backend: Backend;
  wasm: Uint8Array;
  /** argv, program name first. */
  args: readonly string[];
  env: Readonly<Record<string, string>>;
  /** Streamed into the Keep; null gives the workload an empty stdin. */
  stdin: Readable | null;
  stdout: Writable;
  stderr: Writable;
  policy: Policy;
  roots?: TrustRoots;
  insecure?: boolean;
  limits?: Limits;
  onEvent?: (event: RunEvent) => void;
  signal?: AbortSignal;
}

export interface RunResult {
  keepId: string;
  identity: KeepIdentity;
  outcome: RunOutcome;
}

const STDIN_CHUNK = 64 * 1024;

/**
 * Runs a workload in a fresh Keep: create it with a fresh nonce, open its channel, verify its evidence, and only
 * then send the workload and stream stdin in and stdout/stderr out, all inside the attested TLS channel.
 */
export async function runWorkload(options: RunOptions): Promise<RunResult> {
  const nonce = new Uint8Array(randomBytes(32));
  const keep = await options.host.createKeep(options.backend, nonce, options.limits);
  options.onEvent?.({ type: 'keep-created', keep });
  let keepStopped = false;
  const stopKeep = (): void => {
    if (keepStopped) return;
    keepStopped = true;
    options.host.stopKeep(keep.id).catch(() => {});
  };
  const onAbort = (): void => stopKeep();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const stream = await options.host.openChannel(keep.id);
    const { tls, identity } = await openAttestedChannel(stream, {
      nonce,
      policy: options.policy,
      ...(options.roots ? { roots: options.roots } : {}),
      ...(options.insecure ? { insecure: true } : {}),
    }).catch((error: unknown) => {
      stopKeep();
      throw error;
    });
    options.onEvent?.({ type: 'evidence-verified', identity });

    const digest = createHash('sha256').update(options.wasm).digest();
    const deploy: Message = {
      v: 1,
      type: 'deploy',
      wasm: options.wasm,
      digest: new Uint8Array(digest),
      args: [...options.args],
      env: { ...options.env },
      stdin: options.stdin !== null,
    };
    if (options.limits) deploy.limits = options.limits;
    writeFrame(tls, deploy);
    options.onEvent?.({ type: 'workload-sent', bytes: options.wasm.length, digest: digest.toString('hex') });

    const outcome = await new Promise<RunOutcome>((resolve, reject) => {
      let done = false;
      const stdin = options.stdin;
      const onData = (chunk: Buffer): void => {
        for (let i = 0; i < chunk.length; i += STDIN_CHUNK) {
          const ok = writeFrame(tls, {
            v: 1,
            type: 'stdin',
            data: new Uint8Array(chunk.subarray(i, i + STDIN_CHUNK)),
          });
          if (!ok) {
            stdin?.pause();
            tls.once('drain', () => stdin?.resume());
          }
        }
      };
      const onEnd = (): void => {
        if (!done) writeFrame(tls, { v: 1, type: 'stdin-end' });
      };
      const detachStdin = (): void => {
        stdin?.off('data', onData);
        stdin?.off('end', onEnd);
        stdin?.pause();
      };
      const settle = (error: unknown, value?: RunOutcome): void => {
        if (done) return;
        done = true;
        detachStdin();
        options.signal?.removeEventListener('abort', onAbortRun);
        if (error) {
          tls.destroy();
          reject(error);
        } else {
          tls.end();
          resolve(value!);
        }
      };
      const onAbortRun = (): void =>
        settle(new ClientError('ERR_KEEP_DIED', 'The run was cancelled; the Keep is being stopped'));
      options.signal?.addEventListener('abort', onAbortRun, { once: true });
      if (stdin) {
        stdin.on('data', onData);
        stdin.once('end', onEnd);
      }
      readFrames(
        tls,
        (m) => {
          switch (m.type) {
            case 'started':
              options.onEvent?.({ type: 'workload-started' });
              return;
            case 'stdout':
              options.stdout.write(m.data);
              return;
            case 'stderr':
              options.stderr.write(m.data);
              return;
            case 'exit':
              return settle(null, { kind: 'exit', code: m.code });
            case 'trap':
              return settle(null, { kind: 'trap', message: m.message });
            case 'limit':
              return settle(null, { kind: 'limit', limit: m.limit, message: m.message });
            case 'error':
              return settle(
                new ClientError('ERR_KEEP_REFUSED', `The Keep refused the workload: ${m.message}`, {
                  hostCode: m.code,
                }),
              );
            default:
              return settle(
                new ClientError(
                  'ERR_CHANNEL_FAILED',
                  `Cannot continue: the Keep sent an unexpected ${m.type}`,
                ),
              );
          }
        },
        {
          onError: (cause) =>
            settle(new ClientError('ERR_KEEP_DIED', `The Keep's channel broke: ${cause.message}`, { cause })),
          onEnd: () => settle(new ClientError('ERR_KEEP_DIED', 'The Keep died before the workload finished')),
        },
      );
      tls.on('close', () =>
        settle(new ClientError('ERR_KEEP_DIED', 'The Keep died before the workload finished')),
      );
    });
    return { keepId: keep.id, identity, outcome };
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}
