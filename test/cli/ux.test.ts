import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { loadOrCreateSimRoot } from '../../src/host/simroot.ts';
import { example, freePort, repoRoot, runCli, startDaemon, testHome } from '../helpers.ts';
import { buildModule, op, startFunc, wasiImport } from '../wasi/wasm-builder.ts';

// What a user meets, as processes against `donjon host` as an operator runs it: refusals that name the way
// forward, an honest detach, known hosts, and flags that say what was meant.

const state = mkdtempSync(join(tmpdir(), 'djux-'));
const home = mkdtempSync(join(tmpdir(), 'donjon-ux-'));
const env = { DONJON_HOME: home };
let daemon: ChildProcess | undefined;
let port = 0;
let url = '';
let fingerprint = '';
let simRoot = '';
let token = '';

/** The flags that reach the daemon, pinned. */
function remote(): string[] {
  return ['--host', url, '--token', token, '--host-fingerprint', fingerprint];
}

async function keepState(id: string): Promise<string> {
  const r = await runCli(['keeps', 'inspect', id, '--json', ...remote()], { env });
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { state: string }).state;
}

async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Deploys the http example as a service; returns its Keep id. */
async function deployService(): Promise<string> {
  const r = await runCli(
    [
      'deploy',
      example('http'),
      '--config',
      join(repoRoot, 'examples', 'http', 'Enarx.toml'),
      '--json',
      ...remote(),
      '--trust-sim-root',
      simRoot,
    ],
    { env },
  );
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { id: string }).id;
}

/** `keeps attach ID` interrupted by SIGINT once it is attached. */
function attachThenInterrupt(id: string, extra: string[] = []) {
  return runCli(['keeps', 'attach', id, ...remote(), '--trust-sim-root', simRoot, ...extra], {
    env,
    stdinOpen: true,
    onSpawn: (child) => {
      let err = '';
      let sent = false;
      child.stderr!.on('data', (c: Buffer) => {
        err += c.toString('utf8');
        if (!sent && err.includes('attached to the workload')) {
          sent = true;
          child.kill('SIGINT');
        }
      });
    },
  });
}

before(async () => {
  const root = await loadOrCreateSimRoot(testHome);
  mkdirSync(state, { recursive: true });
  copyFileSync(root.path, join(state, 'sim-root.cbor'));
  const info = await runCli(['host', 'info', '--state', state, '--json']);
  assert.equal(info.code, 0, info.stderr);
  ({ fingerprint, simRootFingerprint: simRoot } = JSON.parse(info.stdout) as {
    fingerprint: string;
    simRootFingerprint: string;
  });
  token = (await runCli(['host', 'token', 'create', '--state', state])).stdout.trim();
  port = await freePort();
  url = `https://127.0.0.1:${port}`;
  daemon = await startDaemon(port, state);
});

after(() => {
  daemon?.kill('SIGKILL');
  rmSync(home, { recursive: true, force: true });
});

describe('keeps attach: Ctrl-C detaches, and says so', () => {
  test('Ctrl-C on attach leaves the Keep running, says how to stop it, exits 130 (it said "being stopped", exited 4, and the Keep ran on)', async () => {
    const id = await deployService();
    const r = await attachThenInterrupt(id);
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, new RegExp(`detached; Keep ${id} still runs: donjon keeps stop ${id}`));
    assert.doesNotMatch(r.stderr, /being stopped|error/);
    assert.equal(await keepState(id), 'running');
    const stop = await runCli(['keeps', 'stop', id, ...remote()], { env });
    assert.equal(stop.code, 0, stop.stderr);
  });

  test('--stop-on-interrupt stops the Keep on Ctrl-C, and says so', async () => {
    const id = await deployService();
    const r = await attachThenInterrupt(id, ['--stop-on-interrupt']);
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, new RegExp(`detached and stopped Keep ${id}`));
    await waitFor('the Keep to stop', async () => (await keepState(id)) !== 'running');
    assert.equal(await keepState(id), 'stopped');
  });
});

