import { createHash, generateKeyPairSync, type KeyObject, timingSafeEqual } from 'node:crypto';
import { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Limits, Message } from '../protocol/messages.ts';
import { readFrames, writeFrame } from '../protocol/stream.ts';
import { BINDING_DOMAIN, makeKeepCertificate, reportDataFor, spkiOf } from '../ratls/index.ts';
import { startWasi, type WasiResult, type WasiRun } from '../wasi/index.ts';

/** What the Keep Loader tells a Keep when it starts it (public values only). */
export interface KeepConfig {
  /** The tenant's nonce, hex: the evidence this Keep obtains binds it. */
  nonce: string;
  /** The host's ceilings; the tenant's own limits may only lower them. */
  limits: Limits;
}

type Deploy = Extract<Message, { type: 'deploy' }>;

function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

function lower(host: number | undefined, tenant: number | undefined): number | undefined {
  if (host === undefined) return tenant;
  if (tenant === undefined) return host;
  return Math.min(host, tenant);
}

/** The Keep's side of the control pipe to its Keep Loader: evidence requests and lifecycle events. */
class Control {
  readonly #socket: Socket;
  #pending: ((m: Extract<Message, { type: 'evidence' }>) => void) | undefined;

  constructor(socket: Socket, onLost: () => void) {
    this.#socket = socket;
    readFrames(
      socket,
      (m) => {
        if (m.type === 'evidence' && this.#pending) {
          const resolve = this.#pending;
          this.#pending = undefined;
          resolve(m);
        }
      },
      { onError: onLost, onEnd: onLost },
    );
  }

