import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { KeepManagerClient } from '../../../src/client/index.ts';
import { KeepManager, type KeepManagerOptions } from '../../../src/host/index.ts';
import { builtFile } from '../../../src/paths.ts';
import { encodeFrame } from '../../../src/protocol/frames.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A Keep Loader that says its Keep is ready, then ignores every request to stop, SIGTERM included, and never
 * removes its socket: what the Supervisor's graceful → timeout → kill is for.
 */
function stubbornKeepLoader(): string {
  const dir = mkdtempSync(join(tmpdir(), 'donjon-stub-'));
  const path = join(dir, 'stubborn.mjs');
  const ready = Buffer.from(encodeFrame({ v: 1, type: 'ldr-event', state: 'ready' })).toString('hex');
  writeFileSync(
    path,
    `import { createServer } from 'node:net';
const config = JSON.parse(process.argv[2]);
process.on('SIGTERM', () => {});
process.stdin?.resume?.();
createServer((s) => { s.on('error', () => {}); s.once('data', () => s.write(Buffer.from('${ready}', 'hex'))); }).listen(config.socketPath);
`,
  );
  return path;
}

function manager(options: Partial<KeepManagerOptions> = {}): KeepManager {
  return new KeepManager({
    runtimePath: builtFile('keep.cjs'),
    keepldrPath: builtFile('keepldr.cjs'),
    runDir: mkdtempSync(join(tmpdir(), 'donjon-t-')),
    ...options,
  });
}

describe('Supervisor', () => {
  test('stop is graceful, then SIGKILL after keepldrKillAfter: a Keep Loader deaf to both ends, recorded stopped, its socket removed', async () => {
    for (const detachKeeps of [false, true]) {
      const m = manager({
        keepldrPath: stubbornKeepLoader(),
        detachKeeps,
        timeouts: { keepldrKillAfter: 300, stopReport: 100, exitPoll: 10 },
      });
      const client = new KeepManagerClient(await m.listen());
      try {
        const keep = await client.createKeep('nil');
        const record = m.store.get(keep.id)!;
        const pid = record.keepldrPid!;
        assert.ok(alive(pid));
        await client.stopKeep(keep.id);
        await waitFor(() => !alive(pid), 'the stubborn Keep Loader to be killed');
        await waitFor(() => m.store.get(keep.id)?.state === 'stopped', 'the record to say stopped');
        await waitFor(() => !existsSync(record.socketPath), 'its socket file to be removed');
      } finally {
        await m.close();
      }
    }
  });

  test('a Keep Loader killed outright: its Keep is recorded failed and the socket it left is removed', async () => {
    const m = manager();
    const client = new KeepManagerClient(await m.listen());
    try {
      const keep = await client.createKeep('nil');
      const record = m.store.get(keep.id)!;
      assert.ok(existsSync(record.socketPath));
      process.kill(record.keepldrPid!, 'SIGKILL');
      await waitFor(() => m.store.get(keep.id)?.state === 'failed', 'the record to say failed');
      assert.match(m.store.get(keep.id)!.error!, /Keep Loader ended/);
      await waitFor(() => !existsSync(record.socketPath), 'the socket file to be removed');
    } finally {
      await m.close();
    }
  });

  test("a detached Keep Loader's log is removed with its record; a normal lifecycle refuses no transition", async () => {
    const runDir = mkdtempSync(join(tmpdir(), 'donjon-t-'));
    const logged: Record<string, unknown>[] = [];
    const m = manager({ runDir, detachKeeps: true, log: (e) => logged.push(e) });
    const client = new KeepManagerClient(await m.listen());
    try {
      const keep = await client.createKeep('nil');
      const log = join(runDir, `${keep.id}.log`);
      assert.ok(existsSync(log));
      await client.stopKeep(keep.id);
      await waitFor(() => m.store.get(keep.id)?.state === 'stopped', 'the Keep to stop');
      await client.removeKeep(keep.id);
      assert.equal(existsSync(log), false);
      assert.equal(existsSync(join(runDir, `${keep.id}.sock`)), false);
      assert.deepEqual(
        logged.filter((e) => e['event'] === 'transition-refused'),
        [],
      );
    } finally {
      await m.close();
    }
  });

  test('adopt() removes the files of Keeps that have no record any more', async () => {
    const runDir = mkdtempSync(join(tmpdir(), 'donjon-t-'));
    writeFileSync(join(runDir, '0123456789abcdef.log'), 'old\n');
    writeFileSync(join(runDir, '0123456789abcdef.sock'), '');
    writeFileSync(join(runDir, 'operator-notes.txt'), 'kept\n');
    const m = manager({ runDir });
    try {
      await m.listen();
      await m.adopt();
      assert.equal(existsSync(join(runDir, '0123456789abcdef.log')), false);
      assert.equal(existsSync(join(runDir, '0123456789abcdef.sock')), false);
      assert.equal(existsSync(join(runDir, 'operator-notes.txt')), true);
    } finally {
      await m.close();
    }
  });
});
