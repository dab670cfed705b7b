// The Keep's measurement is the SHA-384 of dist/keep.cjs alone, so that file must hold every byte of code the
// Keep can run: it may load Node's built-in modules, and nothing else (no chunk beside it, no package). The
// WASI worker's code is in it as text, from which the worker thread starts; the Keep's own parts are
// evaluated on first use. All of it is in the one measured file.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Script } from 'node:vm';
import { builtFile } from '../../src/paths.ts';

const source = readFileSync(builtFile('keep.cjs'), 'utf8');

/** The WASI worker's code, as the bundle carries it: the string literal of `{ source: … }`. */
function workerSource(): string {
  const literal = /\{ source: ('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*") \}/.exec(source)?.[1];
  assert.ok(literal, 'the bundle carries the worker as a string literal');
  const text: unknown = new Script(`(${literal})`).runInNewContext({});
  assert.equal(typeof text, 'string');
  return text as string;
}

/** Every module specifier the bundle names: static imports and re-exports, dynamic import() and require(). */
function specifiers(js: string): string[] {
  const found: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\s[^;]*?\bfrom\s*["']([^"']+)["']/gm,
    /^\s*import\s*["']([^"']+)["']/gm,
    /\bimport\(\s*["'`]([^"'`]+)["'`]\s*\)/g,
    /\brequire\(\s*["'`]([^"'`]+)["'`]\s*\)/g,
  ];
  for (const p of patterns) for (const m of js.matchAll(p)) found.push(m[1]!);
  return found;
}

test('the Keep bundle loads only Node built-ins: the measured file is all of its code', () => {
  const named = specifiers(source);
  assert.ok(named.includes('node:worker_threads'), 'the scan finds the imports it looks for');
  const outside = named.filter((s) => !s.startsWith('node:'));
  assert.deepEqual(outside, []);
});

test("the WASI worker's code is carried as text and loads only Node built-ins", () => {
  const worker = workerSource();
  const named = specifiers(worker);
  assert.ok(named.includes('node:worker_threads'), 'the scan finds the requires it looks for');
  assert.deepEqual(
    named.filter((s) => !s.startsWith('node:')),
    [],
  );
  assert.doesNotMatch(worker, /\bimport\(/);
  // The preview1 host is in the worker's text, not in the code the Keep's thread parses.
  assert.match(worker, /function wasiWorkerMain\(/);
  const outsideText = source.replace(/\{ source: ('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*") \}/, '');
  assert.doesNotMatch(outsideText, /function wasiWorkerMain\(/);
});

test('no import() in the bundle leaves the file: each names a part of the same file, evaluated when first used', () => {
  // A computed import() could load a file the measurement does not cover.
  assert.doesNotMatch(source, /\bimport\(\s*[^"'`\s)]/);
});

test("the Keep's thread loads Node's TLS module only when first used, not as its code loads", () => {
  // Up to its configuration (absent here, so it stops there), the Keep has evaluated all of its own code.
  const dir = mkdtempSync(join(tmpdir(), 'djb-'));
  const probe = join(dir, 'probe.cjs');
  const names = /^NativeModule (tls|_tls_wrap|net|worker_threads)$/;
  writeFileSync(
    probe,
    `const names = ${names};\n` +
      "process.on('exit', () => process.stderr.write('\\nloaded: ' + " +
      "JSON.stringify(process.moduleLoadList.filter((m) => names.test(m))) + '\\n'));\n",
  );
  const r = spawnSync(process.execPath, ['--require', probe, builtFile('keep.cjs')], { encoding: 'utf8' });
  rmSync(dir, { recursive: true, force: true });
  assert.equal(r.status, 2, r.stderr);
  const loaded = JSON.parse(/loaded: (.*)/.exec(r.stderr)?.[1] ?? 'null') as string[];
  assert.ok(loaded.includes('NativeModule net'), 'the probe sees the modules the Keep loads');
  assert.deepEqual(
    loaded.filter((m) => m.includes('tls')),
    [],
  );
});
