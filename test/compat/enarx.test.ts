import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { repoRoot, runCli } from '../helpers.ts';

// Enarx's own Wasm test suite (tests/wasm/mod.rs in enarx/enarx), every case whose program builds from std
// alone, run as that file runs them (`enarx run`, `--wasmcfgfile`, `enarx deploy file://`) with `donjon`, and
// held to what it asserts: output and exit status. The one exception is no_export, a module with no exported
// function: Enarx exits 1 once its Keep refuses it; Donjon refuses it as a usage error (2) before any Keep is
// made. The programs are built by test/compat/enarx/build.sh from Enarx's sources.

const bin = (name: string): string => join(repoRoot, 'test', 'compat', 'enarx', `${name}.wasm`);
const work = mkdtempSync(join(tmpdir(), 'donjon-enarx-'));
after(() => rmSync(work, { recursive: true, force: true }));

const ZEROONEONE_IN = "Good morning, that's a nice tnetennba.\n0118 999 881 999 119 725 3\n";
const ZEROONEONE_OUT = "Tbbq zbeavat, gung'f n avpr gargraaon.\n0118 999 881 999 119 725 3\n";
const STDIO_CONF = '[[files]]\nkind = "stdin"\n\n[[files]]\nkind = "stdout"\n\n[[files]]\nkind = "stderr"';

describe("Enarx's tests/wasm, run with donjon", () => {
  test('return_1: the default export "" returns 1, which is not an exit status: 0', async () => {
    const r = await runCli(['run', '-q', bin('return_1')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
  });

  test('wasi_snapshot1: _start returns argc, which is ignored: 0, no output', async () => {
    const r = await runCli(['run', '-q', bin('wasi_snapshot1')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
  });

  test('hello_wasi_snapshot1: Hello, world!', async () => {
    const r = await runCli(['run', '-q', bin('hello_wasi_snapshot1')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Hello, world!\n');
  });

  test('no_export: no exported function is refused, here before any Keep is made (Enarx: 1; here 2)', async () => {
    const r = await runCli(['run', bin('no_export')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /exports no _start function/);
    assert.doesNotMatch(r.stderr, /Keep [0-9a-f]{16} created/);
  });

  test('echo: 2 MiB of stdin comes back on stdout', async () => {
    const input = Buffer.alloc(2 * 1024 * 1024);
    for (let i = 0; i < input.length; i++) input[i] = i & 0xff;
    const chunks: Buffer[] = [];
    const r = await runCli(['run', '-q', bin('echo')], {
      input,
      timeoutMs: 120_000,
      onSpawn: (child) => child.stdout!.on('data', (c: Buffer) => chunks.push(c)),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Buffer.concat(chunks).equals(input), 'the bytes that went in come out');
  });

  test('memspike and memory_stress_test: 0', async () => {
    for (const name of ['memspike', 'memory_stress_test']) {
      const r = await runCli(['run', '-q', bin(name)]);
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    }
  });

  test('zerooneone: ROT13 of stdin with `run`, as a file:// URL, and as a package with --wasmcfgfile', async () => {
    const plain = await runCli(['run', '-q', bin('zerooneone')], { input: ZEROONEONE_IN });
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.stdout, ZEROONEONE_OUT);
    const url = await runCli(['run', '-q', pathToFileURL(bin('zerooneone')).href], { input: ZEROONEONE_IN });
    assert.equal(url.code, 0, url.stderr);
    assert.equal(url.stdout, ZEROONEONE_OUT);
    // zerooneone_pkg: main.wasm beside Enarx.toml, run with --wasmcfgfile, then deployed from file://.
    const pkg = join(work, 'pkg');
    mkdirSync(pkg);
    copyFileSync(bin('zerooneone'), join(pkg, 'main.wasm'));
    writeFileSync(join(pkg, 'Enarx.toml'), STDIO_CONF);
    const conf = await runCli(['run', '-q', bin('zerooneone'), '--wasmcfgfile', join(pkg, 'Enarx.toml')], {
      input: ZEROONEONE_IN,
    });
    assert.equal(conf.code, 0, conf.stderr);
    assert.equal(conf.stdout, ZEROONEONE_OUT);
    // `enarx deploy file://PKG` runs it to its end: `donjon deploy --follow` does, with no stdin.
    const deployed = await runCli(['deploy', '--follow', '-q', pathToFileURL(pkg).href]);
    assert.equal(deployed.code, 0, deployed.stderr);
    assert.equal(deployed.stdout, '');
  });
});
