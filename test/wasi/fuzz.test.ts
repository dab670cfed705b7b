import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import fc from 'fast-check';
import { ALL_RIGHTS, errno, PREVIEW1_SIGNATURES } from '../../src/wasi/abi.ts';
import { startWasi, type WasiOptions, type WasiResult } from '../../src/wasi/index.ts';
import { buildModule, type FuncDef, type ImportDef, op, signature, wasiImport } from './wasm-builder.ts';

// Every preview1 import driven through startWasi: a real worker thread, the shared rings, the limits. The
// module's _start makes the calls with constant arguments, so what is fuzzed is exactly what a guest can
// pass. The oracle: each call returns an errno (0..76), the run ends as an exit, a trap or a limit within
// its wall time, and startWasi never rejects.

const NAMES = Object.keys(PREVIEW1_SIGNATURES);
const PAGE = 65536;
/** Where the data segment puts the path strings the fuzzer can point at. */
const PATHS_AT = 0x2000;
const PATHS = ['.', 'nope', 'x', '/abs', 'a', 'd/b', '..', 'd/../a', 'd/', 'a/'];
/** Where the targeted test stores one result byte per call. */
const RESULTS_AT = 0x3000;
const IOVEC_AT = 0x3800;
/** Signals "call i returned a value that is not an errno" through the exit code. */
const BAD_ERRNO_EXIT = 1000;

let workerDir: string;
let workerUrl: URL;

before(async () => {
  // A plain-JavaScript worker starts in milliseconds; going through the TypeScript loader costs far more.
  workerDir = await mkdtemp(join(tmpdir(), 'donjon-fuzz-'));
  const outfile = join(workerDir, 'worker.mjs');
  await build({
    entryPoints: [fileURLToPath(new URL('../../src/wasi/worker-entry.ts', import.meta.url))],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile,
    logLevel: 'silent',
  });
  workerUrl = pathToFileURL(outfile);
});

after(async () => {
  await rm(workerDir, { recursive: true, force: true });
});

const I32_GE_U = 0x4f;
const IF_EMPTY = [0x04, 0x40];
const localTee = (i: number): number[] => [0x22, i];
const i32Store8 = (offset: number): number[] => [0x3a, 0x00, ...uleb(offset)];

