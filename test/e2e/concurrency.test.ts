import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { KeepManagerClient, measureRuntime, runWorkload } from '../../src/client/index.ts';
import { KeepManager } from '../../src/host/keepmgr/keepmgr.ts';
import { loadOrCreateSimRoot } from '../../src/host/simroot.ts';
import { builtFile } from '../../src/paths.ts';
import { example, testHome } from '../helpers.ts';

const CONCURRENT = Number(process.env['DONJON_CONCURRENT_RUNS'] ?? 50);

test(`${CONCURRENT} concurrent runs each get their own attested Keep and their own output`, {
  timeout: 180_000,
}, async () => {
  const root = await loadOrCreateSimRoot(testHome);
  const manager = new KeepManager({
    runtimePath: builtFile('keep.cjs'),
    keepldrPath: builtFile('keepldr.cjs'),
    simRootPath: root.path,
    runDir: mkdtempSync(join(tmpdir(), 'donjon-test-')),
    startTimeoutMs: 120_000,
  });
  const url = await manager.listen();
  const wasm = new Uint8Array(readFileSync(example('hello')));
  const policy = { measurements: [measureRuntime()], trustSimulatedRoots: [root.fingerprint] };
  try {
    const results = await Promise.all(
      Array.from({ length: CONCURRENT }, async (_, i) => {
        const chunks: Buffer[] = [];
        const stdout = new PassThrough();
        stdout.on('data', (c: Buffer) => chunks.push(c));
        const r = await runWorkload({
          host: new KeepManagerClient(url),
          backend: 'sim',
          wasm,
          args: ['hello', `tenant-${i}`],
          env: { EXIT_CODE: String(i % 7) },
          stdin: null,
          stdout,
          stderr: new PassThrough(),
          policy,
        });
        return { i, r, out: Buffer.concat(chunks).toString('utf8') };
      }),
    );
    const keepIds = new Set(results.map((x) => x.r.keepId));
    assert.equal(keepIds.size, CONCURRENT, 'every run had its own Keep');
    for (const { i, r, out } of results) {
      assert.equal(out, `Hello, tenant-${i}!\n`);
      assert.deepEqual(r.outcome, { kind: 'exit', code: i % 7 });
    }
  } finally {
    await manager.close();
  }
});