describe('trust: every refusal names what would proceed', () => {
  test('a simulated root not opted into names --trust-sim-root with its fingerprint, donjon host info, and that it is for development only', async () => {
    const r = await runCli(['run', ...remote(), example('hello')], { env });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`--trust-sim-root ${simRoot}`));
    assert.match(r.stderr, /donjon host info/);
    assert.match(r.stderr, /development only/);
    // The tier chosen for a run that never started is not worth a line.
    assert.doesNotMatch(r.stderr, /compiler tier/);
    const json = await runCli(['run', '--json', ...remote(), example('hello')], { env });
    const last = JSON.parse(json.stderr.trim().split('\n').pop()!) as Record<string, unknown>;
    assert.equal(last['code'], 'ERR_SIMULATED_ROOT_NOT_TRUSTED');
    assert.equal(last['category'], 'refused');
  });

  test("a Keep whose runtime is not this version's names --expect-measurement with its measurement, and when that is safe", async () => {
    const other = '00'.repeat(48);
    const r = await runCli(
      ['run', ...remote(), '--trust-sim-root', simRoot, '--expect-measurement', other, example('hello')],
      { env },
    );
    assert.equal(r.code, 3, r.stderr);
    const measure = await runCli(['measure', '--json']);
    const actual = (JSON.parse(measure.stdout) as { measurement: string }).measurement;
    assert.match(
      r.stderr,
      new RegExp(`pass --expect-measurement ${actual}, which is safe only if you trust`),
    );
    assert.match(r.stderr, /donjon measure/);
  });

  test('trust on first use prints its line once and writes one line, however many connections a run makes', async () => {
    const fresh = mkdtempSync(join(tmpdir(), 'donjon-tofu-'));
    try {
      const tofu = ['--host', url, '--token', token, '--trust-sim-root', simRoot];
      const first = await runCli(['run', ...tofu, example('hello')], { env: { DONJON_HOME: fresh } });
      assert.equal(first.code, 0, first.stderr);
      assert.equal(first.stderr.match(/trusting .* on first use/g)?.length, 1, first.stderr);
      const second = await runCli(['run', ...tofu, example('hello')], { env: { DONJON_HOME: fresh } });
      assert.equal(second.code, 0, second.stderr);
      assert.doesNotMatch(second.stderr, /on first use/);
      const lines = readFileSync(join(fresh, 'known_hosts'), 'utf8').trim().split('\n');
      assert.deepEqual(lines, [`${url} ${fingerprint}`]);
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });

  test('a changed certificate names the known_hosts file and line and donjon known-hosts rm; rm forgets it', async () => {
    const fresh = mkdtempSync(join(tmpdir(), 'donjon-kh-'));
    const freshEnv = { DONJON_HOME: fresh };
    try {
      const file = join(fresh, 'known_hosts');
      writeFileSync(file, `https://other.example:8000 ${'cd'.repeat(32)}\n${url} ${'ab'.repeat(32)}\n`);
      const changed = await runCli(['keeps', 'ls', '--host', url, '--token', token], { env: freshEnv });
      assert.equal(changed.code, 3, changed.stderr);
      assert.match(changed.stderr, new RegExp(`${file} line 2`));
      assert.match(changed.stderr, new RegExp(`donjon known-hosts rm ${url}`));
      const ls = await runCli(['known-hosts', 'ls'], { env: freshEnv });
      assert.equal(ls.code, 0, ls.stderr);
      assert.match(ls.stdout, new RegExp(`${url}  ${'ab'.repeat(32)}  ${file}:2`));
      const rm = await runCli(['known-hosts', 'rm', `127.0.0.1:${port}`], { env: freshEnv });
      assert.equal(rm.code, 0, rm.stderr);
      assert.equal(readFileSync(file, 'utf8').trim(), `https://other.example:8000 ${'cd'.repeat(32)}`);
      const again = await runCli(['known-hosts', 'rm', url], { env: freshEnv });
      assert.equal(again.code, 2, again.stderr);
      const trusted = await runCli(['keeps', 'ls', '--host', url, '--token', token], { env: freshEnv });
      assert.equal(trusted.code, 0, trusted.stderr);
      assert.match(trusted.stderr, /on first use/);
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });
});

