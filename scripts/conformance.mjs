// Runs the WebAssembly/wasi-testsuite (branch prod/testsuite-base: prebuilt tests with their expected
// results) against Donjon, each test through `donjon run` as a user would run it, and prints one line per
// test and a summary per suite. Usage:
//
//   node scripts/conformance.mjs [--direct] [--backend sim|nil] [--filter REGEX] [--timeout SECONDS] PATH
//
// PATH is the suite's checkout, its tests/ folder or one suite folder (one holding manifest.json). A test
// is `<name>.wasm` with an optional `<name>.json` beside it: either the legacy form (args, env, root or
// dirs, exit_code, stdout, stderr) or the operation form (run, read, write, wait, connect, send, recv,
// kill), judged as the suite's own Python runner judges it. Suites for other WASI versions (preview 3
// components) are listed as skipped: Donjon runs preview1 modules only.
//
// --direct runs each test in this process through startWasi() (the WASI host alone, no Keep, no
// attestation, no channel): a yardstick for the host, not a measure of `donjon run`.
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isMainThread } from 'node:worker_threads';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

// In --direct mode this file is also the WASI worker's script: Node 20 does not hand the `tsx` loader on
// to worker threads, so the worker registers it before loading the TypeScript host.

/** Exit statuses `donjon run` gives to the ends that are not the workload's own exit code. */
const EXIT_TRAP = 134;
const EXIT_TIME = 124;
const EXIT_LIMIT = 137;

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      direct: { type: 'boolean', default: false },
      backend: { type: 'string', default: 'sim' },
      filter: { type: 'string' },
      timeout: { type: 'string', default: '30' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || positionals.length !== 1) {
    process.stdout.write(
      'Usage: node scripts/conformance.mjs [--direct] [--backend sim|nil] [--filter REGEX] [--timeout SECONDS] PATH\n',
    );
    process.exit(values.help ? 0 : 2);
  }
  if (values.backend !== 'sim' && values.backend !== 'nil') fail(`unknown backend ${values.backend}`);
  const timeoutMs = Number(values.timeout) * 1000;
  if (!(timeoutMs > 0)) fail(`--timeout ${values.timeout} is not a positive number of seconds`);
  const filter = values.filter === undefined ? undefined : new RegExp(values.filter);
  const root = resolve(positionals[0]);
  if (!existsSync(root)) fail(`${root} does not exist`);
  const suites = findSuites(root);
  if (suites.length === 0) fail(`no test suite (a folder with manifest.json or .wasm tests) under ${root}`);

  const runner = values.direct ? await directRunner() : cliRunner(values.backend);
  process.stdout.write(`# ${runner.label}\n`);
  let passed = 0;
  let failed = 0;
  const summaries = [];
  for (const suite of suites) {
    const manifest = readManifest(suite);
    if (manifest.version !== 'wasm32-wasip1') {
      process.stdout.write(
        `SKIP  ${manifest.name}: ${manifest.version} tests are not WASI preview1 modules\n`,
      );
      summaries.push(`${manifest.name}: skipped (${manifest.version})`);
      continue;
    }
    let p = 0;
    let f = 0;
    const tests = readdirSync(suite)
      .filter((n) => n.endsWith('.wasm'))
      .sort();
    for (const file of tests) {
      const name = file.slice(0, -'.wasm'.length);
      if (filter !== undefined && !filter.test(name)) continue;
      const started = performance.now();
      let failures;
      try {
        const config = readConfig(join(suite, `${name}.json`));
        failures = await runTest(runner, join(suite, file), config, timeoutMs);
      } catch (error) {
        failures = [`cannot run the test: ${error instanceof Error ? error.message : String(error)}`];
      }
      const ms = Math.round(performance.now() - started);
      if (failures.length === 0) {
        p++;
        process.stdout.write(`PASS  ${name} (${ms} ms)\n`);
      } else {
        f++;
        process.stdout.write(`FAIL  ${name} (${ms} ms)\n${failures.map((m) => indent(m)).join('\n')}\n`);
      }
    }
    passed += p;
    failed += f;
    const line = `${manifest.name}: ${p} passed, ${f} failed`;
    summaries.push(line);
    process.stdout.write(`${line}\n\n`);
  }
  process.stdout.write(`${summaries.join('\n')}\n`);
  process.stdout.write(`conformance: ${passed} passed, ${failed} failed\n`);
  process.exitCode = failed > 0 ? 1 : 0;
}

function fail(message) {
  process.stderr.write(`conformance: ${message}\n`);
  process.exit(2);
}

function indent(text) {
  const lines = text.split('\n');
  const shown = lines.length > 24 ? [...lines.slice(0, 24), `... (${lines.length - 24} more lines)`] : lines;
  return shown.map((l) => `      ${l}`).join('\n');
}

