import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { nodeTsmFs, TSM_REPORT_ROOT } from '../../../../src/host/backends/tsm/fs.ts';

const base = mkdtempSync(join(tmpdir(), 'donjon-tsm-fs-'));
after(() => rmSync(base, { recursive: true, force: true }));

describe('nodeTsmFs()', () => {
  test('nodeTsmFs() defaults to the kernel report directory', () => {
    assert.equal(TSM_REPORT_ROOT, '/sys/kernel/config/tsm/report');
  });

  test('nodeTsmFs() creates and removes a report directory', async () => {
    const fs = nodeTsmFs();
    const dir = join(base, 'r1');
    await fs.mkdir(dir);
    assert.ok(existsSync(dir));
    await assert.rejects(fs.mkdir(dir), { code: 'EEXIST' });
    await fs.rmdir(dir);
    assert.equal(existsSync(dir), false);
    await assert.rejects(fs.rmdir(dir), { code: 'ENOENT' });
  });

  test('nodeTsmFs() writes an existing attribute in place and never creates one', async () => {
    const fs = nodeTsmFs();
    const attr = join(base, 'inblob');
    await assert.rejects(fs.write(attr, new Uint8Array(64)), { code: 'ENOENT' });
    assert.equal(existsSync(attr), false);
    writeFileSync(attr, '');
    assert.equal(await fs.write(attr, new Uint8Array(64).fill(7)), 64);
    assert.deepEqual(new Uint8Array(readFileSync(attr)), new Uint8Array(64).fill(7));
  });

  test('nodeTsmFs() reads a whole attribute as bytes', async () => {
    const attr = join(base, 'generation');
    writeFileSync(attr, '42\n');
    const bytes = await nodeTsmFs().read(attr);
    assert.ok(bytes instanceof Uint8Array);
    assert.equal(Buffer.from(bytes).toString(), '42\n');
    await assert.rejects(nodeTsmFs().read(join(base, 'missing')), { code: 'ENOENT' });
  });

  test('nodeTsmFs() leaves a non-empty directory in place', async () => {
    const dir = join(base, 'full');
    await nodeTsmFs().mkdir(dir);
    writeFileSync(join(dir, 'x'), '');
    await assert.rejects(nodeTsmFs().rmdir(dir), { code: 'ENOTEMPTY' });
  });
});