function uleb(n: number): number[] {
  const out: number[] = [];
  let v = n >>> 0;
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

interface Call {
  name: string;
  args: (number | bigint)[];
}

function pathBytes(): Uint8Array {
  return new TextEncoder().encode(PATHS.join(''));
}

/** Offset and length of PATHS[i] in memory. */
function pathAt(i: number): [number, number] {
  const before = new TextEncoder().encode(PATHS.slice(0, i).join('')).length;
  return [PATHS_AT + before, new TextEncoder().encode(PATHS[i]!).length];
}

/**
 * A command whose _start makes `calls` in order. After each call that returns a value, the value is
 * checked in wasm: one that is not an errno ends the run with exit code 1000 + the call's index. With
 * `record`, each result byte is also stored and all of them written to stdout at the end.
 */
function callModule(calls: Call[], scratch: Uint8Array, record: boolean): Uint8Array {
  const used = [...new Set(calls.map((c) => c.name))];
  const imports: ImportDef[] = [
    wasiImport('proc_exit', PREVIEW1_SIGNATURES['proc_exit']!),
    wasiImport('fd_write', PREVIEW1_SIGNATURES['fd_write']!),
    ...used.map((n) => wasiImport(n, PREVIEW1_SIGNATURES[n]!)),
  ];
  const index = (name: string): number => 2 + used.indexOf(name);
  const body: number[] = [];
  calls.forEach((c, i) => {
    const { params, results } = signature(PREVIEW1_SIGNATURES[c.name]!);
    params.forEach((t, j) => {
      const a = c.args[j]!;
      body.push(...(t === 'i64' ? op.i64Const(BigInt(a)) : op.i32Const(Number(a) | 0)));
    });
    body.push(...op.call(index(c.name)));
    if (results.length === 0) return;
    body.push(...localTee(0), ...op.i32Const(77), I32_GE_U, ...IF_EMPTY);
    body.push(...op.i32Const(BAD_ERRNO_EXIT + i), ...op.call(0), op.end[0]!);
    if (record) body.push(...op.i32Const(RESULTS_AT + i), ...op.localGet(0), ...i32Store8(0));
  });
  if (record) {
    // One iovec over the result bytes, written to stdout; the count lands after the iovec.
    body.push(...op.i32Const(1), ...op.i32Const(IOVEC_AT), ...op.i32Const(1), ...op.i32Const(IOVEC_AT + 8));
    body.push(...op.call(1), op.drop[0]!);
  }
  const iovec = new Uint8Array(8);
  new DataView(iovec.buffer).setUint32(0, RESULTS_AT, true);
  new DataView(iovec.buffer).setUint32(4, calls.length, true);
  const start: FuncDef = { body, locals: ['i32'], export: '_start' };
  return buildModule({
    imports,
    funcs: [start],
    memory: { min: 1, max: 1 },
    data: [
      { offset: 0, bytes: scratch },
      { offset: PATHS_AT, bytes: pathBytes() },
      ...(record ? [{ offset: IOVEC_AT, bytes: iovec }] : []),
    ],
  });
}

interface Outcome {
  result: WasiResult;
  stdout: Buffer;
  stderr: Buffer;
  ms: number;
}

async function run(module: Uint8Array, extra: Partial<WasiOptions> = {}): Promise<Outcome> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const t0 = performance.now();
  const r = await startWasi({
    module,
    args: ['fuzz', 'arg'],
    env: { K: 'v' },
    stdin: 'null',
    onStdout: (c) => {
      assert.ok(c instanceof Uint8Array, 'stdout chunks are bytes');
      out.push(Buffer.from(c));
    },
    onStderr: (c) => {
      assert.ok(c instanceof Uint8Array, 'stderr chunks are bytes');
      err.push(Buffer.from(c));
    },
    preopens: { '/': { a: new TextEncoder().encode('hello'), d: { b: new Uint8Array(3) } } },
    limits: { memoryBytes: 2 * PAGE, wallTimeMs: 2000, outputBytes: 1 << 20, maxFds: 32 },
    workerUrl,
    ...extra,
  });
  const result = await r.result;
  return { result, stdout: Buffer.concat(out), stderr: Buffer.concat(err), ms: performance.now() - t0 };
}

/** Checks a result has exactly the shape the public type promises. */
function assertWellFormed(r: WasiResult): void {
  switch (r.kind) {
    case 'exit':
      assert.deepEqual(Object.keys(r).sort(), ['code', 'kind']);
      assert.ok(Number.isInteger(r.code) && r.code >= 0 && r.code <= 0xffff_ffff, `exit code ${r.code}`);
      break;
    case 'trap':
      assert.deepEqual(Object.keys(r).sort(), ['kind', 'message']);
      assert.equal(typeof r.message, 'string');
      break;
    case 'limit':
      assert.deepEqual(Object.keys(r).sort(), ['kind', 'limit', 'message']);
      assert.ok(['memory', 'time', 'output', 'fds'].includes(r.limit), r.limit);
      assert.equal(typeof r.message, 'string');
      break;
    default:
      assert.fail(`unexpected result ${JSON.stringify(r)}`);
  }
}

const [DOT, NOPE, X, ABS] = [0, 1, 2, 3].map(pathAt) as [
  [number, number],
  [number, number],
  [number, number],
  [number, number],
];
const OOB = PAGE; // one past the last byte of the module's one page

/**
 * One error path per preview1 function, through the worker: name, arguments, the errno POSIX (or the
 * preview1 spec) gives. Descriptor 3 is the pre-opened "/", 77 is never open.
 */
