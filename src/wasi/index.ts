// Over 400 lines: the Keep thread's side of a run (worker, rings, stdin, sockets, limits) in one place.
import type { Duplex } from 'node:stream';
import { MessageChannel, type MessagePort, Worker, type WorkerOptions } from 'node:worker_threads';
import { PREVIEW1_MODULE, PREVIEW1_SIGNATURES } from './abi.ts';
import { WasiError } from './errors.ts';
import { MAX_NODES, measureTree, type WasiTree } from './fs.ts';
import { inspectWasiModule, limitModuleMemory, WASM_PAGE } from './module.ts';
import { CallerNet, Doorbell } from './net.ts';
import type { Preview1File } from './preview1.ts';
import { ByteRing, splitRecords } from './ring.ts';
import { type WasmModule, wasm } from './wasm.ts';
import { makeStandbyData, makeWorkerData, type StartMessage, type WorkerMessage } from './worker.ts';

export { isWasiError, WasiError, type WasiErrorCode, wasiErrorCodes } from './errors.ts';
export type { WasiTree } from './fs.ts';
export { validateWasiModule } from './module.ts';
export { type Preview1Net, RX_WINDOW, TX_WINDOW } from './net.ts';
export type { WasmModule } from './wasm.ts';
export { isWasiWorker, wasiWorkerMain } from './worker.ts';

/** Resource limits of one run. */
export interface WasiLimits {
  /** Most bytes the module's linear memory may reach (rounded down to whole 64 KiB pages). Default 256 MiB. */
  memoryBytes?: number;
  /** Wall-clock time from start until the run is stopped with limit 'time'. Default: none. */
  wallTimeMs?: number;
  /** Most bytes stdout and stderr may carry together. Default: none. */
  outputBytes?: number;
  /**
   * Most open descriptors, stdio and pre-opened directories included (so at least 3); opening one more
   * ends the run with limit 'fds'. Default: none.
   */
  maxFds?: number;
}

/**
 * One entry of the descriptor table the module starts with (descriptor n is the n-th): a standard stream,
 * /dev/null, a listening socket whose connections the caller hands in with {@link WasiRun.offer}, or a
 * connected socket over `stream` (already through TLS, when the workload is to see plaintext).
 */
export type WasiFile =
  | { kind: 'stdin' | 'stdout' | 'stderr' | 'null' }
  | { kind: 'listen' }
  | { kind: 'socket'; stream: Duplex };

/** What to run and how to talk to it. */
export interface WasiOptions {
  /** The module's bytes (preferred: the memory limit is then written into the module) or a compiled module. */
  module: Uint8Array | WasmModule;
  /** argv; argv[0] is the program name, which the caller supplies. */
  args: readonly string[];
  env: Readonly<Record<string, string>>;
  /** `'pipe'`: the caller feeds bytes with writeStdin/endStdin. `'null'`: the module reads end of input. */
  stdin: 'pipe' | 'null';
  /** Called on the caller's thread, in order, with a chunk the callee may keep. */
  onStdout(chunk: Uint8Array): void;
  /** Called on the caller's thread, in order (interleaved with stdout as written). */
  onStderr(chunk: Uint8Array): void;
  limits?: WasiLimits;
  /**
   * Directories the module finds pre-opened (descriptors 3, 4, ... in this order), keyed by the name it
   * sees, usually "/". Each is an in-memory copy: what the module writes there lives only as long as the
   * run, and all files together may hold at most `limits.memoryBytes`. Default: none.
   */
  preopens?: Readonly<Record<string, WasiTree>>;
  /** Names of `preopens` the module may only read: nothing beneath them can be written, made or removed. */
  readOnlyPreopens?: readonly string[];
  /**
   * The descriptor table from descriptor 0, in Enarx.toml's `files` model. Default: stdin, stdout and
   * stderr. Pre-opened directories come after it. The streams of sockets belong to the run from here on: it
   * destroys them when the module closes them or the run ends.
   */
  files?: readonly WasiFile[];
  /**
   * A worker started ahead with {@link startWasiWorker}, so that the thread's start-up (loading its script)
   * is not on the run's critical path. It must have been started with the same `workerUrl`.
   */
  standby?: WasiStandbyWorker;
  /**
   * The script the worker thread runs; it must call wasiWorkerMain() when isWasiWorker(workerData) is
   * true. Default: this folder's worker-entry.ts. A program bundled into one file passes its own URL, or
   * carries the worker's code as text and passes `{ source }` (evaluated as a CommonJS script).
   */
  workerUrl?: WasiWorkerScript;
}

