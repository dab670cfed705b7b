import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { example, expectGroupGone, repoRoot, runCli, testHome } from '../helpers.ts';

const hello = example('hello');
const wc = example('wc');

function noStackTrace(stderr: string): void {
  assert.doesNotMatch(stderr, /^\s+at /m, `stderr has a stack trace:\n${stderr}`);
}

describe('donjon run (embedded host, sim backend)', () => {
  test('greets its first argument, reports the attested Keep, and leaves no process behind', async () => {
    const r = await runCli(['run', hello, '--', 'Alice']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Hello, Alice!\n');
    assert.match(r.stderr, /Keep [0-9a-f]+ created on backend sim/);
    assert.match(r.stderr, /evidence verified: sev-snp report v3/);
    assert.match(r.stderr, /SIMULATED hardware: .*SHA-256 [0-9a-f]{64}/);
    assert.match(r.stderr, /workload exited with status 0/);
    await expectGroupGone(r.pid);
  });

  test('greets the world without an argument', async () => {
    const r = await runCli(['run', '-q', hello]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Hello, world!\n');
    assert.equal(r.stderr, '', '-q prints nothing of its own');
  });

  test("passes --env to the workload, whose exit status becomes the command's", async () => {
    const r = await runCli(['run', '-q', '--env', 'EXIT_CODE=7', hello]);
    assert.equal(r.code, 7, r.stderr);
  });

  test('streams stdin into the Keep (wc counts it)', async () => {
    const r = await runCli(['run', '-q', wc], { input: 'one two\nthree\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '2 3 14');
  });

  test('streams a large stdin through the channel intact', async () => {
    const line = 'lorem ipsum dolor sit amet\n';
    const input = line.repeat(40_000); // ~1 MiB
    const r = await runCli(['run', '-q', wc], { input });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `40000 200000 ${input.length}`);
  });

  test('--json reports each step as a JSON line, with the measurement donjon measure prints', async () => {
    const r = await runCli(['run', '--json', hello, '--', 'Json']);
    assert.equal(r.code, 0, r.stderr);
    const events = r.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const names = events.map((e) => e['event']);
    for (const n of ['keep-created', 'evidence-verified', 'warning', 'workload-sent', 'exit'])
      assert.ok(names.includes(n), n);
    const verified = events.find((e) => e['event'] === 'evidence-verified')!;
    const measure = await runCli(['measure']);
    assert.equal(verified['measurement'], measure.stdout.trim());
    assert.equal(verified['simulated'], true);
    assert.equal(verified['debug'], false);
  });

  test('a nil Keep is refused without --insecure, and runs with it', async () => {
    const refused = await runCli(['run', '--backend', 'nil', hello]);
    assert.equal(refused.code, 3);
    assert.equal(refused.stdout, '');
    assert.match(refused.stderr, /nil Keep.*no attestation.*--insecure/);
    const accepted = await runCli(['run', '--backend', 'nil', '--insecure', hello, '--', 'Nil']);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.equal(accepted.stdout, 'Hello, Nil!\n');
    assert.match(accepted.stderr, /INSECURE/);
  });

  test('takes args and env from an Enarx.toml', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'donjon-e2e-'));
    const config = join(dir, 'Enarx.toml');
    writeFileSync(
      config,
      'args = ["Toml"]\n[env]\nEXIT_CODE = "5"\n\n[[files]]\nkind = "stdin"\n[[files]]\nkind = "stdout"\n[[files]]\nkind = "stderr"\n',
    );
    const r = await runCli(['run', '-q', '--config', config, hello]);
    assert.equal(r.code, 5, r.stderr);
    assert.equal(r.stdout, 'Hello, Toml!\n');
  });

  test('an Enarx.toml with a nameless listen file is refused, as Enarx refuses it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'donjon-e2e-'));
    const config = join(dir, 'Enarx.toml');
    writeFileSync(config, '[[files]]\nkind = "listen"\nprot = "tls"\nport = 443\n');
    const r = await runCli(['run', '--config', config, hello]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /files\[0\] is a listen file without a name/);
    noStackTrace(r.stderr);
  });

  test('a listen file of an Enarx.toml gets a host port that reaches the workload (the echo example)', async () => {
    let reply = '';
    const r = await runCli(
      [
        'run',
        '--timeout',
        '4s',
        '--config',
        join(repoRoot, 'examples', 'echo', 'Enarx.toml'),
        example('echo'),
      ],
      {
        onSpawn: (child) => {
          let seen = '';
          let connected = false;
          child.stderr!.on('data', (c: Buffer) => {
            seen += c.toString('utf8');
            const m = /listen file echo is on host port (\d+)/.exec(seen);
            if (m && !connected) {
              connected = true;
              const socket = connect(Number(m[1]), '127.0.0.1');
              socket.on('data', (d: Buffer) => {
                reply += d.toString('utf8');
              });
              socket.on('error', () => {});
              socket.end('ping through the Keep');
            }
          });
        },
      },
    );
    assert.equal(reply, 'ping through the Keep');
    assert.equal(r.code, 124, r.stderr);
    assert.match(r.stderr, /echo: serving on descriptor 3 \(echo\)/);
  });

  test("donjon measure prints the SHA-384 of this version's Keep runtime", async () => {
    const r = await runCli(['measure']);
    assert.equal(r.code, 0);
    const expected = createHash('sha384')
      .update(readFileSync(join(repoRoot, 'dist', 'keep.cjs')))
      .digest('hex');
    assert.equal(r.stdout, `${expected}\n`);
  });

  test('a Keep whose measurement is not the expected one is refused before the workload is sent', async () => {
    const r = await runCli(['run', '--expect-measurement', '00'.repeat(48), hello]);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /measurement/i);
    assert.doesNotMatch(r.stderr, /workload sent/);
    await expectGroupGone(r.pid);
  });
});