const ERROR_PATHS: [string, (number | bigint)[], number][] = [
  ['args_get', [OOB, OOB], errno.fault],
  ['args_sizes_get', [OOB, 0], errno.fault],
  ['environ_get', [OOB, OOB], errno.fault],
  ['environ_sizes_get', [0, OOB], errno.fault],
  ['clock_res_get', [99, 0], errno.inval],
  ['clock_time_get', [99, 0n, 0], errno.inval],
  ['fd_advise', [0, 0n, 0n, 6], errno.inval],
  ['fd_allocate', [1, 0n, 10n], errno.spipe],
  ['fd_close', [77], errno.badf],
  ['fd_datasync', [1], errno.inval],
  ['fd_fdstat_get', [1, OOB], errno.fault],
  ['fd_fdstat_set_flags', [1, 0x20], errno.inval],
  ['fd_fdstat_set_rights', [3, ALL_RIGHTS << 1n, 0n], errno.notcapable],
  ['fd_filestat_get', [77, 0], errno.badf],
  ['fd_filestat_set_size', [1, 0n], errno.inval],
  ['fd_filestat_set_times', [1, 0n, 0n, 3], errno.inval],
  ['fd_pread', [0, 0, 0, 0n, 0], errno.spipe],
  ['fd_prestat_get', [1, 0], errno.badf],
  ['fd_prestat_dir_name', [3, 0, 0], errno.nametoolong],
  ['fd_pwrite', [1, 0, 0, 0n, 0], errno.spipe],
  ['fd_read', [1, 0, 0, 0], errno.badf],
  ['fd_readdir', [0, 0, 16, 0n, 0], errno.notdir],
  ['fd_renumber', [1, 77], errno.badf],
  ['fd_seek', [1, 0n, 0, 0], errno.spipe],
  ['fd_sync', [2], errno.inval],
  ['fd_tell', [2, 0], errno.spipe],
  ['fd_write', [0, 0, 0, 0], errno.badf],
  ['path_create_directory', [3, ...DOT], errno.exist],
  ['path_filestat_get', [3, 0, ...NOPE, 0], errno.noent],
  ['path_filestat_set_times', [3, 0, ...X, 0n, 0n, 3], errno.inval],
  ['path_link', [3, 0, ...NOPE, 3, ...X], errno.noent],
  ['path_open', [3, 0, ...NOPE, 0, 0n, 0n, 0, 0], errno.noent],
  ['path_readlink', [3, ...NOPE, 0, 16, OOB], errno.fault],
  ['path_remove_directory', [3, ...DOT], errno.inval],
  ['path_rename', [3, ...NOPE, 3, ...X], errno.noent],
  ['path_symlink', [...ABS, 3, ...X], errno.perm],
  ['path_unlink_file', [3, ...DOT], errno.isdir],
  ['poll_oneoff', [0, 0, 0, 0], errno.inval],
  ['proc_raise', [9], errno.nosys],
  ['random_get', [PAGE - 4, 8], errno.fault],
  ['sock_accept', [77, 0, 0], errno.badf],
  ['sock_recv', [77, 0, 0, 0, 0, 0], errno.badf],
  ['sock_send', [77, 0, 0, 0, 0], errno.badf],
  ['sock_shutdown', [77, 0], errno.badf],
];

test('each preview1 function returns its error through the worker, and the run goes on', async () => {
  const calls = ERROR_PATHS.map(([name, args]) => ({ name, args }));
  const { result, stdout, stderr } = await run(callModule(calls, new Uint8Array(0), true));
  assert.deepEqual(result, { kind: 'exit', code: 0 }, stderr.toString());
  const got = Object.fromEntries(ERROR_PATHS.map(([name], i) => [name, stdout[i]]));
  const want = Object.fromEntries(ERROR_PATHS.map(([name, , e]) => [name, e]));
  assert.deepEqual(got, want);
});

test('the error-path table names every preview1 function but proc_exit and sched_yield', () => {
  // proc_exit returns nothing (its path is the exit, tested below); sched_yield has no failure to report.
  const listed = new Set(ERROR_PATHS.map(([n]) => n));
  assert.deepEqual(
    NAMES.filter((n) => !listed.has(n)),
    ['proc_exit', 'sched_yield'],
  );
});

