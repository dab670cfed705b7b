import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import {
  isWasiError,
  startWasi,
  startWasiWorker,
  type WasiOptions,
  type WasiRun,
  warmWasiHost,
} from '../../src/wasi/index.ts';
import { wasm } from '../../src/wasi/wasm.ts';
import { buildModule, op, startFunc, uleb, wasiImport } from './wasm-builder.ts';

// End-to-end runs through startWasi: a real worker thread, the shared rings and the example workloads.

const execFileAsync = promisify(execFile);
const workerUrl = new URL('./fixtures/worker.mjs', import.meta.url);
const example = (name: string): Uint8Array =>
  readFileSync(new URL(`../../examples/${name}/${name}.wasm`, import.meta.url));

interface Captured {
  run: WasiRun;
  chunks: [number, Buffer][];
  stdout: () => string;
  stderr: () => string;
}

async function start(
  module: Uint8Array | object,
  options: Partial<Omit<WasiOptions, 'module'>> = {},
): Promise<Captured> {
  const chunks: [number, Buffer][] = [];
  const run = await startWasi({
    module,
    args: ['prog'],
    env: {},
    stdin: 'null',
    onStdout: (c) => chunks.push([1, Buffer.from(c)]),
    onStderr: (c) => chunks.push([2, Buffer.from(c)]),
    workerUrl,
    ...options,
  });
  const text = (fd: number) => (): string =>
    Buffer.concat(chunks.filter(([f]) => f === fd).map(([, b]) => b)).toString();
  return { run, chunks, stdout: text(1), stderr: text(2) };
}

const FD_WRITE = wasiImport('fd_write', 'iiii:i');
const PROC_EXIT = wasiImport('proc_exit', 'i:');

function le32(...values: number[]): number[] {
  return values.flatMap((v) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24]);
}

test('hello prints "Hello, world!" without arguments and exits 0', async () => {
  const c = await start(example('hello'), { args: ['hello'] });
  assert.deepEqual(await c.run.result, { kind: 'exit', code: 0 });
  assert.equal(c.stdout(), 'Hello, world!\n');
  assert.equal(c.stderr(), '');
});

test('wasmtime\'s entry rules: an entry that returns a value exits 0; a module without _start runs its default export ""', async () => {
  // Enarx's tests/wasm return_1.wat: the value is ignored (it was refused as "takes or returns values").
  const returns = await start(
    buildModule({ funcs: [{ results: ['i32'], body: op.i32Const(1), export: '_start' }] }),
  );
  assert.deepEqual(await returns.run.result, { kind: 'exit', code: 0 });
  // The default export "" is the entry: here it exits 7 through proc_exit (it was refused as no _start).
  const dflt = await start(
    buildModule({ imports: [PROC_EXIT], funcs: [{ body: [...op.i32Const(7), ...op.call(0)], export: '' }] }),
  );
  assert.deepEqual(await dflt.run.result, { kind: 'exit', code: 7 });
});

test('a worker started ahead with startWasiWorker() runs the module it is later given', async () => {
  const standby = startWasiWorker(workerUrl);
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(standby.usable());
  const c = await start(example('hello'), { args: ['hello', 'Standby'], standby });
  assert.deepEqual(await c.run.result, { kind: 'exit', code: 0 });
  assert.equal(c.stdout(), 'Hello, Standby!\n');
});

test('startWasi() starts a fresh worker when the standby one has ended', async () => {
  const standby = startWasiWorker(workerUrl);
  await standby.worker.terminate();
  assert.equal(standby.usable(), false);
  const c = await start(example('hello'), { standby });
  assert.deepEqual(await c.run.result, { kind: 'exit', code: 0 });
  assert.equal(c.stdout(), 'Hello, world!\n');
});

test('hello greets its first argument and exits with EXIT_CODE', async () => {
  const c = await start(example('hello'), { args: ['hello', 'Ada', 'ignored'], env: { EXIT_CODE: '7' } });
  assert.deepEqual(await c.run.result, { kind: 'exit', code: 7 });
  assert.equal(c.stdout(), 'Hello, Ada!\n');
});

test('hello reports a malformed EXIT_CODE on stderr and exits 2', async () => {
  const c = await start(example('hello'), { args: ['hello'], env: { EXIT_CODE: 'seven' } });
  assert.deepEqual(await c.run.result, { kind: 'exit', code: 2 });
  assert.match(c.stderr(), /EXIT_CODE is not an integer/);
});

