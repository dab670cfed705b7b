import { createHash, generateKeyPairSync, type KeyObject, timingSafeEqual } from 'node:crypto';
import { Socket } from 'node:net';
import { createSecureContext, type SecureContext, TLSSocket } from 'node:tls';
import { setFlagsFromString } from 'node:v8';
import type { Limits, Message, MessageOf, PortMapping } from '../protocol/messages.ts';
import { MUX_ACCEPT, MUX_OPEN, MuxSession, type MuxStream } from '../protocol/mux.ts';
import { readFirstFrame, readFrames, writeFrame } from '../protocol/stream.ts';
import {
  configDigest,
  DEFAULT_FILE_SPECS,
  type NormalizedFile,
  normalizeFiles,
} from '../protocol/workload.ts';
import {
  BINDING_DOMAIN,
  type CarriedEvidence,
  makeKeepCertificate,
  makeServiceCertificate,
  reportDataFor,
  SERVICE_BINDING_DOMAIN,
  spkiOf,
} from '../ratls/index.ts';
import {
  startWasi,
  startWasiWorker,
  type WasiFile,
  type WasiResult,
  type WasiRun,
  type WasiTree,
} from '../wasi/index.ts';
import { preopensOf } from './dirs.ts';
import { KeepError, type KeepErrorCode } from './errors.ts';
import { KeepSockets, receiveHandOff, type ServiceTls } from './sockets.ts';

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
/** The WASI host's memory limit when neither host nor tenant sets one. */
const DEFAULT_MEMORY_BYTES = 256 * 1024 * 1024;
/** A service certificate is valid this long, and renewed (with fresh evidence) halfway through. */
const SERVICE_CERT_VALIDITY_MS = 24 * 3600_000;

function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

function lower(host: number | undefined, tenant: number | undefined): number | undefined {
  if (host === undefined) return tenant;
  if (tenant === undefined) return host;
  return Math.min(host, tenant);
}

/**
 * The certificate authorities of the Keep's TLS servers: none. Without a `ca` option Node loads its whole
 * bundled root store into every new TLS context's process on first use (about 40 ms, measured on a channel's
 * critical path); the Keep's servers never ask for a client certificate, so they need no authority at all.
 */
const NO_ROOTS: string[] = [];

function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * What the certificate carries of the Keep Loader's evidence: the report or quote, the certificates, and for a
 * TDX quote its DCAP collateral. The Keep passes the host's bytes along unread; the relying party checks them.
 */
