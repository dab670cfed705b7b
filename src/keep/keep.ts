import { createHash, generateKeyPairSync, type KeyObject, timingSafeEqual } from 'node:crypto';
import { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Limits, Message, MessageOf } from '../protocol/messages.ts';
import { MUX_DATA, MUX_END, MUX_OPEN, MUX_RESET, MuxReader, MuxStream } from '../protocol/mux.ts';
import { readFirstFrame, readFrames, writeFrame } from '../protocol/stream.ts';
import { BINDING_DOMAIN, makeKeepCertificate, reportDataFor, spkiOf } from '../ratls/index.ts';
import { startWasi, type WasiResult, type WasiRun } from '../wasi/index.ts';
import type { KeepErrorCode } from './errors.ts';

/** What the Keep Loader tells a Keep when it starts it (public values only). */
export interface KeepConfig {
  /** The host's ceilings; the tenant's own limits may only lower them. */
  limits: Limits;
  /** Largest workload module accepted, bytes. */
  maxWasmBytes?: number;
}

/** Output kept for a client that is not attached, bytes; beyond it output is dropped and the client told. */
const DETACHED_OUTPUT_LIMIT = 4 << 20;
/** How long a finished workload's result waits for a client to collect it. */
const RESULT_RETENTION_MS = 10 * 60_000;
/** Frame limit inside the channel: the workload module is the largest message. */
const CHANNEL_MAX_FRAME = 256 << 20;

function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

function lower(host: number | undefined, tenant: number | undefined): number | undefined {
  if (host === undefined) return tenant;
  if (tenant === undefined) return host;
  return Math.min(host, tenant);
}

function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The Keep's side of the control pipe to its Keep Loader: evidence requests and lifecycle events. */
class Control {
  readonly #socket: Socket;
  readonly #waiting: ((m: MessageOf<'evidence'>) => void)[] = [];

  constructor(socket: Socket, onLost: () => void) {
    this.#socket = socket;
    readFrames(
      socket,
      (m) => {
        // Answers come in the order of the requests.
        if (m.type === 'evidence') this.#waiting.shift()?.(m);
      },
      { onError: onLost, onEnd: onLost },
    );
  }