/** Suite folders under `root`: those holding .wasm tests and a manifest.json (or `root` itself with tests). */
function findSuites(root) {
  const found = [];
  const walk = (dir, depth) => {
    const names = readdirSync(dir);
    const hasTests = names.some((n) => n.endsWith('.wasm'));
    if (hasTests && (names.includes('manifest.json') || depth === 0)) {
      found.push(dir);
      return;
    }
    if (depth >= 6) return;
    for (const n of names.sort()) {
      if (n.startsWith('.') || n === 'node_modules' || n.endsWith('.dir')) continue;
      const p = join(dir, n);
      if (lstatSync(p).isDirectory()) walk(p, depth + 1);
    }
  };
  walk(root, 0);
  return found;
}

function readManifest(dir) {
  const path = join(dir, 'manifest.json');
  const fallback = { name: dir, version: 'wasm32-wasip1' };
  if (!existsSync(path)) return fallback;
  const m = JSON.parse(readFileSync(path, 'utf8'));
  return { name: typeof m.name === 'string' ? m.name : dir, version: m.version ?? fallback.version };
}

const LEGACY_KEYS = new Set(['args', 'env', 'root', 'dirs', 'exit_code', 'stdout', 'stderr']);
const OPERATION_KEYS = new Set(['operations', 'proposals', 'world', 'servers', 'debug']);

/**
 * A test's configuration as a list of operations, the way the suite's runner reads it: the legacy form
 * is run, read stdout, read stderr, wait.
 */
function readConfig(path) {
  const base = dirname(path);
  if (!existsSync(path))
    return { operations: [{ type: 'run', args: [], env: {}, dirs: [] }, { type: 'wait' }] };
  const c = JSON.parse(readFileSync(path, 'utf8'));
  const keys = Object.keys(c);
  const run = (o) => ({
    type: 'run',
    args: o.args ?? [],
    env: o.env ?? {},
    dirs: [
      // `root` is pre-opened as the guest's "/", as the suite's adapters do (wasmtime --dir ROOT::/).
      ...(o.root ? [{ host: join(base, o.root), guest: '/' }] : []),
      // Older configurations list `dirs`, each pre-opened under its own name.
      ...(o.dirs ?? []).map((d) => ({ host: join(base, d), guest: d })),
    ],
  });
  if (keys.some((k) => OPERATION_KEYS.has(k))) {
    if (keys.some((k) => LEGACY_KEYS.has(k))) throw new Error(`${path} mixes both configuration styles`);
    if ((c.proposals ?? []).length > 0 || c.world !== undefined || c.servers !== undefined) {
      throw new Error(`needs ${[...(c.proposals ?? []), c.world ?? ''].join(' ')}, which preview1 lacks`);
    }
    return { operations: (c.operations ?? []).map((o) => (o.type === 'run' ? run(o) : o)) };
  }
  for (const k of keys) if (!LEGACY_KEYS.has(k)) throw new Error(`${path} has the unknown key ${k}`);
  const operations = [run(c)];
  if (c.stdout !== undefined) operations.push({ type: 'read', id: 'stdout', payload: c.stdout });
  if (c.stderr !== undefined) operations.push({ type: 'read', id: 'stderr', payload: c.stderr });
  operations.push({ type: 'wait', exit_code: c.exit_code ?? 0 });
  return { operations };
}

/** Removes `*.cleanup` leftovers, as the suite's runner does before and after a test that has a root. */
function cleanup(dir) {
  if (!existsSync(dir)) return;
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    const s = lstatSync(p);
    if (n.endsWith('.cleanup') && !s.isSymbolicLink()) rmSync(p, { recursive: true, force: true });
    else if (s.isDirectory()) cleanup(p);
  }
}

/**
 * A running test program as the operations see it: its output so far, its stdin, how it ended.
 * @typedef {{ out: { stdout: Buffer[]; stderr: Buffer[] }; changed: () => Promise<void>; done: Promise<number>;
 *   ended: boolean; write(s: string): void; end(): void; kill(signal: string): void }} Proc
 */

