// A Keep asked for before the workload is read (as `donjon run` does with its embedded host) is the one the
// run uses, and the only one made.
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
import { example, expectGroupGone, runCli, testHome } from '../helpers.ts';

test('runWorkload runs in the Keep it is given, and makes none of its own', async () => {
  const root = await loadOrCreateSimRoot(testHome);
  const manager = new KeepManager({
    runtimePath: builtFile('keep.cjs'),
    keepldrPath: builtFile('keepldr.cjs'),
    simRootPath: root.path,
    runDir: mkdtempSync(join(tmpdir(), 'donjon-test-')),
  });
  const host = new KeepManagerClient(await manager.listen());
  try {
    const keep = host.createKeep('sim');
    const stdout = new PassThrough();
    let out = '';
    stdout.on('data', (c: Buffer) => {
      out += c.toString('utf8');
    });
    const r = await runWorkload({
      host,
      keep,
      backend: 'sim',
      wasm: new Uint8Array(readFileSync(example('hello'))),
      args: ['hello', 'early'],
      env: {},
      stdin: null,
      stdout,
      stderr: new PassThrough(),
      policy: { measurements: [measureRuntime()], trustSimulatedRoots: [root.fingerprint] },
    });
    assert.equal(r.keepId, (await keep).id);
    assert.deepEqual(r.outcome, { kind: 'exit', code: 0 });
    assert.equal(out, 'Hello, early!\n');
    assert.deepEqual(
      (await host.listKeeps()).map((k) => k.id),
      [r.keepId],
    );
  } finally {
    await manager.close();
  }
});

test('donjon run refuses a workload that is not there, and leaves no Keep it asked for behind', async () => {
  const r = await runCli(['run', '-q', join(tmpdir(), 'no-such-workload.wasm')]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /Cannot read workload .*no such file/);
  await expectGroupGone(r.pid);
});
