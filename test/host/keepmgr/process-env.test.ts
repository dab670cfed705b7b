import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { KeepManagerClient } from '../../../src/client/index.ts';
import { KeepManager } from '../../../src/host/index.ts';
import { PROCESS_ENV } from '../../../src/host/keepldr/keep-process.ts';
import { builtFile } from '../../../src/paths.ts';

/**
 * A process's environment from /proc, its entries joined by ':'. glibc's loader may write a NUL over each ':'
 * of GLIBC_TUNABLES in place while it reads them, which /proc shows as separate entries: joined, both read the
 * same. Node adds NODE_CHANNEL_* to a child it opens an IPC channel to (the Keep's fd 5): left out.
 */
function environOf(pid: number): string {
  return readFileSync(`/proc/${pid}/environ`, 'utf8')
    .split('\0')
    .filter((entry) => entry !== '' && !entry.startsWith('NODE_CHANNEL_'))
    .join(':');
}

const expected = Object.entries(PROCESS_ENV)
  .map(([name, value]) => `${name}=${value}`)
  .join(':');

describe('the environment of a Keep Loader and its Keep', () => {
  test('is the allocator settings and nothing of the host, attached or detached', async () => {
    assert.ok(Object.keys(PROCESS_ENV).length > 0);
    // Something the host has, which must not reach either process.
    process.env['DONJON_TEST_HOST_ONLY'] = 'host';
    try {
      for (const detachKeeps of [false, true]) {
        const m = new KeepManager({
          runtimePath: builtFile('keep.cjs'),
          keepldrPath: builtFile('keepldr.cjs'),
          runDir: mkdtempSync(join(tmpdir(), 'donjon-t-')),
          detachKeeps,
        });
        const client = new KeepManagerClient(await m.listen());
        let id: string | undefined;
        try {
          id = (await client.createKeep('nil')).id;
          const keep = await client.getKeep(id);
          assert.ok(keep.keepldrPid !== undefined && keep.keepPid !== undefined, JSON.stringify(keep));
          assert.equal(environOf(keep.keepldrPid), expected, 'the Keep Loader');
          assert.equal(environOf(keep.keepPid), expected, 'the Keep');
        } finally {
          // A detached Keep Loader outlives its Keep Manager: its Keep is stopped first.
          if (id !== undefined) await client.stopKeep(id).catch(() => {});
          await m.close();
        }
      }
    } finally {
      delete process.env['DONJON_TEST_HOST_ONLY'];
    }
  });
});