async function runTest(runner, wasmPath, config, timeoutMs) {
  const failures = [];
  /** @type {Proc | undefined} */
  let proc;
  const sockets = new Map();
  const dirs = [];
  const deadline = Date.now() + timeoutMs;
  const within = (promise, what) =>
    Promise.race([
      promise,
      new Promise((_, reject) => {
        const t = setTimeout(
          () => reject(new Error(`timed out after ${timeoutMs} ms ${what}`)),
          deadline - Date.now(),
        );
        t.unref();
      }),
    ]);
  const read = { stdout: 0, stderr: 0 };
  try {
    for (const op of config.operations) {
      if (failures.length > 0) break;
      switch (op.type) {
        case 'run':
          for (const d of op.dirs) {
            cleanup(d.host);
            dirs.push(d.host);
          }
          proc = runner.start(wasmPath, op);
          read.stdout = 0;
          read.stderr = 0;
          break;
        case 'read': {
          const id = op.id ?? 'stdout';
          const want = Buffer.from(op.payload ?? '');
          // Like the suite's runner: read as many bytes as expected (or up to the end) and compare them.
          const got = await within(readBytes(proc, id, read[id], want.length), `reading ${id}`);
          read[id] += got.length;
          if (!got.equals(want)) {
            failures.push(
              `${id}: expected ${JSON.stringify(want.toString())}, got ${JSON.stringify(got.toString())}`,
            );
          }
          break;
        }
        case 'write':
          proc.write(op.payload ?? '');
          break;
        case 'wait': {
          proc.end();
          const code = await within(proc.done, 'waiting for the exit');
          const want = op.exit_code ?? 0;
          if (code !== want) {
            failures.push(`exit status: expected ${want}, got ${code}${describeOutput(proc)}`);
          }
          proc = undefined;
          break;
        }
        case 'kill':
          proc.kill(op.signal ?? 'SIGTERM');
          break;
        case 'connect': {
          const line = await within(readLine(proc, read), 'waiting for the address to connect to');
          const m = /^(.+):(\d+)$/.exec(line.trim());
          if (m === null) {
            failures.push(`connect: expected HOST:PORT on stdout, got ${JSON.stringify(line)}`);
            break;
          }
          const socket = await within(openSocket(m[1], Number(m[2])), `connecting to ${line.trim()}`);
          sockets.set(op.id ?? 'server', socket);
          break;
        }
        case 'send':
          sockets.get(op.id).socket.write(op.payload ?? '');
          break;
        case 'recv': {
          const want = Buffer.from(op.payload ?? '');
          const s = sockets.get(op.id);
          const got = await within(readSocket(s, want.length), `receiving on ${op.id}`);
          if (!got.equals(want)) {
            failures.push(
              `recv ${op.id}: expected ${JSON.stringify(want.toString())}, got ${JSON.stringify(got.toString())}`,
            );
          }
          break;
        }
        default:
          failures.push(`the operation ${op.type} is not supported by this runner`);
      }
    }
  } catch (error) {
    failures.push(error instanceof Error ? error.message : String(error));
  } finally {
    for (const s of sockets.values()) s.socket.destroy();
    if (proc !== undefined) {
      failures.push(`the program was still running at the end of the test${describeOutput(proc)}`);
      proc.kill('SIGKILL');
      await proc.done.catch(() => {});
    }
    for (const d of dirs) cleanup(d);
  }
  return failures;
}

function describeOutput(proc) {
  const text = (chunks) => Buffer.concat(chunks).toString().trimEnd();
  const out = text(proc.out.stdout);
  const err = text(proc.out.stderr);
  return `${out ? `\n== stdout ==\n${out}` : ''}${err ? `\n== stderr ==\n${err}` : ''}`;
}

async function readBytes(proc, id, from, n) {
  for (;;) {
    const all = Buffer.concat(proc.out[id]);
    if (all.length >= from + n || proc.ended) return all.subarray(from, Math.min(all.length, from + n));
    await proc.changed();
  }
}

async function readLine(proc, read) {
  for (;;) {
    const all = Buffer.concat(proc.out.stdout);
    const nl = all.indexOf(10, read.stdout);
    if (nl >= 0) {
      const line = all.subarray(read.stdout, nl).toString();
      read.stdout = nl + 1;
      return line;
    }
    if (proc.ended) return all.subarray(read.stdout).toString();
    await proc.changed();
  }
}

function openSocket(host, port) {
  return new Promise((resolvePromise, reject) => {
    const socket = connect({ host, port });
    const entry = { socket, chunks: [], ended: false, waiters: [] };
    const wake = () => {
      for (const w of entry.waiters.splice(0)) w();
    };
    socket.on('data', (c) => {
      entry.chunks.push(c);
      wake();
    });
    socket.on('end', () => {
      entry.ended = true;
      wake();
    });
    socket.once('connect', () => resolvePromise(entry));
    socket.once('error', reject);
  });
}

async function readSocket(entry, n) {
  for (;;) {
    const all = Buffer.concat(entry.chunks);
    if (all.length >= n || entry.ended) {
      entry.chunks = [all.subarray(n)];
      return all.subarray(0, n);
    }
    await new Promise((r) => entry.waiters.push(r));
  }
}