/** Where a WASI worker thread's code comes from: a script file, or the code itself. */
export type WasiWorkerScript = URL | { readonly source: string };

function newWorker(script: WasiWorkerScript | undefined, options: WorkerOptions): Worker {
  if (script !== undefined && !(script instanceof URL))
    return new Worker(script.source, { ...options, eval: true });
  return new Worker(script ?? new URL('./worker-entry.ts', import.meta.url), options);
}

/** How a run ended. */
export type WasiResult =
  /** proc_exit(code), or _start returned (code 0). */
  | { kind: 'exit'; code: number }
  /** A WebAssembly trap (e.g. "unreachable"), or the call stack overflowed. */
  | { kind: 'trap'; message: string }
  | { kind: 'limit'; limit: 'memory' | 'time' | 'output' | 'fds'; message: string }
  /** kill() was called. */
  | { kind: 'killed' };

/** A started run. */
export interface WasiRun {
  /**
   * Queues bytes for the module's stdin (copied; the caller may reuse the buffer). Throws
   * ERR_WASI_STDIN_CLOSED after endStdin() or when stdin is 'null'; ignored once the run has ended.
   */
  writeStdin(chunk: Uint8Array): void;
  /** Ends stdin: once the queued bytes are read, the module reads end of input. */
  endStdin(): void;
  /**
   * Hands a connection to the `listen` file at descriptor `fd` of `files` (its index, whatever the module
   * renumbered since). Returns false when the module closed that listener or the run ended; the stream is
   * then still the caller's to close. Throws RangeError when `files[fd]` is not a listen file.
   */
  offer(fd: number, stream: Duplex): boolean;
  /** Stops the module now; the result is { kind: 'killed' } unless it had already ended. */
  kill(): void;
  /** Settles after every output chunk was delivered. Rejects only with a WasiError (host failure). */
  readonly result: Promise<WasiResult>;
}

const DEFAULT_MEMORY_BYTES = 256 * 1024 * 1024;
const MAX_MEMORY_BYTES = 65536 * WASM_PAGE;
const OUTPUT_RING_BYTES = 1 << 20;
const STDIN_RING_BYTES = 1 << 18;
/** Modules up to this size are compiled synchronously (see prepare). */
const SYNC_COMPILE_BYTES = 4 << 20;

interface Checked {
  memoryBytes: number;
  maxFds?: number;
  wallTimeMs?: number;
  outputBytes?: number;
}

