import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { example, expectGroupGone, repoRoot, runCli } from '../helpers.ts';

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

  test('an Enarx.toml with a socket says sockets are not supported yet', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'donjon-e2e-'));
    const config = join(dir, 'Enarx.toml');
    writeFileSync(config, '[[files]]\nkind = "listen"\nprot = "tls"\nport = 443\n');
    const r = await runCli(['run', '--config', config, hello]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /not supported yet/);
    noStackTrace(r.stderr);
  });

  test("donjon measure prints the SHA-384 of this version's Keep runtime", async () => {
    const r = await runCli(['measure']);
    assert.equal(r.code, 0);
    const expected = createHash('sha384')
      .update(readFileSync(join(repoRoot, 'dist', 'keep.js')))
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
