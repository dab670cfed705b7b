import assert from 'node:assert/strict';
import { test } from 'node:test';
import { errno } from '../../src/wasi/abi.ts';
import {
  type DirNode,
  type FileNode,
  type Lookup,
  MemFs,
  measureTree,
  validName,
} from '../../src/wasi/fs.ts';

const clock = (): bigint => 1_000n;

function fs(capacity = 1024): MemFs {
  return new MemFs(clock, capacity);
}

function found(r: Lookup | number): Lookup {
  assert.equal(typeof r, 'object', `lookup failed with errno ${String(r)}`);
  return r as Lookup;
}

test('validName() accepts ordinary names and refuses separators, dots, NUL and long names', () => {
  for (const ok of ['a', 'file.txt', '...', 'ü', 'x'.repeat(255)]) assert.equal(validName(ok), true, ok);
  for (const bad of ['', '.', '..', 'a/b', 'a\0', 'x'.repeat(256), 'é'.repeat(128)]) {
    assert.equal(validName(bad), false, JSON.stringify(bad));
  }
});

test('measureTree() counts bytes and nodes and refuses malformed trees', () => {
  assert.deepEqual(measureTree({ a: Uint8Array.of(1, 2), d: { b: new Uint8Array(5), e: {} } }), {
    bytes: 7,
    nodes: 5,
  });
  assert.throws(() => measureTree({ 'a/b': new Uint8Array(0) }), TypeError);
  assert.throws(() => measureTree({ a: 'text' }), TypeError);
  assert.throws(() => measureTree({ a: [1] }), TypeError);
  assert.throws(() => measureTree(null), TypeError);
  let deep: Record<string, unknown> = {};
  for (let i = 0; i < 70; i++) deep = { d: deep };
  assert.throws(() => measureTree(deep), RangeError);
});

test('MemFs.importTree() copies the bytes and refuses a tree over the capacity', () => {
  const bytes = Uint8Array.of(1, 2, 3);
  const m = fs(3);
  const root = m.importTree({ f: bytes });
  bytes[0] = 9;
  assert.deepEqual([...(root.entries.get('f') as FileNode).data.subarray(0, 3)], [1, 2, 3]);
  assert.equal(m.usedBytes, 3);
  assert.throws(() => fs(2).importTree({ f: bytes }), RangeError);
});

test('MemFs.lookup() resolves ., .. and symlinks inside the start directory only', () => {
  const m = fs();
  const root = m.importTree({ d: { f: Uint8Array.of(1) } });
  const d = root.entries.get('d') as DirNode;
  assert.equal(found(m.lookup(root, 'd/f', false)).node, d.entries.get('f'));
  assert.equal(found(m.lookup(root, 'd/..', false)).node, root);
  assert.equal(found(m.lookup(root, './d/./', false)).node, d);
  assert.equal(found(m.lookup(root, 'd/', false)).trailingSlash, true);
  assert.equal(m.lookup(root, '..', false), errno.perm);
  assert.equal(m.lookup(d, '../d/f', false), errno.perm, 'd is its own boundary');
  assert.equal(m.lookup(root, '/d', false), errno.perm);
  assert.equal(m.lookup(root, 'd/f/g', false), errno.notdir);
  assert.equal(m.lookup(root, 'x/f', false), errno.noent);
  const missing = found(m.lookup(root, 'd/new', false));
  assert.equal(missing.node, undefined);
  assert.equal(missing.parent, d);
  assert.equal(missing.name, 'new');
  m.createSymlink(root, 'l', 'd/f');
  m.createSymlink(root, 'ld', 'd');
  assert.equal(found(m.lookup(root, 'l', false)).node?.type, 'symlink');
  assert.equal(found(m.lookup(root, 'l', true)).node?.type, 'file');
  assert.equal(found(m.lookup(root, 'ld/f', false)).node?.type, 'file');
  m.createSymlink(root, 'a', 'b');
  m.createSymlink(root, 'b', 'a');
  assert.equal(m.lookup(root, 'a', true), errno.loop);
  assert.equal(m.lookup(root, 'a/x', false), errno.loop);
});

test('MemFs.resize() and write() keep the byte count and refuse growth past the capacity', () => {
  const m = fs(100);
  const root = m.importTree({});
  const f = m.createFile(root, 'f') as FileNode;
  assert.equal(m.write(f, 10, Uint8Array.of(7)), errno.success);
  assert.equal(f.size, 11);
  assert.equal(m.usedBytes, 11);
  assert.equal(f.data[0], 0);
  assert.equal(m.resize(f, 101), errno.nospc);
  assert.equal(m.resize(f, 100), errno.success);
  assert.ok(f.data.length <= 100, 'spare room never passes the budget');
  assert.equal(m.resize(f, 5), errno.success);
  assert.equal(m.usedBytes, 5);
  assert.equal(m.resize(f, -1), errno.fbig);
  assert.equal(m.write(f, 200, Uint8Array.of(1)), errno.nospc);
  const dst = new Uint8Array(10);
  assert.equal(m.read(f, 0, dst), 5);
  assert.equal(m.read(f, 5, dst), 0);
});

test('MemFs.remove() frees an unlinked file only when its last descriptor closes', () => {
  const m = fs(100);
  const root = m.importTree({ f: new Uint8Array(40) });
  const f = root.entries.get('f') as FileNode;
  m.opened(f);
  m.remove(root, 'f');
  assert.equal(m.usedBytes, 40);
  m.closed(f);
  assert.equal(m.usedBytes, 0);
  const g = m.createFile(root, 'g') as FileNode;
  m.write(g, 0, new Uint8Array(10));
  m.link(g, root, 'h');
  m.remove(root, 'g');
  assert.equal(m.usedBytes, 10, 'still reachable as h');
  m.remove(root, 'h');
  assert.equal(m.usedBytes, 0);
});

test('MemFs caps the number of nodes', () => {
  const m = new MemFs(clock, 1024, 3);
  const root = m.importTree({});
  assert.equal(typeof m.createFile(root, 'a'), 'object');
  assert.equal(typeof m.createDirectory(root, 'b'), 'object');
  assert.equal(m.createFile(root, 'c'), errno.nospc);
  m.remove(root, 'a');
  assert.equal(typeof m.createSymlink(root, 'c', 'b'), 'object');
});

test('MemFs.rename() replaces the target and contains() spots moves into oneself', () => {
  const m = fs();
  const root = m.importTree({ a: Uint8Array.of(1), b: Uint8Array.of(2, 2), d: { e: {} } });
  m.rename(root, 'a', root, 'b');
  assert.deepEqual([...root.entries.keys()].sort(), ['b', 'd']);
  assert.equal(m.usedBytes, 1, 'the replaced file was freed');
  const d = root.entries.get('d') as DirNode;
  assert.equal(m.contains(d, d.entries.get('e')!), true);
  assert.equal(m.contains(d, root), false);
});