function carried(evidence: MessageOf<'evidence'>): CarriedEvidence | undefined {
  if (evidence.kind === 'none') return undefined;
  const out: CarriedEvidence = { kind: evidence.kind, report: evidence.report, certs: evidence.certs };
  if (evidence.kind === 'tdx' && evidence.collateral !== undefined) out.collateral = evidence.collateral;
  return out;
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
  let sockets: KeepSockets | undefined;
  let serviceTimer: NodeJS.Timeout | undefined;

  // The workload's thread starts now, while the Keep waits for a channel and a workload, not after them.
  const standby = startWasiWorker(selfUrl);
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
    sockets?.close();
    if (serviceTimer) clearInterval(serviceTimer);
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

  /**
   * The certificate of the workload's `tls` files: fresh evidence binding this Keep's key to the workload's
   * digest and its configuration's, renewed before the certificate expires.
   */
  const serviceTls = async (workload: Uint8Array, config: Uint8Array): Promise<ServiceTls> => {
    const make = async (): Promise<{ context: SecureContext; cert: string }> => {
      const evidence = carried(
        await control.evidence(reportDataFor({ domain: SERVICE_BINDING_DOMAIN, spki, workload, config })),
      );
      const der = makeServiceCertificate({
        privateKey,
        workload,
        config,
        now: new Date(),
        validityMs: SERVICE_CERT_VALIDITY_MS,
        ...(evidence === undefined ? {} : { evidence }),
      });
      const cert = pem('CERTIFICATE', der);
      // `ca: []`: this server asks nobody for a certificate, so it needs no root store (see NO_ROOTS).
      return {
        context: createSecureContext({ key: keyPem, cert, ca: NO_ROOTS, minVersion: 'TLSv1.2' }),
        cert,
      };
    };
    let current = await make();
    serviceTimer = setInterval(() => {
      make().then(
        (next) => {
          current = next;
        },
        () => {},
      );
    }, SERVICE_CERT_VALIDITY_MS / 2);
    serviceTimer.unref();
    return { context: () => current.context, key: keyPem as string, cert: () => current.cert };
  };

  /** The descriptor table, sockets and directories of a deploy, set up before the workload starts. */
  const prepare = async (
    m: MessageOf<'deploy'>,
    memoryBytes: number,
  ): Promise<{
    files: WasiFile[];
    table: NormalizedFile[];
    preopens: Record<string, WasiTree>;
    ports: PortMapping[];
  }> => {
    let table: NormalizedFile[];
    try {
      table = normalizeFiles(m.files ?? DEFAULT_FILE_SPECS);
    } catch (error) {
      throw new KeepError('ERR_DEPLOY_CONFIG_INVALID', (error as Error).message, { cause: error });
    }
    const preopens = m.dirs ? preopensOf(m.dirs) : {};
    // The copies live in the workload's memory budget, as everything it stores does.
    const dirBytes = (m.dirs ?? []).reduce(
      (n, d) => n + d.entries.reduce((k, e) => k + (e.data?.length ?? 0), 0),
      0,
    );
    if (dirBytes > memoryBytes) {
      throw new KeepError(
        'ERR_DEPLOY_CONFIG_INVALID',
        `Cannot pre-open the directories: their ${dirBytes} bytes are over the memory limit of ${memoryBytes}`,
      );
    }
    const usesTls = table.some((f) => (f.kind === 'listen' || f.kind === 'connect') && f.prot === 'tls');
    const tls = usesTls
      ? await serviceTls(
          m.digest,
          configDigest({ args: m.args, env: m.env, files: table, ...(m.dirs ? { dirs: m.dirs } : {}) }),
        )
      : undefined;
    const net = new KeepSockets(mux);
    sockets = net;
    const ports = await net.listen(table, tls);
    const connected = await net.connect(table).catch((error: unknown) => {
      net.close();
      throw error;
    });
    const files = table.map((f, fd): WasiFile => {
      if (f.kind === 'listen') return { kind: 'listen' };
      if (f.kind === 'connect') return { kind: 'socket', stream: connected.get(fd)! };
      return { kind: f.kind };
    });
    return { files, table, preopens, ports };
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
    let ports: PortMapping[] = [];
    try {
      const setup = await prepare(m, limits.memoryBytes ?? DEFAULT_MEMORY_BYTES);
      ports = setup.ports;
      // Enarx's convention: the workload finds its descriptors by name. These are the Keep's, not the tenant's.
      const env =
        m.files === undefined
          ? m.env
          : {
              ...m.env,
              FD_COUNT: String(setup.table.length),
              FD_NAMES: setup.table.map((f) => f.name).join(':'),
            };
      // One workload per Keep: the process-wide compiler flag is this workload's alone. It must be set before
      // startWasi compiles the module.
      if (m.tier === 'optimizing') setFlagsFromString('--no-liftoff');
      run = await startWasi({
        module: m.wasm,
        args: m.args,
        env,
        stdin: m.stdin ? 'pipe' : 'null',
        onStdout: (data) => emit({ v: 1, type: 'stdout', data }),
        onStderr: (data) => emit({ v: 1, type: 'stderr', data }),
        limits,
        files: setup.files,
        preopens: setup.preopens,
        workerUrl: selfUrl,
        standby,
      });
      sockets?.attach(run);
    } catch (error) {
      sockets?.close();
      sockets = undefined;
      const e = error as { code?: unknown; message?: unknown };
      refuse(
        tls,
        typeof e.code === 'string' ? e.code : 'ERR_KEEP_INTERNAL',
        typeof e.message === 'string' ? e.message : 'Cannot start the workload',
      );
      owner = undefined;
      return;
    }
    const started: MessageOf<'started'> = { v: 1, type: 'started' };
    if (ports.length > 0) started.ports = ports;
    if (m.tier !== undefined) started.tier = m.tier;
    writeFrame(tls, started);
    if (m.detach === true) {
      // A service's deployer goes away now; its output is kept for whoever attaches with its secret.
      if (session === tls) session = undefined;
      tls.end();
    }
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
    const evidence = carried(
      await control.evidence(reportDataFor({ domain: BINDING_DOMAIN, spki, nonce: hello.nonce })),
    );
    const certDer = makeKeepCertificate({
      privateKey,
      nonce: hello.nonce,
      now: new Date(),
      ...(evidence === undefined ? {} : { evidence }),
    });
    const tls = new TLSSocket(stream, {
      isServer: true,
      key: keyPem,
      cert: pem('CERTIFICATE', certDer),
      ca: NO_ROOTS,
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

  const mux = new MuxSession(pipe, {
    side: 'keep',
    onStream: ({ stream, kind, payload }) => {
      if (kind === MUX_OPEN) {
        stream.on('error', () => stream.destroy());
        void serve(stream).catch(() => stream.destroy());
      } else if (kind === MUX_ACCEPT && sockets) {
        sockets.accepted(stream, payload);
      } else {
        stream.reset('nothing listens here');
      }
    },
    onError: () => finish('failed', 'the channel pipe broke its framing'),
  });
  pipe.on('error', () => finish('failed', 'the channel pipe broke'));
  // fd 5, when the Keep Loader opened it, is the IPC channel it hands the connections of listen files over on.
  if (process.channel) {
    process.on('message', (m: unknown, handle: unknown) => {
      receiveHandOff(m, handle, (listener, socket) => {
        if (sockets) sockets.handedOver(listener, socket);
        else socket.destroy();
      });
    });
    // It does not keep the Keep alive.
    process.channel.unref();
  }
  control.event('ready');
}
