import { webcrypto } from 'node:crypto';
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { PREVIEW1_MODULE } from './abi.ts';
import type { WasiTree } from './fs.ts';
import { Doorbell, WorkerNet } from './net.ts';
import { Preview1, type Preview1Clock, type Preview1File, type Preview1Stdio, WasiStop } from './preview1.ts';
import { ByteRing } from './ring.ts';
import { type WasmInstance, type WasmModule, wasm } from './wasm.ts';

// The worker side of a run: instantiate the module against the preview1 host, run _start, and report how
// it ended. Output goes straight into the shared output ring, so whatever the module wrote before a kill
// or a timeout still reaches the caller; nothing is buffered on this side.

const MARKER = 'donjon/wasi-worker/v1';

/** What the caller's thread hands the worker. Structured-clonable: a compiled module and shared buffers. */
export interface WasiWorkerData {
  readonly marker: typeof MARKER;
  readonly module: WasmModule;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly stdin: 'pipe' | 'null';
  readonly stdinRing: SharedArrayBuffer;
  readonly outputRing: SharedArrayBuffer;
  /** Bytes the memory may reach; used to recognise a trap caused by the limit. */
  readonly memoryBytes: number;
  /** True when the module's memory maximum was not lowered, so the host checks the size at every call. */
  readonly checkMemoryAtCalls: boolean;
  readonly outputBytes?: number;
  /** Pre-opened directories by guest name; checked by the caller's thread. */
  readonly preopens: Readonly<Record<string, WasiTree>>;
  /** Names of `preopens` the module may only read. */
  readonly readOnlyPreopens?: readonly string[];
  /** Most bytes the in-memory files may hold. */
  readonly fsBytes: number;
  readonly maxFds?: number;
  /** The descriptor table; absent: stdin, stdout, stderr. */
  readonly files?: readonly Preview1File[];
  /** The worker's end of the sockets, when the table has any. */
  readonly net?: {
    readonly port: MessagePort;
    readonly doorbell: SharedArrayBuffer;
    /** Connections that exist before the module starts (connect files). */
    readonly connected: readonly number[];
  };
}

/** Messages from the worker to the caller's thread. */
export type WorkerMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'done'; readonly result: WorkerResult }
  | { readonly type: 'failed'; readonly phase: 'link' | 'run'; readonly message: string };

/** How the module ended, as the worker sees it (time and kill are the caller's to decide). */
export type WorkerResult =
  | { readonly kind: 'exit'; readonly code: number }
  | { readonly kind: 'trap'; readonly message: string }
  | { readonly kind: 'limit'; readonly limit: 'memory' | 'output' | 'fds'; readonly message: string };

/** Builds the data for a worker; the caller's thread uses it so both sides agree on the shape. */
export function makeWorkerData(fields: Omit<WasiWorkerData, 'marker'>): WasiWorkerData {
  return { marker: MARKER, ...fields };
}

/** The data of a worker started ahead of its run: it waits for its {@link WasiWorkerData} in a message. */
export interface WasiStandbyData {
  readonly marker: typeof MARKER;
  readonly standby: true;
}

/** Builds the data of a worker started before the module it will run is known. */
export function makeStandbyData(): WasiStandbyData {
  return { marker: MARKER, standby: true };
}

/** The message that hands a standby worker its run. */
export interface StartMessage {
  readonly type: 'start';
  readonly data: WasiWorkerData;
}

/**
 * Whether `workerData` is the data of a WASI worker. A script given as `workerUrl` calls
 * {@link wasiWorkerMain} when this is true, so one bundled file can serve as both the program and its
 * WASI worker.
 */
export function isWasiWorker(data: unknown): boolean {
  return typeof data === 'object' && data !== null && (data as { marker?: unknown }).marker === MARKER;
}

function streams(stdinRing: ByteRing, outputRing: ByteRing): Preview1Stdio {
  const nap = new Int32Array(new SharedArrayBuffer(4));
  // Records stay well under the ring's size so a writer never waits for space that cannot appear.
  const maxRecord = outputRing.capacity / 4;
  return {
    readStdin(dst, block) {
      for (;;) {
        const seq = stdinRing.producerSeq();
        const n = stdinRing.read(dst);
        if (n > 0) return n;
        // The producer writes its last bytes before closing, so read once more after seeing the close.
        if (stdinRing.closed()) return stdinRing.read(dst);
        if (!block) return -1;
        stdinRing.waitProducer(seq);
      }
    },
    stdinState() {
      const closed = stdinRing.closed();
      return { available: stdinRing.available(), ended: closed };
    },
    waitStdin(timeoutMs) {
      const seq = stdinRing.producerSeq();
      if (stdinRing.available() > 0 || stdinRing.closed()) return;
      stdinRing.waitProducer(seq, timeoutMs);
    },
    sleep(timeoutMs) {
      Atomics.wait(nap, 0, 0, timeoutMs);
    },
    write(fd, data) {
      for (let at = 0; at < data.length; at += maxRecord) {
        const part = data.subarray(at, at + maxRecord);
        for (;;) {
          const seq = outputRing.consumerSeq();
          if (outputRing.writeRecord(fd, part)) break;
          outputRing.waitConsumer(seq);
        }
      }
    },
  };
}