  evidence(reportData: Uint8Array): Promise<MessageOf<'evidence'>> {
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
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
 * The Wasm Loader: the program inside the Keep. It makes its key pair once, then serves attested channels one
 * at a time: each opens with the client's nonce in plaintext, and the Keep answers with a certificate whose
 * evidence binds its key to that nonce. The first channel deploys the workload; a later one may attach to it
 * (proving it holds the deployer's secret) and receives the output kept while nobody was attached. Workload
 * data only ever travels inside TLS; the control pipe carries evidence and lifecycle events.
 */
export async function runKeep(config: KeepConfig, selfUrl: URL): Promise<void> {
  let ending = false;
  const exit = (code: number): void => {
    process.exit(code);
  };
  const control = new Control(new Socket({ fd: 3, readable: true, writable: true }), () => {
    // The Keep Loader is gone: nobody supervises this Keep any more, so it ends.
    if (!ending) exit(1);
  });
  const pipe = new Socket({ fd: 4, readable: true, writable: true });

  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const keyPem = (privateKey as KeyObject).export({ type: 'pkcs8', format: 'pem' });
  const spki = spkiOf(privateKey);

  // The workload, once deployed.
  let run: WasiRun | undefined;
  let owner: Uint8Array | undefined;
  let result: Message | undefined;
  let session: TLSSocket | undefined;
  let retention: NodeJS.Timeout | undefined;
  const kept: Message[] = [];
  let keptBytes = 0;
  let droppedBytes = 0;

  const finish = (event: 'exited' | 'failed', message?: string): void => {
    if (ending) return;
    ending = true;
    run?.kill();
    control.event(event, message);
    const done = (): void => exit(event === 'exited' ? 0 : 1);
    if (session && !session.destroyed) session.end(() => setTimeout(done, 10));
    else setImmediate(done);
    setTimeout(done, 2000).unref();
  };

  /** Sends to the attached client, or keeps for the next one (output up to a limit; the result always). */
  const emit = (m: Message): void => {
    if (session && !session.destroyed && session.writable) {
      writeFrame(session, m);
      return;
    }
    if (m.type === 'stdout' || m.type === 'stderr') {
      if (keptBytes + m.data.length > DETACHED_OUTPUT_LIMIT) {
        droppedBytes += m.data.length;
        return;
      }
      keptBytes += m.data.length;
    }
    kept.push(m);
  };

  const onResult = (r: WasiResult): void => {
    switch (r.kind) {
      case 'exit':
        result = { v: 1, type: 'exit', code: r.code };
        break;
      case 'trap':
        result = { v: 1, type: 'trap', message: r.message };
        break;
      case 'limit':
        result = { v: 1, type: 'limit', limit: r.limit, message: r.message };
        break;
      case 'killed':
        return;
    }
    emit(result);
    if (session && !session.destroyed) finish('exited');
    else
      retention = setTimeout(
        () => finish('exited', 'the result was not collected in time'),
        RESULT_RETENTION_MS,
      );
  };

  const refuse = (tls: TLSSocket, code: KeepErrorCode | string, message: string): void => {
    writeFrame(tls, { v: 1, type: 'error', code, message });
    tls.end();
  };

  const deploy = async (tls: TLSSocket, m: MessageOf<'deploy'>): Promise<void> => {
    if (config.maxWasmBytes !== undefined && m.wasm.length > config.maxWasmBytes) {
      refuse(
        tls,
        'ERR_DEPLOY_TOO_LARGE',
        `Cannot run the workload: it is over this host's ${config.maxWasmBytes} bytes`,
      );
      return;
    }
    if (!sameBytes(m.digest, sha256(m.wasm))) {
      refuse(
        tls,
        'ERR_DEPLOY_DIGEST_MISMATCH',
        'Cannot run the workload: its digest does not match its bytes',
      );
      return;
    }
    const limits: Limits = {};
    const memoryBytes = lower(config.limits.memoryBytes, m.limits?.memoryBytes);
    const wallTimeMs = lower(config.limits.wallTimeMs, m.limits?.wallTimeMs);
    const outputBytes = lower(config.limits.outputBytes, m.limits?.outputBytes);
    if (memoryBytes !== undefined) limits.memoryBytes = memoryBytes;
    if (wallTimeMs !== undefined) limits.wallTimeMs = wallTimeMs;
    if (outputBytes !== undefined) limits.outputBytes = outputBytes;
    owner = m.owner;
    try {
      run = await startWasi({
        module: m.wasm,
        args: m.args,
        env: m.env,
        stdin: m.stdin ? 'pipe' : 'null',
        onStdout: (data) => emit({ v: 1, type: 'stdout', data }),
        onStderr: (data) => emit({ v: 1, type: 'stderr', data }),
        limits,
        workerUrl: selfUrl,
      });
    } catch (error) {
      const e = error as { code?: unknown; message?: unknown };
      refuse(
        tls,
        typeof e.code === 'string' ? e.code : 'ERR_KEEP_INTERNAL',
        typeof e.message === 'string' ? e.message : 'Cannot start the workload',
      );
      owner = undefined;
      return;
    }
    writeFrame(tls, { v: 1, type: 'started' });
    control.event('deployed');
    run.result.then(onResult, (error: unknown) => {
      emit({
        v: 1,
        type: 'error',
        code: 'ERR_KEEP_INTERNAL',
        message: `Cannot run the workload: ${String(error)}`,
      });
      finish('failed', 'internal error');
    });
  };

  const attach = (tls: TLSSocket, m: MessageOf<'attach'>): void => {
    if (!owner || !sameBytes(sha256(m.secret), owner)) {
      refuse(tls, 'ERR_ATTACH_REFUSED', 'Cannot attach: this client did not deploy the workload');
      return;
    }
    writeFrame(tls, { v: 1, type: 'started' });
    if (droppedBytes > 0) {
      writeFrame(tls, {
        v: 1,
        type: 'notice',
        message: `${droppedBytes} bytes of output were dropped while no client was attached`,
      });
      droppedBytes = 0;
    }
    for (const k of kept.splice(0)) writeFrame(tls, k);
    keptBytes = 0;
    if (result) {
      if (retention) clearTimeout(retention);
      finish('exited');
    }
  };

  const serve = async (stream: MuxStream): Promise<void> => {
    if (session || ending) {
      stream.destroy();
      return;
    }
    let hello: MessageOf<'channel-hello'>;
    try {
      const first = await readFirstFrame(stream, { timeoutMs: 30_000 });
      if (first.message.type !== 'channel-hello') throw new Error('expected channel-hello');
      hello = first.message;
      if (first.rest.length > 0) stream.unshift(first.rest);
    } catch {
      stream.destroy();
      return;
    }
    if (session || ending) {
      stream.destroy();
      return;
    }
    const evidence = await control.evidence(
      reportDataFor({ domain: BINDING_DOMAIN, spki, nonce: hello.nonce }),
    );
    const certDer = makeKeepCertificate(
      evidence.kind === 'none'
        ? { privateKey, nonce: hello.nonce, now: new Date() }
        : {
            privateKey,
            nonce: hello.nonce,
            now: new Date(),
            evidence: { kind: evidence.kind, report: evidence.report, certs: evidence.certs },
          },
    );
    const tls = new TLSSocket(stream, {
      isServer: true,
      key: keyPem,
      cert: pem('CERTIFICATE', certDer),
      minVersion: 'TLSv1.3',
    });
    session = tls;
    stream.resume();
    let opened = false;
    // Stdin that arrives while the workload is still being compiled waits for it.
    let ready: Promise<void> = Promise.resolve();
    const feed = (m: Message): void => {
      ready = ready.then(() => {
        try {
          if (m.type === 'stdin') run?.writeStdin(m.data);
          else if (m.type === 'stdin-end') run?.endStdin();
        } catch {
          // stdin after its end, or to a workload without stdin: nothing to deliver it to
        }
      });
    };
    const detach = (): void => {
      if (session === tls) session = undefined;
      tls.destroy();
    };
    tls.on('error', detach);
    tls.on('close', detach);
    readFrames(
      tls,
      (m) => {
        if (!opened) {
          opened = true;
          if (m.type === 'deploy' && !owner && !run) ready = deploy(tls, m);
          else if (m.type === 'attach' && run) attach(tls, m);
          else {
            refuse(
              tls,
              'ERR_PROTOCOL_UNEXPECTED',
              `Cannot accept ${m.type}: expected ${run ? 'attach' : 'deploy'} first`,
            );
          }
          return;
        }
        if (m.type === 'stdin' || m.type === 'stdin-end') feed(m);
        else refuse(tls, 'ERR_PROTOCOL_UNEXPECTED', `Cannot accept ${m.type} here`);
      },
      { maxFrameBytes: CHANNEL_MAX_FRAME, onError: detach, onEnd: detach },
    );
  };

  const streams = new Map<number, MuxStream>();
  const mux = new MuxReader();
  pipe.on('data', (chunk: Buffer) => {
    let frames: ReturnType<MuxReader['push']>;
    try {
      frames = mux.push(chunk);
    } catch {
      finish('failed', 'the channel pipe broke its framing');
      return;
    }
    for (const f of frames) {
      if (f.kind === MUX_OPEN) {
        const stream = new MuxStream(pipe, f.id);
        streams.set(f.id, stream);
        stream.on('close', () => streams.delete(f.id));
        stream.on('error', () => stream.destroy());
        void serve(stream).catch(() => stream.destroy());
      } else {
        const stream = streams.get(f.id);
        if (!stream) continue;
        if (f.kind === MUX_DATA) stream.receive(f.payload);
        else if (f.kind === MUX_END) stream.receiveEnd();
        else if (f.kind === MUX_RESET) stream.receiveReset();
      }
    }
  });
  pipe.on('error', () => finish('failed', 'the channel pipe broke'));
  control.event('ready');
}
