import { PREVIEW1_SIGNATURES } from '../../src/wasi/abi.ts';
import type { WasiTree } from '../../src/wasi/fs.ts';
import type { Preview1Net } from '../../src/wasi/net.ts';
import { Preview1, type Preview1File, type Preview1Options } from '../../src/wasi/preview1.ts';
import { type WasmMemory, wasm } from '../../src/wasi/wasm.ts';
import { buildModule, op, signature, wasiImport } from './wasm-builder.ts';

// Each test instantiates, on its own thread, a module that imports every preview1 function and re-exports
// it unchanged, so the calls cross the real wasm/JS boundary (i64 as BigInt, i32 wrapping) with fake
// stdio and clocks.

export const NAMES = Object.keys(PREVIEW1_SIGNATURES);
export const PAGES = 2;
const forwarder = new wasm.Module(
  buildModule({
    imports: NAMES.map((n) => wasiImport(n, PREVIEW1_SIGNATURES[n]!)),
    funcs: NAMES.map((n, i) => {
      const { params, results } = signature(PREVIEW1_SIGNATURES[n]!);
      return {
        params,
        results,
        body: [...params.flatMap((_, j) => op.localGet(j)), ...op.call(i)],
        export: n,
      };
    }),
    memory: { min: PAGES, max: 64 },
  }),
);

export interface HarnessOptions {
  args?: string[];
  env?: Record<string, string>;
  stdin?: 'pipe' | 'null';
  input?: string;
  ended?: boolean;
  outputLimit?: number;
  memoryLimitBytes?: number;
  /** Runs when a read would block: the test plays the thread that feeds stdin. */
  onBlock?: (feed: (s: string) => void, end: () => void) => void;
  random?: (dst: Uint8Array) => void;
  /** Count output bytes without keeping them. */
  discardOutput?: boolean;
  preopens?: Record<string, WasiTree>;
  readOnlyPreopens?: string[];
  fsCapacityBytes?: number;
  maxFds?: number;
  files?: Preview1File[];
  net?: Preview1Net;
}

export function harness(o: HarnessOptions = {}) {
  const input = [...Buffer.from(o.input ?? '')];
  let ended = o.ended ?? false;
  const out: { fd: number; data: Buffer }[] = [];
  const sleeps: number[] = [];
  const waits: number[] = [];
  let written = 0;
  const clock = { mono: 5_000_000_000n, real: 1_700_000_000_000_000_000n, cpu: 42_000n };
  const feed = (s: string): void => {
    input.push(...Buffer.from(s));
  };
  const end = (): void => {
    ended = true;
  };
  const block = (): void => {
    if (o.onBlock === undefined) throw new Error('test harness: the call would block forever');
    o.onBlock(feed, end);
  };
  const options: Preview1Options = {
    args: o.args ?? ['prog'],
    env: o.env ?? {},
    stdin: o.stdin ?? 'pipe',
    clock: { realtime: () => clock.real, monotonic: () => clock.mono, cputime: () => clock.cpu },
    random: o.random ?? ((dst) => dst.fill(0xab)),
    io: {
      readStdin(dst, wait) {
        if (input.length === 0 && !ended) {
          if (!wait) return -1;
          block();
        }
        const n = Math.min(dst.length, input.length);
        dst.set(input.splice(0, n));
        return n;
      },
      stdinState: () => ({ available: input.length, ended }),
      waitStdin(ms) {
        waits.push(ms);
        if (o.onBlock !== undefined) block();
        else if (Number.isFinite(ms)) advance(ms);
        else block();
      },
      sleep(ms) {
        sleeps.push(ms);
        advance(ms);
      },
      write(fd, data) {
        written += data.length;
        if (o.discardOutput !== true) out.push({ fd, data: Buffer.from(data) });
      },
    },
    ...(o.outputLimit === undefined ? {} : { outputLimit: o.outputLimit }),
    ...(o.memoryLimitBytes === undefined ? {} : { memoryLimitBytes: o.memoryLimitBytes }),
    ...(o.preopens === undefined ? {} : { preopens: o.preopens }),
    ...(o.readOnlyPreopens === undefined ? {} : { readOnlyPreopens: o.readOnlyPreopens }),
    ...(o.fsCapacityBytes === undefined ? {} : { fsCapacityBytes: o.fsCapacityBytes }),
    ...(o.maxFds === undefined ? {} : { maxFds: o.maxFds }),
    ...(o.files === undefined ? {} : { files: o.files }),
    ...(o.net === undefined ? {} : { net: o.net }),
  };
  function advance(ms: number): void {
    clock.mono += BigInt(ms) * 1_000_000n;
    clock.real += BigInt(ms) * 1_000_000n;
  }
  const host = new Preview1(options);
  const instance = new wasm.Instance(forwarder, { wasi_snapshot_preview1: host.imports });
  const memory = instance.exports['memory'] as WasmMemory;
  host.bindMemory(memory);
  const call = (name: string, ...args: (number | bigint)[]): number => {
    const f = instance.exports[name] as (...a: (number | bigint)[]) => number;
    return f(...args);
  };
  return {
    host,
    call,
    memory,
    out,
    sleeps,
    waits,
    clock,
    u8: () => new Uint8Array(memory.buffer),
    dv: () => new DataView(memory.buffer),
    written: () => written,
    text: (fd: number) => Buffer.concat(out.filter((c) => c.fd === fd).map((c) => c.data)).toString(),
  };
}

export type H = ReturnType<typeof harness>;
export const END = PAGES * 65536;

export function iovecs(h: H, at: number, list: [number, number][]): void {
  list.forEach(([ptr, len], i) => {
    h.dv().setUint32(at + i * 8, ptr, true);
    h.dv().setUint32(at + i * 8 + 4, len, true);
  });
}

export function put(h: H, at: number, s: string): number {
  const b = Buffer.from(s);
  h.u8().set(b, at);
  return b.length;
}