describe('the module is checked before any Keep is made', () => {
  const dir = mkdtempSync(join(tmpdir(), 'donjon-mod-'));
  const file = (name: string, bytes: Uint8Array): string => {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return path;
  };
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function keepCount(): Promise<number> {
    const r = await runCli(['keeps', 'ls', '--json', ...remote()], { env });
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as unknown[]).length;
  }

  test('a broken body, no entry point, or an import outside preview1 exit 2 with no Keep made (they exited 4 from inside the Keep)', async () => {
    const good = buildModule({ funcs: [startFunc([])] });
    // The header and framing of a module, with a function body the engine refuses (i32.add on nothing).
    const broken = buildModule({ funcs: [startFunc(op.i32Add)] });
    const cases: [string, Uint8Array, RegExp, string][] = [
      ['broken.wasm', broken, /Cannot run .*broken\.wasm: /, 'ERR_WASM_INVALID'],
      ['noexport.wasm', buildModule({ funcs: [{ body: [] }] }), /exports no _start/, 'ERR_WASM_NOT_COMMAND'],
      [
        'env.wasm',
        buildModule({
          imports: [{ module: 'env', name: 'f', params: [], results: [] }],
          funcs: [startFunc([])],
        }),
        /env\.f from outside WASI preview1/,
        'ERR_WASM_IMPORT_UNSUPPORTED',
      ],
    ];
    assert.ok(good.length > 8);
    const before = await keepCount();
    for (const [name, bytes, pattern, code] of cases) {
      const r = await runCli(['run', ...remote(), '--trust-sim-root', simRoot, file(name, bytes)], { env });
      assert.equal(r.code, 2, `${name}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.doesNotMatch(r.stderr, /created/);
      const json = await runCli(['deploy', '--json', ...remote(), file(name, bytes)], { env });
      assert.equal(json.code, 2, `${name}: ${json.stderr}`);
      assert.equal((JSON.parse(json.stderr.trim()) as { code: string }).code, code);
    }
    assert.equal(await keepCount(), before);
  });

  test("wasmtime's entry rules, as Enarx's tests assert: an entry's results are ignored (exit 0), the default export \"\" runs", async () => {
    // return_1.wat: `_start` returns i32 1, and the run exits 0.
    const returns = buildModule({ funcs: [{ results: ['i32'], body: op.i32Const(1), export: '_start' }] });
    const r1 = await runCli(['run', '-q', file('return_1.wasm', returns)]);
    assert.equal(r1.code, 0, r1.stderr);
    // An entry that is the default export "", exiting 3 through proc_exit.
    const dflt = buildModule({
      imports: [wasiImport('proc_exit', 'i:')],
      funcs: [{ body: [...op.i32Const(3), ...op.call(0)], export: '' }],
    });
    const r2 = await runCli(['run', '-q', file('default.wasm', dflt)]);
    assert.equal(r2.code, 3, r2.stderr);
  });
});

describe('outputs: one vocabulary, RFC 3339 times, a table for people and --json for scripts', () => {
  test("with --json, every line of stderr is one JSON object: the workload's own stderr too; stdout stays raw", async () => {
    const r = await runCli(['run', '--json', example('cat'), '--', '/nope']);
    assert.notEqual(r.code, 0);
    const events = r.stderr
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { event: string; data?: string });
    const stderr = events
      .filter((e) => e.event === 'stderr')
      .map((e) => e.data)
      .join('');
    assert.match(stderr, /cat: \/nope/);
    assert.equal(r.stdout, '');
    const hello = await runCli(['run', '--json', example('hello')]);
    assert.equal(hello.stdout, 'Hello, world!\n');
  });

  test('keeps ls is a table with a header by default; ls and inspect --json give ports as {name, hostPort} and RFC 3339 times, as deploy does', async () => {
    const id = await deployService();
    try {
      const ls = await runCli(['keeps', 'ls', ...remote()], { env });
      assert.equal(ls.code, 0, ls.stderr);
      const [header, ...rows] = ls.stdout.trim().split('\n');
      assert.match(header!, /^ID\s+BACKEND\s+STATE\s+CREATED\s+PORTS\s+EXIT$/);
      const row = rows.find((r) => r.startsWith(id));
      assert.match(
        row ?? '',
        /^[0-9a-f]{16}\s+sim\s+running\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\s+https:\d+\s+-$/,
      );
      const json = await runCli(['keeps', 'ls', '--json', ...remote()], { env });
      const listed = (JSON.parse(json.stdout) as { id: string; createdAt: string; ports: unknown[] }[]).find(
        (k) => k.id === id,
      );
      assert.match(listed?.createdAt ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.deepEqual(Object.keys(listed?.ports[0] as object), ['name', 'hostPort']);
      const human = await runCli(['keeps', 'inspect', id, ...remote()], { env });
      assert.equal(human.code, 0, human.stderr);
      assert.doesNotMatch(human.stdout, /^\{/);
      assert.match(human.stdout, /^state:\s+running$/m);
      assert.match(human.stdout, /^ports:\s+https on host port \d+$/m);
      const inspect = await runCli(['keeps', 'inspect', id, '--json', ...remote()], { env });
      const k = JSON.parse(inspect.stdout) as { ports: { name: string; hostPort: number }[] };
      assert.equal(k.ports[0]?.name, 'https');
      assert.ok(Number.isInteger(k.ports[0]?.hostPort));
    } finally {
      await runCli(['keeps', 'stop', id, ...remote()], { env });
    }
  });
});

describe('flags that say what was meant', () => {
  test('--host NAME:PORT suggests https://NAME:PORT, exit 2 (it said "not a URL")', async () => {
    const r = await runCli(['keeps', 'ls', '--host', `127.0.0.1:${port}`, '--token', token], { env });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`did you mean --host https://127\\.0\\.0\\.1:${port}\\?`));
    const named = await runCli(['keeps', 'ls', '--host', 'localhost:8787'], { env });
    assert.equal(named.code, 2, named.stderr);
    assert.match(named.stderr, /did you mean --host https:\/\/localhost:8787/);
  });

  test('--host http:// against the https daemon says to use https, not "socket hang up"', async () => {
    const r = await runCli(['keeps', 'ls', '--host', `http://127.0.0.1:${port}`, '--token', token], { env });
    assert.equal(r.code, 4, r.stderr);
    assert.doesNotMatch(r.stderr, /socket hang up/);
    assert.match(r.stderr, new RegExp(`use --host https://127\\.0\\.0\\.1:${port}`));
  });

  test('a missing token and a wrong one read differently', async () => {
    const pin = ['--host', url, '--host-fingerprint', fingerprint];
    const missing = await runCli(['keeps', 'ls', ...pin], { env });
    const wrong = await runCli(['keeps', 'ls', ...pin, '--token', 'djt_nope'], { env });
    assert.equal(missing.code, 4, missing.stderr);
    assert.equal(wrong.code, 4, wrong.stderr);
    assert.match(missing.stderr, /none was given: pass --token/);
    assert.match(wrong.stderr, /does not know the token given/);
  });

  test('donjon keeps alone lists its subcommands, exit 2 (it asked for --host)', async () => {
    const r = await runCli(['keeps'], { env });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^ {2}ls +list your Keeps$/m);
    assert.match(r.stderr, /^ {2}attach ID/m);
    assert.doesNotMatch(r.stderr, /--host URL \(or DONJON_HOST\)/);
  });
});