test('echoenv sees exactly the arguments and environment it was given', async () => {
  const c = await start(example('echoenv'), { args: ['echoenv', 'a b', 'ü'], env: { Z: '1', A: 'x=y' } });
  assert.deepEqual(await c.run.result, { kind: 'exit', code: 0 });
  assert.equal(c.stdout(), 'arg 0: echoenv\narg 1: a b\narg 2: ü\nA=x=y\nZ=1\n');
});

test('wc counts stdin fed in several chunks over time', async () => {
  const c = await start(example('wc'), { args: ['wc'], stdin: 'pipe' });
  for (const part of ['one t', 'wo\nth', 'ree\n']) {
    c.run.writeStdin(Buffer.from(part));
    await delay(20);
  }
  c.run.endStdin();
  assert.deepEqual(await c.run.result, { kind: 'exit', code: 0 });
  assert.equal(c.stdout(), '2 3 14\n');
});

test('wc streams input much larger than the stdin ring', async () => {
  const c = await start(example('wc'), { args: ['wc'], stdin: 'pipe' });
  const line = Buffer.from('the quick brown fox jumps\n');
  const chunk = Buffer.concat(Array.from({ length: 4000 }, () => line));
  const rounds = 40;
  for (let i = 0; i < rounds; i++) c.run.writeStdin(chunk);
  c.run.endStdin();
  assert.deepEqual(await c.run.result, { kind: 'exit', code: 0 });
  const lines = 4000 * rounds;
  assert.equal(c.stdout(), `${lines} ${lines * 5} ${lines * line.length}\n`);
});

test("wc with a 'null' stdin reads end of input at once", async () => {
  const c = await start(example('wc'), { args: ['wc'] });
  assert.deepEqual(await c.run.result, { kind: 'exit', code: 0 });
  assert.equal(c.stdout(), '0 0 0\n');
});

