import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { preopensOf } from '../../src/keep/dirs.ts';
import { KeepError } from '../../src/keep/errors.ts';

const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s));

test('preopensOf() rebuilds trees from relative paths, implying folders', () => {
  const trees = preopensOf([
    {
      guest: '/data',
      entries: [
        { path: 'a.txt', data: bytes('A') },
        { path: 'sub/deeper/b.txt', data: bytes('B') },
        { path: 'empty' },
      ],
    },
    { guest: 'other', entries: [] },
  ]);
  assert.deepEqual(Object.keys(trees), ['/data', 'other']);
  const data = trees['/data'] as Record<string, unknown>;
  assert.deepEqual(Object.keys(data).sort(), ['a.txt', 'empty', 'sub']);
  assert.deepEqual(
    (data['sub'] as Record<string, Record<string, Uint8Array>>)['deeper']!['b.txt'],
    bytes('B'),
  );
  assert.deepEqual(Object.keys(data['empty'] as object), []);
});

test('preopensOf() keeps a name like __proto__ an ordinary entry', () => {
  const trees = preopensOf([{ guest: '/', entries: [{ path: '__proto__', data: bytes('x') }] }]);
  const root = trees['/'] as Record<string, unknown>;
  assert.ok(Object.hasOwn(root, '__proto__'));
  assert.equal(Object.getPrototypeOf(root), null);
});

test('preopensOf() refuses escaping paths, duplicates and file/folder clashes', () => {
  const refuse = (dirs: Parameters<typeof preopensOf>[0], pattern: RegExp): void => {
    assert.throws(
      () => preopensOf(dirs),
      (e: unknown) =>
        e instanceof KeepError && e.code === 'ERR_DEPLOY_CONFIG_INVALID' && pattern.test(e.message),
    );
  };
  for (const path of ['../etc/passwd', '/etc/passwd', 'a/../b', './a', 'a//b', '', 'a/', 'nul\0']) {
    refuse([{ guest: '/', entries: [{ path, data: bytes('x') }] }], /relative path/);
  }
  refuse([{ guest: '', entries: [] }], /guest path/);
  refuse(
    [
      { guest: '/', entries: [] },
      { guest: '/', entries: [] },
    ],
    /twice/,
  );
  refuse([{ guest: '/', entries: [{ path: 'a' }, { path: 'a' }] }], /twice/);
  refuse(
    [
      {
        guest: '/',
        entries: [
          { path: 'a', data: bytes('1') },
          { path: 'a/b', data: bytes('2') },
        ],
      },
    ],
    /beneath a file/,
  );
  refuse(
    [
      {
        guest: '/',
        entries: [
          { path: 'a/b', data: bytes('2') },
          { path: 'a', data: bytes('1') },
        ],
      },
    ],
    /file and a folder/,
  );
});

test('preopensOf() lets only KeepError escape', () => {
  const entry = fc.record(
    {
      path: fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('a', 'a/b', 'a/b/c', '..', 'b')),
      data: fc.uint8Array({ maxLength: 4 }),
    },
    { requiredKeys: ['path'] },
  );
  fc.assert(
    fc.property(
      fc.array(
        fc.record({ guest: fc.string({ maxLength: 5 }), entries: fc.array(entry, { maxLength: 6 }) }),
        { maxLength: 3 },
      ),
      (dirs) => {
        try {
          preopensOf(dirs);
        } catch (error) {
          assert.ok(error instanceof KeepError, String(error));
        }
      },
    ),
    { numRuns: 400 },
  );
});