describe('Enarx CLI habits: --wasmcfgfile, package directories, file:// URLs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'donjon-pkg-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('run --wasmcfgfile Enarx.toml x.wasm takes the file as --config does', async () => {
    const toml = join(dir, 'cfg.toml');
    writeFileSync(toml, 'args = ["Cfg"]\n');
    const r = await runCli(['run', '-q', '--wasmcfgfile', toml, example('hello')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Hello, Cfg!\n');
  });

  test('run ./pkgdir and run file:///abs/pkgdir run main.wasm with the Enarx.toml beside it', async () => {
    const pkg = join(dir, 'hello-pkg');
    mkdirSync(pkg);
    copyFileSync(example('hello'), join(pkg, 'main.wasm'));
    writeFileSync(join(pkg, 'Enarx.toml'), 'args = ["Pkg"]\n');
    const r = await runCli(['run', '-q', pkg]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Hello, Pkg!\n');
    const u = await runCli(['run', '-q', pathToFileURL(pkg).href, '--', 'Url']);
    assert.equal(u.code, 0, u.stderr);
    assert.equal(u.stdout, 'Hello, Pkg!\n');
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    const none = await runCli(['run', empty]);
    assert.equal(none.code, 2, none.stderr);
    assert.match(none.stderr, /no main\.wasm/);
  });

  test('deploy file:///abs/pkgdir deploys the package, its Enarx.toml giving the listen port', async () => {
    const pkg = join(dir, 'http-pkg');
    mkdirSync(pkg);
    copyFileSync(example('http'), join(pkg, 'main.wasm'));
    copyFileSync(join(repoRoot, 'examples', 'http', 'Enarx.toml'), join(pkg, 'Enarx.toml'));
    const r = await runCli(
      ['deploy', '--json', ...remote(), '--trust-sim-root', simRoot, pathToFileURL(pkg).href],
      { env },
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { id: string; ports: { name: string; hostPort: number }[] };
    assert.equal(out.ports[0]?.name, 'https');
    await runCli(['keeps', 'stop', out.id, ...remote()], { env });
  });
});