test('trap ends with a trap result after its output and panic message', async () => {
  const c = await start(example('trap'), { args: ['trap'] });
  assert.deepEqual(await c.run.result, { kind: 'trap', message: 'unreachable' });
  assert.equal(c.stdout(), 'about to trap\n');
  assert.match(c.stderr(), /panicked at 'index out of bounds/);
});

test('spin is stopped by the wall-time limit, and its output still arrives', async () => {
  const t0 = performance.now();
  // Long enough for a loaded machine to start the worker and reach the first print.
  const c = await start(example('spin'), { args: ['spin'], limits: { wallTimeMs: 1500 } });
  const result = await c.run.result;
  assert.deepEqual(result, {
    kind: 'limit',
    limit: 'time',
    message: 'Wall time exceeded the limit of 1500 ms',
  });
  assert.equal(c.stdout(), 'spinning\n');
  const elapsed = performance.now() - t0;
  assert.ok(elapsed >= 1500 && elapsed < 6000, `stopped after ${elapsed} ms`);
});

test('memhog is stopped by the memory limit', async () => {
  const c = await start(example('memhog'), { args: ['memhog'], limits: { memoryBytes: 16 << 20 } });
  const result = await c.run.result;
  assert.equal(result.kind, 'limit');
  assert.equal(result.kind === 'limit' && result.limit, 'memory');
  assert.match(c.stderr(), /memory allocation of \d+ bytes failed/);
});

test('a precompiled module is held to the memory limit at its next host call', async () => {
  const module = await wasm.compile(example('memhog'));
  const c = await start(module, { args: ['memhog'], limits: { memoryBytes: 16 << 20 } });
  const result = await c.run.result;
  assert.equal(result.kind === 'limit' && result.limit, 'memory');
});

test('a precompiled module runs like its bytes', async () => {
  const c = await start(await wasm.compile(example('hello')), { args: ['hello', 'Bo'] });
  assert.deepEqual(await c.run.result, { kind: 'exit', code: 0 });
  assert.equal(c.stdout(), 'Hello, Bo!\n');
});

test('memory.grow past the limit returns -1 inside the module', async () => {
  const grower = (pages: number): Uint8Array =>
    buildModule({
      imports: [PROC_EXIT],
      funcs: [
        startFunc([
          ...op.i32Const(pages),
          ...op.memoryGrow,
          ...op.i32Const(100),
          ...op.i32Add,
          ...op.call(0),
        ]),
      ],
      memory: { min: 1 },
    });
  const refused = await start(grower(2), { limits: { memoryBytes: 2 * 65536 } });
  assert.deepEqual(await refused.run.result, { kind: 'exit', code: 99 });
  const allowed = await start(grower(1), { limits: { memoryBytes: 2 * 65536 + 100 } });
  assert.deepEqual(await allowed.run.result, { kind: 'exit', code: 101 });
});

test('the output limit delivers exactly the allowed bytes, then stops the run', async () => {
  const c = await start(example('echoenv'), { args: ['echoenv', 'x'], limits: { outputBytes: 10 } });
  assert.deepEqual(await c.run.result, {
    kind: 'limit',
    limit: 'output',
    message: 'Output exceeded the limit of 10 bytes',
  });
  assert.equal(c.stdout(), 'arg 0: ech');
});

test('kill() stops a spinning module', async () => {
  const c = await start(example('spin'), { args: ['spin'] });
  while (c.stdout() === '') await delay(5);
  c.run.kill();
  assert.deepEqual(await c.run.result, { kind: 'killed' });
  assert.equal(c.stdout(), 'spinning\n');
});

test('kill() stops a module blocked reading stdin', async () => {
  const c = await start(example('wc'), { args: ['wc'], stdin: 'pipe' });
  await delay(50);
  c.run.kill();
  assert.deepEqual(await c.run.result, { kind: 'killed' });
  c.run.writeStdin(Buffer.from('late'));
  c.run.kill();
});

test('kill() after the module exited leaves the result alone', async () => {
  const c = await start(example('hello'));
  const result = await c.run.result;
  c.run.kill();
  assert.deepEqual(result, { kind: 'exit', code: 0 });
});

test('stdout and stderr chunks arrive in the order they were written', async () => {
  const module = buildModule({
    imports: [FD_WRITE],
    funcs: [
      startFunc(
        [
          [1, 0],
          [2, 8],
          [1, 16],
        ].flatMap(([fd, iov]) => [
          ...op.i32Const(fd!),
          ...op.i32Const(iov!),
          ...op.i32Const(1),
          ...op.i32Const(200),
          ...op.call(0),
          ...op.drop,
        ]),
      ),
    ],
    memory: { min: 1 },
    data: [
      { offset: 0, bytes: [...le32(100, 1, 101, 1, 102, 1)] },
      { offset: 100, bytes: [0x61, 0x62, 0x63] },
    ],
  });
  const c = await start(module);
  assert.deepEqual(await c.run.result, { kind: 'exit', code: 0 });
  assert.deepEqual(
    c.chunks.map(([fd, b]) => `${fd}:${b.toString()}`),
    ['1:a', '2:b', '1:c'],
  );
});

test('a stdout-heavy module gets every byte through, in order', async () => {
  const rounds = 512;
  const payload = Array.from({ length: 65536 }, (_, i) => i % 251);
  const module = buildModule({
    imports: [FD_WRITE],
    funcs: [
      startFunc(
        op.loop([
          ...[
            ...op.i32Const(1),
            ...op.i32Const(0),
            ...op.i32Const(1),
            ...op.i32Const(16),
            ...op.call(0),
            ...op.drop,
          ],
          ...[...op.localGet(0), ...op.i32Const(1), ...op.i32Add, ...op.localSet(0)],
          ...[...op.localGet(0), ...op.i32Const(rounds), 0x49 /* i32.lt_u */, 0x0d, 0x00 /* br_if 0 */],
        ]),
        ['i32'],
      ),
    ],
    memory: { min: 2 },
    data: [
      { offset: 0, bytes: le32(65536, 65536) },
      { offset: 65536, bytes: payload },
    ],
  });
  let total = 0;
  let bad = 0;
  const t0 = performance.now();
  const run = await startWasi({
    module,
    args: ['heavy'],
    env: {},
    stdin: 'null',
    workerUrl,
    onStdout: (chunk) => {
      for (let i = 0; i < chunk.length; i += 4099) if (chunk[i] !== ((total + i) % 65536) % 251) bad++;
      total += chunk.length;
    },
    onStderr: () => {},
  });
  assert.deepEqual(await run.result, { kind: 'exit', code: 0 });
  assert.equal(total, rounds * 65536);
  assert.equal(bad, 0);
  assert.ok(performance.now() - t0 < 10_000, 'a 32 MiB stream should take well under ten seconds');
});

test('poll_oneoff() with a clock subscription sleeps in the worker', async () => {
  const sub = [...le32(0, 0, 0, 0, 1, 0), ...le32(50_000_000, 0), ...le32(0, 0, 0, 0)];
  const module = buildModule({
    imports: [wasiImport('poll_oneoff', 'iiii:i'), PROC_EXIT],
    funcs: [
      startFunc([
        ...[...op.i32Const(0), ...op.i32Const(100), ...op.i32Const(1), ...op.i32Const(200), ...op.call(0)],
        ...[...op.i32Const(0), ...op.i32Load(200), ...op.i32Add, ...op.call(1)],
      ]),
    ],
    memory: { min: 1 },
    data: [{ offset: 0, bytes: sub }],
  });
  const t0 = performance.now();
  const c = await start(module);
  // errno (0) + nevents (1): exit code 1 means success with one event.
  assert.deepEqual(await c.run.result, { kind: 'exit', code: 1 });
  assert.ok(performance.now() - t0 >= 50);
});

test('a trap in the start function is the run’s result', async () => {
  const module = buildModule({ funcs: [startFunc([]), { body: op.unreachable }], start: 1 });
  const c = await start(module);
  assert.deepEqual(await c.run.result, { kind: 'trap', message: 'unreachable' });
});

test('proc_exit() in the start function ends the run with its code', async () => {
  const module = buildModule({
    imports: [PROC_EXIT],
    funcs: [startFunc([]), { body: [...op.i32Const(5), ...op.call(0)] }],
    start: 2,
  });
  const c = await start(module);
  assert.deepEqual(await c.run.result, { kind: 'exit', code: 5 });
});

test('unbounded recursion is reported as a trap', async () => {
  const module = buildModule({ funcs: [startFunc(op.call(1)), { body: op.call(1) }] });
  const c = await start(module);
  const result = await c.run.result;
  assert.equal(result.kind, 'trap');
  assert.match((result as { message: string }).message, /call stack/i);
});

async function refuses(module: Uint8Array | object, code: string, options: Partial<WasiOptions> = {}) {
  await assert.rejects(
    startWasi({
      module,
      args: [],
      env: {},
      stdin: 'null',
      onStdout() {},
      onStderr() {},
      workerUrl,
      ...options,
    }),
    (e: unknown) => isWasiError(e) && e.code === code,
  );
}

test('startWasi() refuses bad modules with the matching WasiError', async () => {
  await refuses(Uint8Array.of(1, 2, 3), 'ERR_WASM_INVALID');
  await refuses(buildModule({ funcs: [{ body: [], export: 'main' }] }), 'ERR_WASM_NOT_COMMAND');
  await refuses(
    buildModule({ imports: [{ module: 'env', name: 'f', params: [], results: [] }], funcs: [startFunc([])] }),
    'ERR_WASM_IMPORT_UNSUPPORTED',
  );
  await refuses(buildModule({ funcs: [startFunc([])], memory: { min: 5 } }), 'ERR_WASM_MEMORY_LIMIT', {
    limits: { memoryBytes: 4 * 65536 },
  });
  const env = buildModule({
    imports: [{ module: 'env', name: 'f', params: [], results: [] }],
    funcs: [startFunc([])],
  });
  await refuses(new wasm.Module(env), 'ERR_WASM_IMPORT_UNSUPPORTED');
  await refuses(
    new wasm.Module(buildModule({ funcs: [{ body: [], export: 'main' }] })),
    'ERR_WASM_NOT_COMMAND',
  );
});

test('startWasi() refuses a well-framed module the engine cannot compile, with the cause', async () => {
  const module = buildModule({ funcs: [startFunc(op.i32Add)] });
  await assert.rejects(
    startWasi({ module, args: [], env: {}, stdin: 'null', onStdout() {}, onStderr() {}, workerUrl }),
    (e: unknown) => isWasiError(e, 'ERR_WASM_INVALID') && e.cause instanceof wasm.CompileError,
  );
});

/** `module` with a custom section of `bytes` zeros appended: the same code, in a file of any size. */
function padded(module: Uint8Array, bytes: number): Uint8Array {
  const name = [3, 0x70, 0x61, 0x64]; // "pad"
  const header = Uint8Array.from([0x00, ...uleb(name.length + bytes), ...name]);
  const out = new Uint8Array(module.length + header.length + bytes);
  out.set(module);
  out.set(header, module.length);
  return out;
}

test('a module too large to compile on the calling thread runs, or is refused, as a small one is', async () => {
  // Small modules are compiled synchronously, large ones asynchronously: both paths give the same answers.
  const exits = buildModule({ imports: [PROC_EXIT], funcs: [startFunc([...op.i32Const(3), ...op.call(0)])] });
  const large = await start(padded(exits, 5 << 20));
  assert.deepEqual(await large.run.result, { kind: 'exit', code: 3 });
  await assert.rejects(
    startWasi({
      module: padded(buildModule({ funcs: [startFunc(op.i32Add)] }), 5 << 20),
      args: [],
      env: {},
      stdin: 'null',
      onStdout() {},
      onStderr() {},
      workerUrl,
    }),
    (e: unknown) => isWasiError(e, 'ERR_WASM_INVALID') && e.cause instanceof wasm.CompileError,
  );
});

test('warmWasiHost() takes its own module through the checks and compilation; runs after it are unchanged', async () => {
  await warmWasiHost();
  const c = await start(example('hello'), { args: ['hello', 'again'] });
  assert.deepEqual(await c.run.result, { kind: 'exit', code: 0 });
  assert.equal(c.stdout(), 'Hello, again!\n');
});

test('startWasi() rejects bad options with TypeError or RangeError', async () => {
  const good: WasiOptions = {
    module: example('hello'),
    args: [],
    env: {},
    stdin: 'null',
    onStdout() {},
    onStderr() {},
    workerUrl,
  };
  const bad = (patch: Record<string, unknown>): WasiOptions => ({ ...good, ...patch }) as WasiOptions;
  await assert.rejects(startWasi(bad({ module: 'x' })), TypeError);
  await assert.rejects(startWasi(bad({ args: ['a\0b'] })), TypeError);
  await assert.rejects(startWasi(bad({ env: { 'A=B': 'x' } })), TypeError);
  await assert.rejects(startWasi(bad({ env: { A: 1 } })), TypeError);
  await assert.rejects(startWasi(bad({ stdin: 'inherit' })), TypeError);
  await assert.rejects(startWasi(bad({ onStdout: undefined })), TypeError);
  await assert.rejects(startWasi(bad({ workerUrl: 'file:///x.js' })), TypeError);
  await assert.rejects(startWasi(bad({ limits: { memoryBytes: -1 } })), RangeError);
  await assert.rejects(startWasi(bad({ limits: { memoryBytes: 2 ** 32 + 1 } })), RangeError);
  await assert.rejects(startWasi(bad({ limits: { wallTimeMs: 0 } })), RangeError);
  await assert.rejects(startWasi(bad({ limits: { outputBytes: 1.5 } })), RangeError);
  await assert.rejects(startWasi(bad({ limits: { maxFds: 2 } })), RangeError);
});

test('writeStdin() throws ERR_WASI_STDIN_CLOSED after endStdin() or on a null stdin', async () => {
  const piped = await start(example('wc'), { args: ['wc'], stdin: 'pipe' });
  piped.run.writeStdin(Buffer.from('a b\n'));
  piped.run.endStdin();
  piped.run.endStdin();
  assert.throws(
    () => piped.run.writeStdin(Buffer.from('more')),
    (e: unknown) => isWasiError(e, 'ERR_WASI_STDIN_CLOSED'),
  );
  assert.throws(() => piped.run.writeStdin('text' as unknown as Uint8Array), TypeError);
  assert.deepEqual(await piped.run.result, { kind: 'exit', code: 0 });
  assert.equal(piped.stdout(), '1 2 4\n');
  const closed = await start(example('hello'));
  assert.throws(
    () => closed.run.writeStdin(Buffer.from('x')),
    (e: unknown) => isWasiError(e, 'ERR_WASI_STDIN_CLOSED'),
  );
  await closed.run.result;
});

test('writeStdin() copies the chunk, so the caller may reuse its buffer while it waits in the queue', async () => {
  const c = await start(example('wc'), { args: ['wc'], stdin: 'pipe' });
  // Larger than the stdin ring, so most of it waits in the queue after writeStdin returns.
  const buf = Buffer.from('x y\n'.repeat(100_000));
  c.run.writeStdin(buf);
  buf.fill(0x41);
  c.run.endStdin();
  await c.run.result;
  assert.equal(c.stdout(), '100000 200000 400000\n');
});

test('a throwing output callback rejects the result with ERR_WASI_CALLBACK_FAILED', async () => {
  const boom = new Error('boom');
  const run = await startWasi({
    module: example('hello'),
    args: ['hello'],
    env: {},
    stdin: 'null',
    workerUrl,
    onStdout: () => {
      throw boom;
    },
    onStderr() {},
  });
  await assert.rejects(
    run.result,
    (e: unknown) => isWasiError(e, 'ERR_WASI_CALLBACK_FAILED') && e.cause === boom,
  );
});

test('startWasi() rejects with ERR_WASI_WORKER_FAILED when the worker script is missing or wrong', async () => {
  await refuses(example('hello'), 'ERR_WASI_WORKER_FAILED', {
    workerUrl: new URL('./no-such-worker.mjs', import.meta.url),
  });
  await refuses(example('hello'), 'ERR_WASI_WORKER_FAILED', {
    workerUrl: new URL('data:text/javascript,export {}'),
  });
});

test('startWasi() runs from one bundled file that is also its own worker, as the Keep does', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'donjon-wasi-'));
  try {
    const outfile = join(dir, 'program.mjs');
    await build({
      entryPoints: [fileURLToPath(new URL('./fixtures/bundle-entry.ts', import.meta.url))],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile,
      logLevel: 'silent',
    });
    const hello = fileURLToPath(new URL('../../examples/hello/hello.wasm', import.meta.url));
    // Plain node, no TypeScript loader: exactly what runs inside a Keep.
    const { stdout } = await execFileAsync(process.execPath, [outfile, hello, 'hello', 'bundle'], {
      timeout: 15_000,
    });
    assert.equal(stdout, 'Hello, bundle!\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('cat reads the files of a pre-opened directory', async () => {
  const preopens = {
    '/': { 'hello.txt': Buffer.from('hello, file\n'), data: { 'n.txt': Buffer.from('42\n') } },
  };
  const c = await start(example('cat'), { args: ['cat', '/hello.txt', '/data/n.txt'], preopens });
  assert.deepEqual(await c.run.result, { kind: 'exit', code: 0 });
  assert.equal(c.stdout(), 'hello, file\n42\n');
  const missing = await start(example('cat'), { args: ['cat', '/nope'], preopens });
  assert.deepEqual(await missing.run.result, { kind: 'exit', code: 1 });
  assert.match(missing.stderr(), /cat: \/nope: No such file or directory/);
  const none = await start(example('cat'), { args: ['cat', '/hello.txt'] });
  assert.deepEqual(await none.run.result, { kind: 'exit', code: 1 }, 'no preopens: no files');
});