function checkOptions(options: WasiOptions): Checked {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('Cannot start WASI: options must be an object');
  if (!(options.module instanceof Uint8Array) && !(options.module instanceof wasm.Module)) {
    throw new TypeError('Cannot start WASI: module must be a Uint8Array or a WebAssembly.Module');
  }
  if (
    !Array.isArray(options.args) ||
    !options.args.every((a) => typeof a === 'string' && !a.includes('\0'))
  ) {
    throw new TypeError('Cannot start WASI: args must be an array of strings without NUL characters');
  }
  if (typeof options.env !== 'object' || options.env === null || Array.isArray(options.env)) {
    throw new TypeError('Cannot start WASI: env must be an object of strings');
  }
  for (const [k, v] of Object.entries(options.env)) {
    if (k === '' || k.includes('=') || k.includes('\0')) {
      throw new TypeError(
        `Cannot start WASI: environment name ${JSON.stringify(k)} is empty or holds = or NUL`,
      );
    }
    if (typeof v !== 'string' || v.includes('\0')) {
      throw new TypeError(`Cannot start WASI: environment value of ${k} is not a string without NUL`);
    }
  }
  if (options.stdin !== 'pipe' && options.stdin !== 'null') {
    throw new TypeError("Cannot start WASI: stdin must be 'pipe' or 'null'");
  }
  if (typeof options.onStdout !== 'function' || typeof options.onStderr !== 'function') {
    throw new TypeError('Cannot start WASI: onStdout and onStderr must be functions');
  }
  const script = options.workerUrl;
  if (
    script !== undefined &&
    !(script instanceof URL) &&
    (typeof script !== 'object' || script === null || typeof script.source !== 'string')
  ) {
    throw new TypeError('Cannot start WASI: workerUrl must be a URL or { source }');
  }
  const limits = options.limits ?? {};
  if (typeof limits !== 'object' || limits === null)
    throw new TypeError('Cannot start WASI: limits must be an object');
  const memoryBytes = limits.memoryBytes ?? DEFAULT_MEMORY_BYTES;
  if (!Number.isSafeInteger(memoryBytes) || memoryBytes < 0 || memoryBytes > MAX_MEMORY_BYTES) {
    throw new RangeError('Cannot start WASI: limits.memoryBytes must be an integer from 0 to 4 GiB');
  }
  const checked: Checked = { memoryBytes: Math.floor(memoryBytes / WASM_PAGE) * WASM_PAGE };
  if (limits.wallTimeMs !== undefined) {
    if (
      typeof limits.wallTimeMs !== 'number' ||
      !(limits.wallTimeMs > 0) ||
      limits.wallTimeMs > 2 ** 31 - 1
    ) {
      throw new RangeError('Cannot start WASI: limits.wallTimeMs must be a positive number of milliseconds');
    }
    checked.wallTimeMs = limits.wallTimeMs;
  }
  if (limits.outputBytes !== undefined) {
    if (!Number.isSafeInteger(limits.outputBytes) || limits.outputBytes < 0) {
      throw new RangeError('Cannot start WASI: limits.outputBytes must be a non-negative integer');
    }
    checked.outputBytes = limits.outputBytes;
  }
  const preopens = options.preopens ?? {};
  if (typeof preopens !== 'object' || preopens === null || Array.isArray(preopens)) {
    throw new TypeError('Cannot start WASI: preopens must be an object of directory trees');
  }
  let bytes = 0;
  let nodes = 0;
  for (const [name, tree] of Object.entries(preopens)) {
    if (name === '' || name.includes('\0')) {
      throw new TypeError(`Cannot start WASI: preopen name ${JSON.stringify(name)} is empty or holds NUL`);
    }
    const size = measureTree(tree);
    bytes += size.bytes;
    nodes += size.nodes;
  }
  if (bytes > checked.memoryBytes || nodes > MAX_NODES) {
    throw new RangeError('Cannot start WASI: the pre-opened files exceed the filesystem capacity');
  }
  const files = options.files;
  if (files !== undefined) {
    if (!Array.isArray(files)) throw new TypeError('Cannot start WASI: files must be an array');
    for (const [i, f] of files.entries()) {
      const kind = (f as { kind?: unknown } | null)?.kind;
      if (kind === 'socket') {
        const stream = (f as { stream?: unknown }).stream as { write?: unknown; on?: unknown } | undefined;
        if (typeof stream?.write !== 'function' || typeof stream.on !== 'function') {
          throw new TypeError(`Cannot start WASI: files[${i}] is a socket without a stream`);
        }
      } else if (!['stdin', 'stdout', 'stderr', 'null', 'listen'].includes(kind as string)) {
        throw new TypeError(`Cannot start WASI: files[${i}] has no known kind`);
      }
    }
  }
  const fixedFds = (files?.length ?? 3) + Object.keys(preopens).length;
  if (limits.maxFds !== undefined) {
    if (!Number.isSafeInteger(limits.maxFds) || limits.maxFds < fixedFds) {
      throw new RangeError(`Cannot start WASI: limits.maxFds must be an integer of at least ${fixedFds}`);
    }
    checked.maxFds = limits.maxFds;
  }
  return checked;
}

function checkCompiled(module: WasmModule): void {
  for (const imp of wasm.Module.imports(module)) {
    const what = `${imp.module}.${imp.name}`;
    if (
      imp.kind !== 'function' ||
      imp.module !== PREVIEW1_MODULE ||
      !Object.hasOwn(PREVIEW1_SIGNATURES, imp.name)
    ) {
      throw new WasiError(
        'ERR_WASM_IMPORT_UNSUPPORTED',
        `Cannot run the module: it imports ${what} (${imp.kind}), which is not a WASI preview1 function`,
      );
    }
  }
  if (
    !wasm.Module.exports(module).some((e) => (e.name === '_start' || e.name === '') && e.kind === 'function')
  ) {
    throw new WasiError('ERR_WASM_NOT_COMMAND', 'Cannot run the module: it exports no _start function');
  }
}

