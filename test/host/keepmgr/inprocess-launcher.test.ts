// The Keep Manager embedded in `donjon run` plays the Keep Loader's role in its own process: its Keeps are
// still processes of their own, watched through the same socket, and stopping one never signals this process.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { KeepManagerClient, measureRuntime, runWorkload } from '../../../src/client/index.ts';
import { KeepManager } from '../../../src/host/index.ts';
import { loadOrCreateSimRoot } from '../../../src/host/simroot.ts';
import { builtFile } from '../../../src/paths.ts';
import { example, testHome } from '../../helpers.ts';

/** The parent pid of a process, from /proc. */
function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function inProcessManager(): Promise<{ manager: KeepManager; host: KeepManagerClient; root: string }> {
  const root = await loadOrCreateSimRoot(testHome);
  const manager = new KeepManager({
    runtimePath: builtFile('keep.cjs'),
    keepldrPath: builtFile('keepldr.cjs'),
    simRootPath: root.path,
    runDir: mkdtempSync(join(tmpdir(), 'donjon-test-')),
    launcher: 'in-process',
  });
  return { manager, host: new KeepManagerClient(await manager.listen()), root: root.fingerprint };
}

describe('in-process Keep Loader', () => {
  test('runs a workload in a Keep that is a child of this process, with no Keep Loader process', async () => {
    const { manager, host, root } = await inProcessManager();
    try {
      const keep = await host.createKeep('sim');
      assert.equal(keep.state, 'ready');
      assert.equal(keep.keepldrPid, process.pid, 'the Keep Loader is this process');
      assert.ok(keep.keepPid !== undefined && keep.keepPid !== process.pid);
      assert.equal(parentOf(keep.keepPid), process.pid, 'the Keep is our own child');
      let out = '';
      const stdout = new PassThrough();
      stdout.on('data', (c: Buffer) => {
        out += c.toString('utf8');
      });
      const r = await runWorkload({
        host,
        keep: Promise.resolve(keep),
        backend: 'sim',
        wasm: new Uint8Array(readFileSync(example('hello'))),
        args: ['hello', 'in-process'],
        env: {},
        stdin: null,
        stdout,
        stderr: new PassThrough(),
        policy: { measurements: [measureRuntime()], trustSimulatedRoots: [root] },
      });
      assert.deepEqual(r.outcome, { kind: 'exit', code: 0 });
      assert.equal(out, 'Hello, in-process!\n');
    } finally {
      await manager.close();
    }
  });

  test('stopping a Keep ends its process and records it stopped, and leaves this process alone', async () => {
    const { manager, host } = await inProcessManager();
    try {
      const keep = await host.createKeep('sim');
      const stopped = await host.stopKeep(keep.id);
      assert.equal(stopped.state, 'stopped');
      const deadline = Date.now() + 5000;
      while (alive(keep.keepPid!) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(alive(keep.keepPid!), false, 'the Keep ended');
    } finally {
      await manager.close();
    }
  });

  test('closing the Keep Manager ends the Keeps it still runs', async () => {
    const { manager, host } = await inProcessManager();
    const keep = await host.createKeep('sim');
    await manager.close();
    const deadline = Date.now() + 5000;
    while (alive(keep.keepPid!) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(alive(keep.keepPid!), false);
  });
});