test('opening more descriptors than limits.maxFds ends the run with limit fds', async () => {
  const preopens = { '/': { 'a.txt': Buffer.from('a') } };
  const c = await start(example('cat'), { args: ['cat', '/a.txt'], preopens, limits: { maxFds: 4 } });
  assert.deepEqual(await c.run.result, {
    kind: 'limit',
    limit: 'fds',
    message: 'Open descriptors exceeded the limit of 4',
  });
  const ok = await start(example('cat'), { args: ['cat', '/a.txt'], preopens, limits: { maxFds: 5 } });
  assert.deepEqual(await ok.run.result, { kind: 'exit', code: 0 });
});

test('startWasi() checks preopens before starting anything', async () => {
  const base = {
    module: example('cat'),
    args: [],
    env: {},
    stdin: 'null' as const,
    onStdout() {},
    onStderr() {},
    workerUrl,
  };
  await assert.rejects(startWasi({ ...base, preopens: { '/': { 'a/b': Buffer.from('') } } }), TypeError);
  await assert.rejects(startWasi({ ...base, preopens: { '': {} } }), TypeError);
  await assert.rejects(startWasi({ ...base, preopens: { '/': 'dir' as never } }), TypeError);
  await assert.rejects(
    startWasi({
      ...base,
      preopens: { '/': { big: new Uint8Array(70_000) } },
      limits: { memoryBytes: 65536 },
    }),
    RangeError,
  );
  await assert.rejects(
    startWasi({ ...base, preopens: { '/': {}, '/tmp': {} }, limits: { maxFds: 4 } }),
    RangeError,
  );
});
