import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { KeepManagerClient, runWorkload } from '../../../src/client/index.ts';
import { KeepManager, type KeepManagerOptions } from '../../../src/host/index.ts';
import { builtFile } from '../../../src/paths.ts';
import { example } from '../../helpers.ts';

// Failure 2 of the hostile-operator trial: a create that failed after its record was inserted left the record
// `creating` for ever, counting against the tenant's quotas. Every failure after the insert must end it
// `failed`, with the reason.

function manager(options: Partial<KeepManagerOptions> = {}): KeepManager {
  return new KeepManager({
    runtimePath: builtFile('keep.cjs'),
    keepldrPath: builtFile('keepldr.cjs'),
    runDir: mkdtempSync(join(tmpdir(), 'donjon-t-')),
    quotas: { maxKeepsPerTenant: 1 },
    ...options,
  });
}

function hostCode(code: string): (e: unknown) => boolean {
  return (e: unknown) => (e as { hostCode?: string }).hostCode === code;
}

async function expectFailedRecords(m: KeepManager, count: number, reason: RegExp): Promise<void> {
  const records = m.store.list();
  assert.equal(records.length, count);
  for (const r of records) {
    assert.equal(r.state, 'failed', JSON.stringify(r));
    assert.match(r.error ?? '', reason);
    assert.deepEqual(
      m.store.events(r.id).map((e) => e.state),
      ['creating', 'failed'],
    );
  }
}

describe('a create that fails after its record is inserted', () => {
  test('a Keep Loader that cannot start: the record ends failed with its stderr, and the quota is free', async () => {
    for (const detachKeeps of [false, true]) {
      const m = manager({ keepldrPath: join(tmpdir(), 'no-such-dir', 'keepldr.cjs'), detachKeeps });
      const client = new KeepManagerClient(await m.listen());
      try {
        // Twice: a record left `creating` would make the second one ERR_API_QUOTA_EXCEEDED.
        for (let i = 0; i < 2; i++) {
          await assert.rejects(client.createKeep('nil'), hostCode('ERR_KEEP_START_FAILED'));
        }
        await expectFailedRecords(m, 2, /^the Keep Loader ended \(status 1\): .*Cannot find module/);
      } finally {
        await m.close();
      }
    }
  });

  test('a run folder removed after start: the record ends failed with the reason', async () => {
    for (const detachKeeps of [false, true]) {
      const runDir = mkdtempSync(join(tmpdir(), 'donjon-t-'));
      const m = manager({ runDir, detachKeeps });
      const client = new KeepManagerClient(await m.listen());
      try {
        rmSync(runDir, { recursive: true });
        for (let i = 0; i < 2; i++) {
          await assert.rejects(client.createKeep('nil'), hostCode('ERR_KEEP_START_FAILED'));
        }
        await expectFailedRecords(m, 2, /ENOENT|EACCES|no such file|permission denied/i);
      } finally {
        await m.close();
      }
    }
  });

  test('a systemd-run that is not there: the record ends failed saying so', async () => {
    const path = process.env['PATH'];
    process.env['PATH'] = mkdtempSync(join(tmpdir(), 'donjon-empty-path-'));
    const m = manager({ detachKeeps: true, launcher: 'systemd' });
    try {
      const client = new KeepManagerClient(await m.listen());
      await assert.rejects(client.createKeep('nil'), hostCode('ERR_KEEP_START_FAILED'));
      await expectFailedRecords(m, 1, /^systemd-run failed: /);
    } finally {
      process.env['PATH'] = path;
      await m.close();
    }
  });
});

describe('a create answered once the Keep is being started (wait: started)', () => {
  const run = (client: KeepManagerClient, keep: Awaited<ReturnType<KeepManagerClient['createKeep']>>) => {
    let out = '';
    const stdout = new PassThrough();
    stdout.on('data', (c: Buffer) => {
      out += c.toString('utf8');
    });
    const result = runWorkload({
      host: client,
      keep: Promise.resolve(keep),
      backend: 'nil',
      insecure: true,
      wasm: new Uint8Array(readFileSync(example('hello'))),
      args: ['hello', 'early'],
      env: {},
      stdin: null,
      stdout,
      stderr: new PassThrough(),
      policy: { measurements: [] },
    });
    return { result, output: () => out };
  };

  test('answers a Keep still creating; its channel, opened at once, waits for it and runs the workload', async () => {
    const m = manager();
    const client = new KeepManagerClient(await m.listen());
    try {
      const keep = await client.createKeep('nil', undefined, undefined, { wait: 'started' });
      // A Keep's start takes a Node start: the answer comes before it.
      assert.equal(keep.state, 'creating');
      const { result, output } = run(client, keep);
      assert.deepEqual((await result).outcome, { kind: 'exit', code: 0 });
      assert.equal(output(), 'Hello, early!\n');
    } finally {
      await m.close();
    }
  });

  test('a Keep that then fails to start: the record ends failed, and the run says so as a waiting create would', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'donjon-t-'));
    const runtimePath = join(dir, 'keep.cjs');
    writeFileSync(runtimePath, "process.stderr.write('this runtime cannot start\\n'); process.exit(3);\n");
    const m = manager({ runtimePath });
    const client = new KeepManagerClient(await m.listen());
    try {
      const keep = await client.createKeep('nil', undefined, undefined, { wait: 'started' });
      assert.equal(keep.state, 'creating');
      await assert.rejects(run(client, keep).result, (e: unknown) => {
        assert.ok(hostCode('ERR_KEEP_START_FAILED')(e), String(e));
        assert.match((e as Error).message, /Cannot start the Keep: .*status 3/);
        return true;
      });
      await expectFailedRecords(m, 1, /status 3/);
    } finally {
      await m.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