/** Shared plumbing of a Proc: output chunks and a way to wait for more. */
function makeProc() {
  let waiters = [];
  const proc = {
    out: { stdout: [], stderr: [] },
    ended: false,
    changed: () => new Promise((r) => waiters.push(r)),
    wake() {
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    },
  };
  return proc;
}

/** Runs each test as `donjon run [--backend B] [--env K=V]... [--dir HOST:GUEST]... TEST.wasm -- ARGS`. */
function cliRunner(backend) {
  const cli = join(repoRoot, 'bin', 'donjon.js');
  return {
    label: `through donjon run --backend ${backend}${backend === 'nil' ? ' --insecure' : ''} (${cli})`,
    start(wasmPath, op) {
      const argv = [cli, 'run', '-q', '--backend', backend];
      if (backend === 'nil') argv.push('--insecure');
      for (const [k, v] of Object.entries(op.env)) argv.push('--env', `${k}=${v}`);
      for (const d of op.dirs) argv.push('--dir', `${d.host}:${d.guest}`);
      argv.push(wasmPath, '--', ...op.args);
      const child = spawn(process.execPath, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
      const proc = makeProc();
      child.stdout.on('data', (c) => {
        proc.out.stdout.push(c);
        proc.wake();
      });
      child.stderr.on('data', (c) => {
        proc.out.stderr.push(c);
        proc.wake();
      });
      child.stdin.on('error', () => {});
      proc.done = new Promise((resolvePromise) => {
        child.on('close', (code, signal) => {
          proc.ended = true;
          proc.wake();
          resolvePromise(code ?? (signal ? 128 + signalNumber(signal) : 1));
        });
        child.on('error', (error) => {
          proc.out.stderr.push(Buffer.from(String(error)));
          proc.ended = true;
          proc.wake();
          resolvePromise(-1);
        });
      });
      proc.write = (s) => child.stdin.write(s);
      proc.end = () => child.stdin.end();
      proc.kill = (signal) => child.kill(signal);
      return proc;
    },
  };
}

function signalNumber(signal) {
  return { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }[signal] ?? 0;
}

/** Runs each test in this process through startWasi(): the WASI host alone, without a Keep. */
async function directRunner() {
  const { register } = await import('tsx/esm/api');
  register();
  const { startWasi } = await import('../src/wasi/index.ts');
  return {
    label:
      'DIRECT: startWasi() in this process, not through donjon run (no Keep, no attestation, no channel)',
    start(wasmPath, op) {
      const proc = makeProc();
      const preopens = {};
      for (const d of op.dirs) preopens[d.guest] = readTree(d.host);
      let run;
      let pending = '';
      let ended = false;
      proc.write = (s) => {
        if (run) run.writeStdin(Buffer.from(s));
        else pending += s;
      };
      proc.end = () => {
        ended = true;
        run?.endStdin();
      };
      proc.kill = () => run?.kill();
      proc.done = (async () => {
        try {
          run = await startWasi({
            module: new Uint8Array(readFileSync(wasmPath)),
            args: [basename(wasmPath), ...op.args],
            env: op.env,
            stdin: 'pipe',
            preopens,
            onStdout: (c) => {
              proc.out.stdout.push(Buffer.from(c));
              proc.wake();
            },
            onStderr: (c) => {
              proc.out.stderr.push(Buffer.from(c));
              proc.wake();
            },
            workerUrl: new URL(import.meta.url),
          });
          if (pending) run.writeStdin(Buffer.from(pending));
          if (ended) run.endStdin();
          const r = await run.result;
          switch (r.kind) {
            case 'exit':
              return r.code;
            case 'trap':
              proc.out.stderr.push(Buffer.from(`trap: ${r.message}\n`));
              return EXIT_TRAP;
            case 'limit':
              proc.out.stderr.push(Buffer.from(`limit: ${r.message}\n`));
              return r.limit === 'time' ? EXIT_TIME : EXIT_LIMIT;
            default:
              return EXIT_LIMIT;
          }
        } catch (error) {
          proc.out.stderr.push(Buffer.from(`${error.code ?? ''} ${error.message}\n`));
          return -1;
        } finally {
          proc.ended = true;
          proc.wake();
        }
      })();
      return proc;
    },
  };
}

/** A host directory as a WasiTree (files as bytes, folders as objects); symbolic links are refused. */
function readTree(dir) {
  const tree = {};
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const s = lstatSync(p);
    if (s.isSymbolicLink()) throw new Error(`${p} is a symbolic link, which a pre-opened tree cannot hold`);
    tree[name] = s.isDirectory() ? readTree(p) : new Uint8Array(readFileSync(p));
  }
  return tree;
}

// Last, so that every declaration above is initialised before it runs.
if (!isMainThread) {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/wasi/worker-entry.ts');
} else {
  await main();
}
