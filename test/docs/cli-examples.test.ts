import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadOrCreateSimRoot } from '../../src/host/simroot.ts';
import { cliPath, freePort, repoRoot, testHome } from '../helpers.ts';

// docs/cli.md's examples, copy-pasted in order: the host's line started as a process, the tenant's block run
// by bash, against that host on loopback (on a free port rather than 8787, the only change made to them).

const doc = readFileSync(join(repoRoot, 'docs', 'cli.md'), 'utf8');

/** The ```sh blocks of the "## Examples" section, in order. */
function exampleBlocks(): string[] {
  const start = doc.indexOf('\n## Examples\n');
  assert.notEqual(start, -1, 'docs/cli.md has an "## Examples" section');
  const end = doc.indexOf('\n## ', start + 1);
  const section = doc.slice(start, end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

const work = mkdtempSync(join(tmpdir(), 'donjon-examples-'));
let host: ChildProcess | undefined;
after(() => {
  host?.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

test('docs/cli.md: the examples run in order against a donjon host on loopback', async () => {
  const [hostBlock, tenantBlock, ...rest] = exampleBlocks();
  assert.equal(rest.length, 0, 'two blocks: the host, the tenant');
  const port = String(await freePort());
  const local = (text: string): string => text.replaceAll('127.0.0.1:8787', `127.0.0.1:${port}`);

  // The folder the user types in: `examples/` as in the project, `donjon` on PATH, a home of its own.
  symlinkSync(join(repoRoot, 'examples'), join(work, 'examples'));
  const bin = join(work, 'bin');
  mkdirSync(bin);
  symlinkSync(cliPath, join(bin, 'donjon'));
  const home = join(work, 'home');
  mkdirSync(home);
  // The host's state starts with the test run's simulated root rather than making one (two RSA-4096 keys);
  // the embedded host's (DONJON_HOME) likewise.
  const root = await loadOrCreateSimRoot(testHome);
  mkdirSync(join(work, 'host-state'));
  copyFileSync(root.path, join(work, 'host-state', 'sim-root.cbor'));
  copyFileSync(root.path, join(home, 'sim-root.cbor'));
  const env = { PATH: `${bin}:${process.env['PATH'] ?? ''}`, DONJON_HOME: home };

  const hostLine = local(hostBlock!.trim());
  assert.match(hostLine, /^donjon host /);
  host = spawn('bash', ['-c', `exec ${hostLine}`], { cwd: work, env, stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let log = '';
    host!.stderr!.on('data', (c: Buffer) => {
      log += c.toString('utf8');
      if (log.includes('"event":"listening"')) resolve();
    });
    host!.on('exit', (code) => reject(new Error(`donjon host exited with ${code}: ${log}`)));
  });

  const script = `set -euo pipefail\nset -x\n${local(tenantBlock!)}`;
  const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn('bash', ['-c', script], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  assert.equal(run.code, 0, run.stderr);
  // What each example shows, as the comments say.
  assert.match(run.stdout, /^Hello, Donjon!$/m);
  assert.match(run.stdout, /^1 3 14$/m);
  assert.match(run.stdout, new RegExp(`^https://127\\.0\\.0\\.1:${port} +[0-9a-f]{64} `, 'm'));
  assert.match(run.stdout, /^ID +BACKEND +STATE +CREATED +PORTS +EXIT$/m);
  assert.match(run.stdout, /^state: +running$/m);
  assert.match(run.stdout, /^stopped [0-9a-f]{16} /m);
  assert.match(run.stdout, /^Hello, world!$/m);
  assert.match(run.stderr, /trusting https:\/\/127\.0\.0\.1:\d+ on first use/);
});