function clocks(): Preview1Clock {
  // Date.now has millisecond resolution; anchor it once and advance with the high-resolution clock.
  const base = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  return {
    realtime: () => base + process.hrtime.bigint(),
    monotonic: () => process.hrtime.bigint(),
    cputime: () => {
      const u = process.cpuUsage();
      return BigInt(u.user + u.system) * 1000n;
    },
  };
}

function isStackOverflow(error: unknown): boolean {
  return error instanceof RangeError && /call stack/i.test(error.message);
}

function isOutOfMemory(error: unknown): boolean {
  return error instanceof RangeError && /memory/i.test(error.message);
}

function classify(host: Preview1, error: unknown, memoryBytes: number): WorkerResult | undefined {
  if (host.outcome !== undefined) return host.outcome;
  if (error instanceof WasiStop) return error.outcome;
  if (error instanceof wasm.RuntimeError || isStackOverflow(error)) {
    const n = host.allocationFailure(memoryBytes);
    if (n !== undefined) {
      return {
        kind: 'limit',
        limit: 'memory',
        message: `Allocating ${n} more bytes would exceed the memory limit of ${memoryBytes} bytes`,
      };
    }
    return { kind: 'trap', message: (error as Error).message };
  }
  return undefined;
}

/**
 * The body of a WASI worker thread: runs the module described by `workerData` and posts its result.
 * Call it only when {@link isWasiWorker} says the thread is one.
 */
export function wasiWorkerMain(): void {
  const data = workerData as WasiWorkerData | WasiStandbyData;
  const port = parentPort;
  if (!isWasiWorker(data) || port === null) {
    throw new TypeError('Cannot run the WASI worker: this thread was not started by startWasi()');
  }
  if ('standby' in data) {
    // Started ahead (its start-up off the critical path); the run arrives when the workload does.
    port.once('message', (m: StartMessage) => runWorker(m.data, port));
    warmUp();
    return;
  }
  runWorker(data, port);
}

/**
 * Builds a preview1 host for nothing and drops it, while the standby worker waits: V8 then has the host's
 * constructor and import table compiled before the workload's run needs them.
 */
function warmUp(): void {
  const idle = (): never => {
    throw new Error('the warm-up host runs nothing');
  };
  new Preview1({
    args: ['warm-up'],
    env: {},
    stdin: 'null',
    io: { readStdin: idle, stdinState: idle, waitStdin: idle, sleep: idle, write: idle },
    clock: clocks(),
    random: idle,
    preopens: {},
    fsCapacityBytes: 0,
  });
}

function runWorker(data: WasiWorkerData, port: NonNullable<typeof parentPort>): void {
  const post = (m: WorkerMessage): void => port.postMessage(m);
  const host = new Preview1({
    args: data.args,
    env: data.env,
    stdin: data.stdin,
    io: streams(new ByteRing(data.stdinRing), new ByteRing(data.outputRing)),
    clock: clocks(),
    random: (dst) => webcrypto.getRandomValues(dst),
    ...(data.outputBytes === undefined ? {} : { outputLimit: data.outputBytes }),
    ...(data.checkMemoryAtCalls ? { memoryLimitBytes: data.memoryBytes } : {}),
    preopens: data.preopens,
    ...(data.readOnlyPreopens === undefined ? {} : { readOnlyPreopens: data.readOnlyPreopens }),
    fsCapacityBytes: data.fsBytes,
    ...(data.maxFds === undefined ? {} : { maxFds: data.maxFds }),
    ...(data.files === undefined ? {} : { files: data.files }),
    ...(data.net === undefined
      ? {}
      : { net: new WorkerNet(data.net.port, new Doorbell(data.net.doorbell), data.net.connected) }),
  });
  let instance: WasmInstance;
  try {
    instance = new wasm.Instance(data.module, { [PREVIEW1_MODULE]: host.imports });
  } catch (error) {
    // A start function runs during instantiation, so traps and exits can surface here too.
    const result = classify(host, error, data.memoryBytes);
    if (result !== undefined) post({ type: 'done', result });
    else if (isOutOfMemory(error)) {
      post({
        type: 'done',
        result: { kind: 'limit', limit: 'memory', message: String((error as Error).message) },
      });
    } else
      post({
        type: 'failed',
        phase: 'link',
        message: error instanceof Error ? error.message : String(error),
      });
    return;
  }
  const exported = instance.exports['memory'];
  const memory = exported instanceof wasm.Memory ? exported : undefined;
  host.bindMemory(memory);
  if (data.checkMemoryAtCalls && memory !== undefined && memory.buffer.byteLength > data.memoryBytes) {
    const message = `The initial memory of ${memory.buffer.byteLength} bytes exceeds the limit of ${data.memoryBytes}`;
    post({ type: 'done', result: { kind: 'limit', limit: 'memory', message } });
    return;
  }
  // As wasmtime: `_start`, else the default export `""`; what it returns is ignored.
  const start =
    typeof instance.exports['_start'] === 'function' ? instance.exports['_start'] : instance.exports[''];
  if (typeof start !== 'function') {
    post({ type: 'failed', phase: 'link', message: 'the module exports no _start function' });
    return;
  }
  post({ type: 'ready' });
  let result: WorkerResult | undefined;
  try {
    start();
    result = host.outcome ?? { kind: 'exit', code: 0 };
  } catch (error) {
    result = classify(host, error, data.memoryBytes);
    if (result === undefined) {
      post({ type: 'failed', phase: 'run', message: error instanceof Error ? error.message : String(error) });
      return;
    }
  }
  post({ type: 'done', result });
}