async function prepare(
  input: Uint8Array | WasmModule,
  memoryBytes: number,
): Promise<{ module: WasmModule; checkMemoryAtCalls: boolean }> {
  if (!(input instanceof Uint8Array)) {
    checkCompiled(input);
    // Its memory section cannot be rewritten any more, so the host checks the size at every call instead.
    return { module: input, checkMemoryAtCalls: true };
  }
  const info = inspectWasiModule(input);
  const bytes = limitModuleMemory(input, info, memoryBytes / WASM_PAGE);
  try {
    // A small module compiles in a few milliseconds on this thread; the asynchronous compile would add the
    // round trips to V8's compile threads and back, which is most of its time. A large one compiles off it.
    const module = bytes.length <= SYNC_COMPILE_BYTES ? new wasm.Module(bytes) : await wasm.compile(bytes);
    return { module, checkMemoryAtCalls: false };
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    throw new WasiError('ERR_WASM_INVALID', `Cannot compile the module: ${detail}`, { cause: error });
  }
}

/**
 * The smallest WASI command: a `_start` that returns and a one-page memory. Warming up runs it through the
 * same steps as a workload, so that V8 has compiled the host's own code for them before a workload arrives.
 */
const WARM_UP_MODULE = new Uint8Array([
  // magic, version; type ()->(); one function; memory of one page; exports _start and memory; an empty body
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00,
  0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x13, 0x02, 0x06, 0x5f, 0x73, 0x74, 0x61, 0x72, 0x74, 0x00, 0x00, 0x06,
  0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b,
]);

/**
 * Takes a tiny module through the caller's side of {@link startWasi} (check, memory limit, compilation) and
 * discards it. A program that waits for its workload (a Keep) calls it while idle: the first real module then
 * does not wait for V8 to compile this code.
 */
export async function warmWasiHost(): Promise<void> {
  const { module } = await prepare(WARM_UP_MODULE, WASM_PAGE);
  checkCompiled(module);
}

/**
 * Compiles and checks the module, then runs it in a worker thread under the WASI preview1 host. Rejects
 * with a {@link WasiError} when the module is refused or the worker cannot start; whatever the module
 * does after that (exit, trap, hitting a limit) is the run's `result`.
 *
 * @example
 * const run = await startWasi({ module: bytes, args: ['hello'], env: {}, stdin: 'null',
 *   onStdout: (b) => process.stdout.write(b), onStderr: (b) => process.stderr.write(b) });
 * const result = await run.result; // { kind: 'exit', code: 0 }
 */
/** A WASI worker thread started before the module it will run is known. */
export interface WasiStandbyWorker {
  readonly worker: Worker;
  /** False once the thread failed or ended: startWasi then starts a fresh one. */
  usable(): boolean;
}

/**
 * Starts a WASI worker thread ahead of its run: the thread loads its script and waits. A Keep does this while
 * it waits for its workload, so a deploy does not wait for a thread to start. The thread does not keep the
 * process alive while it waits.
 */
export function startWasiWorker(workerUrl?: WasiWorkerScript): WasiStandbyWorker {
  const worker = newWorker(workerUrl, {
    name: 'donjon-wasi',
    env: {},
    workerData: makeStandbyData(),
  });
  let alive = true;
  worker.on('error', () => {
    alive = false;
  });
  worker.on('exit', () => {
    alive = false;
  });
  worker.unref();
  return { worker, usable: () => alive };
}

