import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { KeepManagerClient, measureRuntime, runWorkload } from '../../src/client/index.ts';
import { KeepManager } from '../../src/host/keepmgr/keepmgr.ts';
import { loadOrCreateSimRoot } from '../../src/host/simroot.ts';
import { builtFile } from '../../src/paths.ts';
import { example, testHome } from '../helpers.ts';

// `npm run test:soak`: many sequential runs through one Keep Manager, then its open descriptors, child processes
// and memory must be where they were after the warm-up.

const RUNS = Number(process.env['DONJON_SOAK_RUNS'] ?? 1000);
const WARMUP = Math.min(50, Math.floor(RUNS / 10));

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Live Keep Loaders started by this process (tsx's own esbuild helper is not one of ours). */
function children(): number[] {
  const mine = String(process.pid);
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const cmdline = readFileSync(`/proc/${e}/cmdline`, 'utf8');
        return fields[1] === mine && fields[0] !== 'Z' && cmdline.includes('keepldr.cjs');
      } catch {
        return false;
      }
    })
    .map(Number);
}

function rssAfterGc(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss;
}

test(`${RUNS} sequential runs leave descriptors, processes and memory flat`, {
  timeout: 3_600_000,
}, async () => {
  const root = await loadOrCreateSimRoot(testHome);
  const manager = new KeepManager({
    runtimePath: builtFile('keep.cjs'),
    keepldrPath: builtFile('keepldr.cjs'),
    simRootPath: root.path,
    runDir: mkdtempSync(join(tmpdir(), 'donjon-soak-')),
  });
  const url = await manager.listen();
  const host = new KeepManagerClient(url);
  const wasm = new Uint8Array(readFileSync(example('wc')));
  const policy = { measurements: [measureRuntime()], trustSimulatedRoots: [root.fingerprint] };
  let baseline: { fds: number; rss: number } | undefined;
  const started = Date.now();
  try {
    for (let i = 0; i < RUNS; i++) {
      const stdin = new PassThrough();
      stdin.end(`run ${i}\nsecond line\n`);
      const out: Buffer[] = [];
      const stdout = new PassThrough();
      stdout.on('data', (c: Buffer) => out.push(c));
      const r = await runWorkload({
        host,
        backend: 'sim',
        wasm,
        args: ['wc'],
        env: {},
        stdin,
        stdout,
        stderr: new PassThrough(),
        policy,
      });
      assert.deepEqual(r.outcome, { kind: 'exit', code: 0 });
      assert.equal(Buffer.concat(out).toString().trim(), `2 4 ${`run ${i}\nsecond line\n`.length}`);
      if (i + 1 === WARMUP) {
        await new Promise((res) => setTimeout(res, 500));
        baseline = { fds: openFds(), rss: rssAfterGc() };
      }
      if ((i + 1) % 100 === 0)
        process.stdout.write(`# soak: ${i + 1} runs, ${Math.round((Date.now() - started) / 1000)} s\n`);
    }
    // Let the last Keep Loaders finish exiting.
    for (let i = 0; i < 100 && children().length > 0; i++) await new Promise((res) => setTimeout(res, 50));
    await new Promise((res) => setTimeout(res, 500));
    const end = { fds: openFds(), rss: rssAfterGc() };
    assert.deepEqual(children(), [], 'no Keep Loader or Keep is left');
    assert.ok(end.fds <= baseline!.fds + 2, `descriptors grew from ${baseline!.fds} to ${end.fds}`);
    const grown = (end.rss - baseline!.rss) / 2 ** 20;
    assert.ok(grown < 40, `RSS grew by ${grown.toFixed(1)} MiB`);
    process.stdout.write(
      `# soak: ${RUNS} runs in ${Math.round((Date.now() - started) / 1000)} s; fds ${baseline!.fds} -> ${end.fds}; RSS ${(baseline!.rss / 2 ** 20).toFixed(1)} -> ${(end.rss / 2 ** 20).toFixed(1)} MiB\n`,
    );
  } finally {
    await manager.close();
  }
});
