// Read-only pre-opened directories (the Keep's secrets): the module reads and lists what is there, and can
// write, make, truncate, rename or remove nothing beneath them, however it opens them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { errno, oflags, rights } from '../../src/wasi/abi.ts';
import { type H, harness, iovecs } from './harness.ts';

const SECRETS = 3;
const SCRATCH = 4;
const PATH_AT = 30000;
const DATA_AT = 40000;
const RESULT = 100;
const READ = rights.fdRead | rights.fdSeek | rights.fdTell | rights.fdFilestatGet;
const WRITE = rights.fdWrite;

function h(): H {
  return harness({
    preopens: {
      '/secrets': { db: Buffer.from('s3cret'), deeper: { key: Buffer.from('k') } },
      '/tmp': {},
    },
    readOnlyPreopens: ['/secrets'],
  });
}

function str(x: H, s: string, at = PATH_AT): [number, number] {
  const b = Buffer.from(s);
  x.u8().set(b, at);
  return [at, b.length];
}

function open(x: H, dir: number, path: string, o: { oflags?: number; base?: bigint } = {}) {
  const [p, n] = str(x, path);
  const err = x.call('path_open', dir, 0, p, n, o.oflags ?? 0, o.base ?? READ, -1n, 0, RESULT);
  return { err, fd: err === errno.success ? x.dv().getUint32(RESULT, true) : -1 };
}

function read(x: H, fd: number): string {
  iovecs(x, 20000, [[DATA_AT, 256]]);
  assert.equal(x.call('fd_read', fd, 20000, 1, RESULT), errno.success);
  return Buffer.from(x.u8().subarray(DATA_AT, DATA_AT + x.dv().getUint32(RESULT, true))).toString();
}

function pathCall(x: H, name: string, dir: number, path: string): number {
  const [p, n] = str(x, path);
  return x.call(name, dir, p, n);
}

test('a read-only directory is read as any other', () => {
  const x = h();
  const { err, fd } = open(x, SECRETS, 'db');
  assert.equal(err, errno.success);
  assert.equal(read(x, fd), 's3cret');
  assert.equal(read(x, open(x, SECRETS, 'deeper/key').fd), 'k');
});

test('nothing beneath a read-only directory can be opened for writing, created or truncated', () => {
  const x = h();
  assert.equal(open(x, SECRETS, 'db', { base: READ | WRITE }).err, errno.rofs);
  assert.equal(open(x, SECRETS, 'new', { oflags: oflags.creat }).err, errno.notcapable);
  assert.equal(open(x, SECRETS, 'db', { oflags: oflags.trunc }).err, errno.notcapable);
  // A folder opened from it hands on no more than it has.
  const sub = open(x, SECRETS, 'deeper', { oflags: oflags.directory, base: (1n << 30n) - 1n - WRITE });
  assert.equal(sub.err, errno.success);
  assert.equal(open(x, sub.fd, 'key', { base: READ | WRITE }).err, errno.rofs);
  assert.equal(open(x, sub.fd, 'more', { oflags: oflags.creat }).err, errno.notcapable);
  // A descriptor of the file cannot write even if asked for more rights than it got.
  const fd = open(x, SECRETS, 'db').fd;
  iovecs(x, 20000, [[DATA_AT, 1]]);
  assert.notEqual(x.call('fd_write', fd, 20000, 1, RESULT), errno.success);
});

test('nothing beneath a read-only directory can be removed, made or renamed', () => {
  const x = h();
  assert.equal(pathCall(x, 'path_unlink_file', SECRETS, 'db'), errno.notcapable);
  assert.equal(pathCall(x, 'path_create_directory', SECRETS, 'd'), errno.notcapable);
  assert.equal(pathCall(x, 'path_remove_directory', SECRETS, 'deeper'), errno.notcapable);
  const [p, n] = str(x, 'db');
  const [q, m] = str(x, 'moved', PATH_AT + 100);
  assert.equal(x.call('path_rename', SECRETS, p, n, SCRATCH, q, m), errno.notcapable);
  assert.equal(read(x, open(x, SECRETS, 'db').fd), 's3cret');
});

test('a writable directory beside it stays writable', () => {
  const x = h();
  assert.equal(open(x, SCRATCH, 'new', { oflags: oflags.creat, base: READ | WRITE }).err, errno.success);
});