// Arguments biased towards what reaches deep into the host: small descriptors and flags, pointers into
// the page (and just past it), the path strings, lengths that fit, and the extremes.
const i32Arg = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 8 }) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: PAGE + 16 }) },
  { weight: 2, arbitrary: fc.constantFrom(...PATHS.flatMap((_, i) => pathAt(i))) },
  { weight: 1, arbitrary: fc.constantFrom(-1, 0x7fff_ffff, -(2 ** 31), PAGE - 1, PAGE - 4, PAGE - 8) },
  { weight: 1, arbitrary: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) },
);
const i64Arg = fc.oneof(
  { weight: 3, arbitrary: fc.bigInt({ min: 0n, max: 64n }) },
  { weight: 1, arbitrary: fc.constantFrom(-1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n, 1_000_000n) },
  { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }) },
);
const callArb: fc.Arbitrary<Call> = fc
  .constantFrom(...NAMES.filter((n) => n !== 'proc_exit'))
  .chain((name) =>
    fc
      .tuple(...signature(PREVIEW1_SIGNATURES[name]!).params.map((t) => (t === 'i64' ? i64Arg : i32Arg)))
      .map((args) => ({ name, args })),
  );

test('random calls to every import end in an exit, a trap or a limit, never a host failure', async () => {
  const seen = new Map<string, number>();
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ minLength: 1024, maxLength: 1024 }),
      fc.array(callArb, { minLength: 1, maxLength: 40 }),
      async (scratch, calls) => {
        const o = await run(callModule(calls, scratch, false));
        assertWellFormed(o.result);
        const key = o.result.kind === 'limit' ? `limit ${o.result.limit}` : o.result.kind;
        seen.set(key, (seen.get(key) ?? 0) + 1);
        // A wrong errno shows as exit 1000 + the call's index; a host failure would reject above.
        if (o.result.kind === 'exit') {
          assert.equal(
            o.result.code,
            0,
            `call ${o.result.code - BAD_ERRNO_EXIT}: ${JSON.stringify(calls[o.result.code - BAD_ERRNO_EXIT], (_, v) => (typeof v === 'bigint' ? `${v}n` : v))}`,
          );
        }
        assert.notEqual(o.result.kind, 'trap', JSON.stringify(o.result));
        // The wall-time limit is 2 s; a run that ends much later means a host call ignored it.
        assert.ok(o.ms < 6000, `the run took ${Math.round(o.ms)} ms`);
      },
    ),
    { numRuns: 45 },
  );
  assert.ok((seen.get('exit') ?? 0) > 0, `no run ran to the end: ${JSON.stringify([...seen])}`);
});

test('proc_exit() with any code ends the run with that code as an unsigned 32-bit number', async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), async (code) => {
      const module = buildModule({
        imports: [wasiImport('proc_exit', 'i:')],
        funcs: [{ body: [...op.i32Const(code), ...op.call(0), ...op.unreachable], export: '_start' }],
        memory: { min: 1 },
      });
      const o = await run(module);
      assert.deepEqual(o.result, { kind: 'exit', code: code >>> 0 });
    }),
    { numRuns: 8 },
  );
});

test('a poll on a far deadline is stopped by the wall-time limit, not left hanging', async () => {
  // One clock subscription, relative, 2^62 ns away.
  const sub = new Uint8Array(48);
  const dv = new DataView(sub.buffer);
  dv.setBigUint64(0, 7n, true);
  sub[8] = 0;
  dv.setUint32(16, 1, true);
  dv.setBigUint64(24, 2n ** 62n, true);
  const calls: Call[] = [{ name: 'poll_oneoff', args: [0, 64, 1, 128] }];
  const o = await run(callModule(calls, sub, false), {
    limits: { memoryBytes: PAGE, wallTimeMs: 300 },
  });
  assert.equal(o.result.kind, 'limit');
  assert.equal(o.result.kind === 'limit' && o.result.limit, 'time');
  assert.ok(o.ms < 3000, `took ${Math.round(o.ms)} ms`);
});