describe('donjon run: connect files', () => {
  const config = (body: string): string => {
    const dir = mkdtempSync(join(tmpdir(), 'donjon-e2e-'));
    const path = join(dir, 'Enarx.toml');
    writeFileSync(path, body);
    return path;
  };

  test('a tcp connect file is opened by the host for the Keep: cat reads the network on descriptor 0', async () => {
    const server = createServer((s) => s.end('hello from the network\n'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const toml = config(
        `[[files]]\nkind = "connect"\nprot = "tcp"\nhost = "127.0.0.1"\nport = ${port}\n` +
          '[[files]]\nkind = "stdout"\n[[files]]\nkind = "stderr"\n',
      );
      const r = await runCli(['run', '-q', '--config', toml, example('cat')]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'hello from the network\n');
    } finally {
      server.close();
    }
  });

  test('a connect file the host cannot open, or whose TLS server does not verify, refuses the deploy', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const refused = await runCli([
      'run',
      '--config',
      config(`[[files]]\nkind = "connect"\nprot = "tcp"\nhost = "127.0.0.1"\nport = ${port}\n`),
      hello,
    ]);
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /Cannot connect 127\.0\.0\.1 to 127\.0\.0\.1:\d+: ECONNREFUSED/);
    // A plain TCP server is no TLS server the public roots vouch for.
    const plain = createServer((s) => s.end('not tls'));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', () => r()));
    try {
      const tls = await runCli([
        'run',
        '--config',
        config(
          `[[files]]\nkind = "connect"\nhost = "127.0.0.1"\nport = ${(plain.address() as { port: number }).port}\n`,
        ),
        hello,
      ]);
      assert.equal(tls.code, 4, tls.stderr);
      assert.match(tls.stderr, /The Keep refused: Cannot connect 127\.0\.0\.1 to 127\.0\.0\.1:\d+: .*SSL/);
      noStackTrace(tls.stderr);
    } finally {
      plain.close();
    }
  });
});

describe('donjon run --dir', () => {
  const tree = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'donjon-dir-'));
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'a.txt'), 'from the host\n');
    writeFileSync(join(dir, 'sub', 'b.txt'), 'nested\n');
    return dir;
  };

  test('copies a host directory into the Keep, pre-opened at the guest path', async () => {
    const dir = tree();
    const r = await runCli([
      'run',
      '-q',
      '--dir',
      `${dir}:/data`,
      example('cat'),
      '--',
      '/data/a.txt',
      '/data/sub/b.txt',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'from the host\nnested\n');
  });

  test('pre-opens the directory at its own path without :GUEST', async () => {
    const dir = tree();
    const r = await runCli(['run', '-q', '--dir', dir, example('cat'), '--', join(dir, 'a.txt')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'from the host\n');
  });

  test('the workload sees the copy only: no other host path, and its writes stay in the Keep', async () => {
    const dir = tree();
    const r = await runCli([
      'run',
      '-q',
      '--dir',
      `${dir}:/data`,
      example('cat'),
      '--',
      '/etc/hostname',
      '/data/../a.txt',
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /cat: \/etc\/hostname: /);
  });

  test('a missing directory, a repeated guest path and a tree over the limits are usage errors', async () => {
    const dir = tree();
    const missing = await runCli(['run', '--dir', join(dir, 'nope'), hello]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /Cannot copy directory .*nope: no such directory/);
    const twice = await runCli(['run', '--dir', `${dir}:/d`, '--dir', `${dir}:/d`, hello]);
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, /\/d is pre-opened twice/);
    const many = mkdtempSync(join(tmpdir(), 'donjon-many-'));
    for (let i = 0; i <= 10_000; i++) writeFileSync(join(many, `f${i}`), '');
    const big = await runCli(['run', '--dir', many, hello]);
    assert.equal(big.code, 2);
    assert.match(big.stderr, /more than 10000 files and folders/);
    noStackTrace(big.stderr);
  });

  test('a directory larger than the memory limit is refused by the Keep', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'donjon-dir-'));
    writeFileSync(join(dir, 'big.bin'), Buffer.alloc(3 << 20));
    const r = await runCli(['run', '--memory', '2MiB', '--dir', `${dir}:/d`, hello]);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /over the memory limit/);
    await expectGroupGone(r.pid);
  });
});

