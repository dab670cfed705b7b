import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ClientError, readHostDirectory } from '../../src/client/index.ts';

function tree(): string {
  const dir = mkdtempSync(join(tmpdir(), 'donjon-dir-'));
  mkdirSync(join(dir, 'sub', 'deep'), { recursive: true });
  mkdirSync(join(dir, 'empty'));
  writeFileSync(join(dir, 'b.txt'), 'bee');
  writeFileSync(join(dir, 'a.txt'), 'ay');
  writeFileSync(join(dir, 'sub', 'deep', 'c.bin'), Buffer.from([0, 1, 2]));
  return dir;
}

const invalid = (pattern: RegExp) => (e: unknown) =>
  e instanceof ClientError && e.code === 'ERR_CONFIG_INVALID' && pattern.test(e.message);

test('readHostDirectory() copies regular files and folders, sorted, by relative path', () => {
  const entries = readHostDirectory(tree());
  assert.deepEqual(
    entries.map((e) => [e.path, e.data === undefined ? null : Buffer.from(e.data).toString('hex')]),
    [
      ['a.txt', Buffer.from('ay').toString('hex')],
      ['b.txt', Buffer.from('bee').toString('hex')],
      ['empty', null],
      ['sub', null],
      ['sub/deep', null],
      ['sub/deep/c.bin', '000102'],
    ],
  );
});

test('readHostDirectory() refuses symbolic links rather than follow them out of the tree', () => {
  const dir = tree();
  symlinkSync('/etc', join(dir, 'escape'));
  assert.throws(() => readHostDirectory(dir), invalid(/escape is a symbolic link/));
});

test('readHostDirectory() enforces its byte and entry limits, and names a missing directory', () => {
  const dir = tree();
  assert.throws(() => readHostDirectory(dir, { maxBytes: 4 }), invalid(/more than 4 bytes/));
  assert.throws(() => readHostDirectory(dir, { maxEntries: 3 }), invalid(/more than 3 files and folders/));
  assert.throws(() => readHostDirectory(join(dir, 'nope')), invalid(/no such directory/));
  assert.throws(() => readHostDirectory(join(dir, 'a.txt')), invalid(/not a directory/));
});