export async function startWasi(options: WasiOptions): Promise<WasiRun> {
  const limits = checkOptions(options);
  const { module, checkMemoryAtCalls } = await prepare(options.module, limits.memoryBytes);
  const onStdout = options.onStdout;
  const onStderr = options.onStderr;
  const pipe = options.stdin === 'pipe';

  const outputBuffer = ByteRing.allocate(OUTPUT_RING_BYTES);
  const stdinBuffer = ByteRing.allocate(STDIN_RING_BYTES);
  const output = new ByteRing(outputBuffer);
  const input = new ByteRing(stdinBuffer);
  if (!pipe) input.close();

  // Sockets: the caller's thread owns the streams; the worker sees connection ids.
  let net: CallerNet | undefined;
  let workerNet: { port: MessagePort; doorbell: SharedArrayBuffer; connected: number[] } | undefined;
  let files: Preview1File[] | undefined;
  if (options.files !== undefined) {
    const wantsNet = options.files.some((f) => f.kind === 'listen' || f.kind === 'socket');
    if (wantsNet) {
      const channel = new MessageChannel();
      const bell = new Doorbell();
      net = new CallerNet(channel.port1, bell);
      workerNet = { port: channel.port2, doorbell: bell.buffer, connected: [] };
    }
    files = options.files.map((f, i): Preview1File => {
      if (f.kind === 'listen') return { kind: 'listen', listener: i };
      if (f.kind === 'socket') {
        const id = net!.register(f.stream);
        workerNet!.connected.push(id);
        return { kind: 'socket', id };
      }
      return { kind: f.kind };
    });
  }

  let worker: Worker;
  try {
    const data = makeWorkerData({
      module,
      args: [...options.args],
      env: { ...options.env },
      stdin: options.stdin,
      stdinRing: stdinBuffer,
      outputRing: outputBuffer,
      memoryBytes: limits.memoryBytes,
      checkMemoryAtCalls,
      ...(limits.outputBytes === undefined ? {} : { outputBytes: limits.outputBytes }),
      preopens: options.preopens ?? {},
      ...(options.readOnlyPreopens === undefined ? {} : { readOnlyPreopens: [...options.readOnlyPreopens] }),
      fsBytes: limits.memoryBytes,
      ...(limits.maxFds === undefined ? {} : { maxFds: limits.maxFds }),
      ...(files === undefined ? {} : { files }),
      ...(workerNet === undefined ? {} : { net: workerNet }),
    });
    const transferList = workerNet === undefined ? [] : [workerNet.port];
    if (options.standby?.usable()) {
      worker = options.standby.worker;
      worker.ref();
      worker.postMessage({ type: 'start', data } satisfies StartMessage, transferList);
    } else {
      worker = newWorker(options.workerUrl, {
        name: 'donjon-wasi',
        env: {},
        transferList,
        workerData: data,
      });
    }
  } catch (error) {
    net?.close();
    throw new WasiError('ERR_WASI_WORKER_FAILED', 'Cannot start the WASI worker: the thread did not start', {
      cause: error,
    });
  }

  let ready = false;
  let settled = false;
  let exited = false;
  let stopping: WasiResult | undefined;
  let timer: NodeJS.Timeout | undefined;
  let resolveResult!: (r: WasiResult) => void;
  let rejectResult!: (e: WasiError) => void;
  const result = new Promise<WasiResult>((resolve, reject) => {
    resolveResult = resolve;
    rejectResult = reject;
  });
  let resolveStart!: () => void;
  let rejectStart!: (e: WasiError) => void;
  const started = new Promise<void>((resolve, reject) => {
    resolveStart = resolve;
    rejectStart = reject;
  });

  const drain = (): void => {
    const n = output.available();
    if (n === 0) return;
    const bytes = new Uint8Array(n);
    output.read(bytes);
    for (const { fd, data } of splitRecords(bytes)) {
      if (fd === 1) onStdout(data);
      else onStderr(data);
    }
  };

  // `startup` errors (the module did not link, the worker script did not load) reject startWasi itself;
  // any other failure belongs to a run the caller holds, so it rejects `result`.
  const settle = (outcome: { result: WasiResult } | { error: WasiError; startup: boolean }): void => {
    if (settled) return;
    settled = true;
    if (timer !== undefined) clearTimeout(timer);
    let final = outcome;
    try {
      drain();
    } catch (error) {
      final = { error: callbackFailed(error), startup: false };
    }
    // Release the pending asynchronous waits so nothing lingers after the run.
    output.wakeAll();
    input.wakeAll();
    net?.close();
    if (!exited) void worker.terminate();
    if ('result' in final) {
      resolveResult(final.result);
      resolveStart();
    } else if (!final.startup) {
      rejectResult(final.error);
      resolveStart();
    } else {
      // startWasi rejects; nobody holds `result`, so keep its rejection from going unhandled.
      result.catch(() => {});
      rejectResult(final.error);
      rejectStart(final.error);
    }
  };

  const callbackFailed = (error: unknown): WasiError =>
    new WasiError('ERR_WASI_CALLBACK_FAILED', 'Cannot deliver output: an output callback threw', {
      cause: error,
    });

  const pumpOutput = (): void => {
    if (settled) return;
    const seq = output.producerSeq();
    try {
      drain();
    } catch (error) {
      settle({ error: callbackFailed(error), startup: false });
      return;
    }
    const changed = output.producerChanged(seq);
    if (changed !== undefined) void changed.then(pumpOutput);
    else setImmediate(pumpOutput);
  };

  const stop = (reason: WasiResult): void => {
    if (settled || stopping !== undefined) return;
    stopping = reason;
    void worker.terminate();
  };

  worker.on('message', (m: WorkerMessage) => {
    switch (m.type) {
      case 'ready':
        ready = true;
        resolveStart();
        break;
      case 'done':
        settle({ result: m.result });
        break;
      case 'failed':
        settle({
          error: new WasiError(
            m.phase === 'link' ? 'ERR_WASM_IMPORT_UNSUPPORTED' : 'ERR_WASI_WORKER_FAILED',
            m.phase === 'link'
              ? `Cannot instantiate the module: ${m.message}`
              : `Cannot run the module: the host failed (${m.message})`,
          ),
          startup: m.phase === 'link',
        });
        break;
    }
  });
  worker.on('error', (error) => {
    settle({
      error: new WasiError('ERR_WASI_WORKER_FAILED', 'Cannot run the module: the worker thread failed', {
        cause: error,
      }),
      startup: !ready,
    });
  });
  worker.on('exit', () => {
    exited = true;
    if (stopping !== undefined) settle({ result: stopping });
    else {
      settle({
        error: new WasiError(
          'ERR_WASI_WORKER_FAILED',
          'Cannot run the module: the worker thread ended without a result',
        ),
        startup: !ready,
      });
    }
  });

  if (limits.wallTimeMs !== undefined) {
    const ms = limits.wallTimeMs;
    timer = setTimeout(
      () => stop({ kind: 'limit', limit: 'time', message: `Wall time exceeded the limit of ${ms} ms` }),
      ms,
    );
  }
  pumpOutput();

  const queue: Uint8Array[] = [];
  let ended = !pipe;
  let waitingForRoom = false;
  const pumpStdin = (): void => {
    if (settled) return;
    const seq = input.consumerSeq();
    while (queue.length > 0) {
      const head = queue[0]!;
      const n = input.write(head);
      if (n === head.length) queue.shift();
      else {
        queue[0] = head.subarray(n);
        break;
      }
    }
    // A module polling sockets and stdin together waits on the sockets' doorbell.
    net?.ring();
    if (queue.length === 0) {
      if (ended && !input.closed()) {
        input.close();
        net?.ring();
      }
      return;
    }
    if (waitingForRoom) return;
    waitingForRoom = true;
    const again = (): void => {
      waitingForRoom = false;
      pumpStdin();
    };
    const changed = input.consumerChanged(seq);
    if (changed !== undefined) void changed.then(again);
    else setImmediate(again);
  };

  const run: WasiRun = {
    writeStdin(chunk: Uint8Array): void {
      if (!(chunk instanceof Uint8Array))
        throw new TypeError('Cannot write to stdin: chunk must be a Uint8Array');
      if (!pipe)
        throw new WasiError('ERR_WASI_STDIN_CLOSED', "Cannot write to stdin: the run's stdin is 'null'");
      if (ended) throw new WasiError('ERR_WASI_STDIN_CLOSED', 'Cannot write to stdin: endStdin() was called');
      if (settled || chunk.length === 0) return;
      queue.push(new Uint8Array(chunk));
      pumpStdin();
    },
    endStdin(): void {
      if (ended) return;
      ended = true;
      pumpStdin();
    },
    offer(fd: number, stream: Duplex): boolean {
      if (options.files?.[fd]?.kind !== 'listen') {
        throw new RangeError(`Cannot offer a connection: descriptor ${fd} is not a listen file`);
      }
      if (settled) return false;
      return net!.offer(fd, stream);
    },
    kill(): void {
      stop({ kind: 'killed' });
    },
    result,
  };

  await started;
  return run;
}