  evidence(reportData: Uint8Array): Promise<Extract<Message, { type: 'evidence' }>> {
    return new Promise((resolve) => {
      this.#pending = resolve;
      writeFrame(this.#socket, { v: 1, type: 'evidence-request', reportData });
    });
  }

  event(event: 'ready' | 'deployed' | 'exited' | 'failed', message?: string): void {
    writeFrame(
      this.#socket,
      message === undefined
        ? { v: 1, type: 'keep-event', event }
        : { v: 1, type: 'keep-event', event, message },
    );
  }
}

/**
 * The Wasm Loader: the program inside the Keep. It makes its key pair, obtains evidence binding that key to the
 * tenant's nonce, serves one attested TLS channel, receives the workload and runs it in the WASI host. Workload
 * data only ever travels inside the TLS channel; the control pipe carries evidence and lifecycle events.
 */
export async function runKeep(config: KeepConfig, selfUrl: URL): Promise<void> {
  let ending = false;
  const exit = (code: number): never => {
    process.exit(code);
  };
  const control = new Control(new Socket({ fd: 3, readable: true, writable: true }), () => {
    // The Keep Loader is gone: nobody supervises this Keep any more, so it ends.
    if (!ending) exit(1);
  });
  const channel = new Socket({ fd: 4, readable: true, writable: true });

  const nonce = new Uint8Array(Buffer.from(config.nonce, 'hex'));
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const spki = spkiOf(privateKey);
  const evidence = await control.evidence(reportDataFor({ domain: BINDING_DOMAIN, spki, nonce }));
  const now = new Date();
  const certDer = makeKeepCertificate(
    evidence.kind === 'none'
      ? { privateKey, nonce, now }
      : {
          privateKey,
          nonce,
          now,
          evidence: { kind: evidence.kind, report: evidence.report, certs: evidence.certs },
        },
  );
  const tls = new TLSSocket(channel, {
    isServer: true,
    key: (privateKey as KeyObject).export({ type: 'pkcs8', format: 'pem' }),
    cert: pem('CERTIFICATE', certDer),
    minVersion: 'TLSv1.3',
  });
  control.event('ready');

  const finish = (event: 'exited' | 'failed', message?: string): void => {
    if (ending) return;
    ending = true;
    control.event(event, message);
    // Give the TLS close_notify and the control event a moment to flush before the process ends.
    tls.end(() => setTimeout(() => exit(event === 'exited' ? 0 : 1), 20).unref());
    setTimeout(() => exit(event === 'exited' ? 0 : 1), 2000).unref();
  };

  let run: WasiRun | undefined;
  let deployed = false;
  const pendingStdin: Message[] = [];

  const send = (m: Message): void => {
    if (!tls.destroyed) writeFrame(tls, m);
  };

  const onResult = (result: WasiResult): void => {
    switch (result.kind) {
      case 'exit':
        send({ v: 1, type: 'exit', code: result.code });
        break;
      case 'trap':
        send({ v: 1, type: 'trap', message: result.message });
        break;
      case 'limit':
        send({ v: 1, type: 'limit', limit: result.limit, message: result.message });
        break;
      case 'killed':
        break;
    }
    finish('exited');
  };

  const deploy = async (m: Deploy): Promise<void> => {
    const digest = createHash('sha256').update(m.wasm).digest();
    if (m.digest.length !== digest.length || !timingSafeEqual(m.digest, digest)) {
      send({
        v: 1,
        type: 'error',
        code: 'ERR_DEPLOY_DIGEST_MISMATCH',
        message: 'Cannot run the workload: its digest does not match its bytes',
      });
      finish('failed', 'workload refused');
      return;
    }
    const limits: Limits = {};
    const memoryBytes = lower(config.limits.memoryBytes, m.limits?.memoryBytes);
    const wallTimeMs = lower(config.limits.wallTimeMs, m.limits?.wallTimeMs);
    const outputBytes = lower(config.limits.outputBytes, m.limits?.outputBytes);
    if (memoryBytes !== undefined) limits.memoryBytes = memoryBytes;
    if (wallTimeMs !== undefined) limits.wallTimeMs = wallTimeMs;
    if (outputBytes !== undefined) limits.outputBytes = outputBytes;
    try {
      run = await startWasi({
        module: m.wasm,
        args: m.args,
        env: m.env,
        stdin: m.stdin ? 'pipe' : 'null',
        onStdout: (data) => send({ v: 1, type: 'stdout', data }),
        onStderr: (data) => send({ v: 1, type: 'stderr', data }),
        limits,
        workerUrl: selfUrl,
      });
    } catch (error) {
      const e = error as { code?: unknown; message?: unknown };
      send({
        v: 1,
        type: 'error',
        code: typeof e.code === 'string' ? e.code : 'ERR_WASM_INVALID',
        message: typeof e.message === 'string' ? e.message : 'Cannot start the workload',
      });
      finish('failed', 'workload refused');
      return;
    }
    send({ v: 1, type: 'started' });
    control.event('deployed');
    for (const s of pendingStdin.splice(0)) feed(s);
    run.result.then(onResult, (error: unknown) => {
      send({
        v: 1,
        type: 'error',
        code: 'ERR_KEEP_INTERNAL',
        message: `Cannot run the workload: ${String(error)}`,
      });
      finish('failed', 'internal error');
    });
  };

  const feed = (m: Message): void => {
    if (!run) {
      pendingStdin.push(m);
      return;
    }
    if (m.type === 'stdin') run.writeStdin(m.data);
    else if (m.type === 'stdin-end') run.endStdin();
  };

  readFrames(
    tls,
    (m) => {
      if (!deployed) {
        if (m.type !== 'deploy') {
          send({
            v: 1,
            type: 'error',
            code: 'ERR_PROTOCOL_UNEXPECTED',
            message: `Cannot accept ${m.type}: expected deploy`,
          });
          finish('failed', 'protocol error');
          return;
        }
        deployed = true;
        void deploy(m);
        return;
      }
      if (m.type === 'stdin' || m.type === 'stdin-end') feed(m);
      else {
        send({
          v: 1,
          type: 'error',
          code: 'ERR_PROTOCOL_UNEXPECTED',
          message: `Cannot accept ${m.type} after deploy`,
        });
        run?.kill();
        finish('failed', 'protocol error');
      }
    },
    {
      onError: () => {
        run?.kill();
        finish('failed', 'channel broken');
      },
      onEnd: () => {
        // The client closed its side: with nobody to hear the result, the workload stops.
        if (!ending) {
          run?.kill();
          finish('exited', 'client closed the channel');
        }
      },
    },
  );
  tls.on('error', () => {
    run?.kill();
    finish('failed', 'TLS error');
  });
}