describe('donjon run --wasm-tier', () => {
  test('runs the workload with the optimizing tier when asked, and the Keep says it did', async () => {
    const r = await runCli(['run', '--json', '--wasm-tier', 'optimizing', hello, '--', 'Turbo']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Hello, Turbo!\n');
    const started = r.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e['event'] === 'workload-started');
    assert.equal(started?.['tier'], 'optimizing');
  });

  test('refuses an unknown tier', async () => {
    const r = await runCli(['run', '--wasm-tier', 'turbo', hello]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--wasm-tier turbo/);
  });

  test('auto, the default, chooses the tier from the run times it recorded for the module', async () => {
    // A data directory of its own (with the shared simulated root), so no other test's runs mix in.
    const home = mkdtempSync(join(tmpdir(), 'donjon-tier-home-'));
    writeFileSync(join(home, 'sim-root.cbor'), readFileSync(join(testHome, 'sim-root.cbor')));
    const digest = createHash('sha256').update(readFileSync(hello)).digest('hex');
    const events = (stderr: string) =>
      stderr
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const tiers = () =>
      JSON.parse(readFileSync(join(home, 'tiers.json'), 'utf8')) as Record<
        string,
        { default?: number[]; optimizing?: number[] }
      >;

    const first = await runCli(['run', '--json', hello, '--', 'First'], { env: { DONJON_HOME: home } });
    assert.equal(first.code, 0, first.stderr);
    const firstEvents = events(first.stderr);
    assert.match(
      String(firstEvents.find((e) => e['event'] === 'note')?.['message']),
      /tier default: first run/,
    );
    // The Keep names the tier only when it is not the default one.
    assert.equal(
      firstEvents.find((e) => e['event'] === 'workload-started')?.['tier'] ?? 'default',
      'default',
    );
    const recorded = tiers()[digest]?.default;
    assert.ok(recorded?.length === 1 && recorded[0]! < 1000, String(recorded));

    // As if the module's last run had taken 2.5 s: the next is tried with the optimizing tier, and timed.
    writeFileSync(join(home, 'tiers.json'), JSON.stringify({ [digest]: { at: Date.now(), default: 2500 } }));
    const second = await runCli(['run', '--json', hello, '--', 'Second'], { env: { DONJON_HOME: home } });
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, 'Hello, Second!\n');
    const secondEvents = events(second.stderr);
    assert.match(
      String(secondEvents.find((e) => e['event'] === 'note')?.['message']),
      /tier optimizing: its last run took 2\.5 s/,
    );
    assert.equal(secondEvents.find((e) => e['event'] === 'workload-started')?.['tier'], 'optimizing');
    assert.deepEqual(tiers()[digest]?.default, [2500]);
    assert.equal(tiers()[digest]?.optimizing?.length, 1);
  });

  test('deploy takes a fixed tier: auto is refused', async () => {
    const r = await runCli(['deploy', '--wasm-tier', 'auto', hello]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--wasm-tier auto/);
  });
});

describe('donjon run: bad input ends with one line and no stack trace', () => {
  test('a missing workload file', async () => {
    const r = await runCli(['run', 'no/such/file.wasm']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^donjon: error: Cannot read workload no\/such\/file.wasm: no such file\n$/);
  });

  test('a file that is not WebAssembly', async () => {
    const r = await runCli(['run', join(repoRoot, 'package.json')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /not a WebAssembly module/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  test('an unknown flag', async () => {
    const r = await runCli(['run', '--frobnicate', hello]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--frobnicate/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  test('an unknown command', async () => {
    const r = await runCli(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no such command/);
  });

  test('a workload that traps gets exit status 134 and the trap message', async () => {
    const r = await runCli(['run', '-q', example('trap')]);
    assert.equal(r.code, 134, r.stderr);
    assert.match(r.stderr, /workload trapped: .*unreachable/);
    noStackTrace(r.stderr);
    await expectGroupGone(r.pid);
  });

  test('a workload that loops is stopped by --timeout with status 124', async () => {
    const r = await runCli(['run', '-q', '--timeout', '1s', example('spin')]);
    assert.equal(r.code, 124, r.stderr);
    assert.match(r.stderr, /time/);
    await expectGroupGone(r.pid);
  });

  test('a workload that eats memory is stopped at --memory with status 137', async () => {
    const r = await runCli(['run', '-q', '--memory', '16MiB', example('memhog')]);
    assert.equal(r.code, 137, r.stderr);
    assert.match(r.stderr, /memory/);
    await expectGroupGone(r.pid);
  });
});

describe('donjon run: interruption', () => {
  test('Ctrl-C while the workload waits on stdin stops the Keep and leaves no process behind', async () => {
    let pid = 0;
    const r = await runCli(['run', wc], {
      stdinOpen: true,
      onSpawn: (child) => {
        pid = child.pid!;
        let seen = '';
        let sent = false;
        child.stderr!.on('data', (c: Buffer) => {
          seen += c.toString('utf8');
          if (!sent && seen.includes('workload started')) {
            sent = true;
            child.kill('SIGINT');
          }
        });
      },
    });
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /Interrupted/);
    await expectGroupGone(pid);
  });
});
