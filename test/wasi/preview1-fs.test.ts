import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ALL_RIGHTS, DIRECTORY_RIGHTS, errno, FILE_RIGHTS, oflags, rights } from '../../src/wasi/abi.ts';
import type { WasiTree } from '../../src/wasi/fs.ts';
import { WasiStop } from '../../src/wasi/preview1.ts';
import { END, type H, type HarnessOptions, harness, iovecs } from './harness.ts';

// The filesystem calls of the preview1 host, through the same forwarding module as preview1.test.ts, on
// a pre-opened in-memory directory (descriptor 3).

const ROOT = 3;
const RW = rights.fdRead | rights.fdWrite | rights.fdSeek | rights.fdTell | rights.fdFilestatGet;
const PATH_AT = 30000;
const DATA_AT = 40000;
const RESULT = 100;

function fsHarness(tree: WasiTree = {}, o: HarnessOptions = {}): H {
  return harness({ preopens: { '/': tree }, ...o });
}

/** Places `s` in guest memory and returns [ptr, len]. */
function str(h: H, s: string | Uint8Array, at = PATH_AT): [number, number] {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  h.u8().set(b, at);
  return [at, b.length];
}

function open(
  h: H,
  path: string,
  o: {
    dir?: number;
    oflags?: number;
    base?: bigint;
    inheriting?: bigint;
    fdflags?: number;
    follow?: boolean;
  } = {},
): { err: number; fd: number } {
  const [p, n] = str(h, path);
  const err = h.call(
    'path_open',
    o.dir ?? ROOT,
    o.follow === true ? 1 : 0,
    p,
    n,
    o.oflags ?? 0,
    o.base ?? RW,
    o.inheriting ?? 0n,
    o.fdflags ?? 0,
    RESULT,
  );
  return { err, fd: err === errno.success ? h.dv().getUint32(RESULT, true) : -1 };
}

function openOk(h: H, path: string, o: Parameters<typeof open>[2] = {}): number {
  const r = open(h, path, o);
  assert.equal(r.err, errno.success, `path_open(${path}) failed with ${r.err}`);
  return r.fd;
}

function write(h: H, fd: number, s: string): { err: number; n: number } {
  const [p, n] = str(h, s, DATA_AT);
  iovecs(h, 20000, [[p, n]]);
  const err = h.call('fd_write', fd, 20000, 1, RESULT);
  return { err, n: h.dv().getUint32(RESULT, true) };
}

function read(h: H, fd: number, max = 256): { err: number; text: string } {
  iovecs(h, 20000, [[DATA_AT, max]]);
  const err = h.call('fd_read', fd, 20000, 1, RESULT);
  const n = err === errno.success ? h.dv().getUint32(RESULT, true) : 0;
  return { err, text: Buffer.from(h.u8().subarray(DATA_AT, DATA_AT + n)).toString() };
}

function pathCall(h: H, name: string, path: string, dir = ROOT): number {
  const [p, n] = str(h, path);
  return h.call(name, dir, p, n);
}

function filestat(h: H, fd: number) {
  assert.equal(h.call('fd_filestat_get', fd, 500), errno.success);
  const dv = h.dv();
  return {
    dev: dv.getBigUint64(500, true),
    ino: dv.getBigUint64(508, true),
    filetype: dv.getUint8(516),
    nlink: dv.getBigUint64(524, true),
    size: dv.getBigUint64(532, true),
    atim: dv.getBigUint64(540, true),
    mtim: dv.getBigUint64(548, true),
  };
}

function pathStat(
  h: H,
  path: string,
  follow: boolean,
): { err: number; filetype: number; ino: bigint; nlink: bigint } {
  const [p, n] = str(h, path);
  const err = h.call('path_filestat_get', ROOT, follow ? 1 : 0, p, n, 500);
  return {
    err,
    filetype: h.u8()[516]!,
    ino: h.dv().getBigUint64(508, true),
    nlink: h.dv().getBigUint64(524, true),
  };
}

test('fd_prestat_get() and fd_prestat_dir_name() describe the pre-opened directory', () => {
  const h = harness({ preopens: { '/': {}, '/data': {} } });
  assert.equal(h.call('fd_prestat_get', 3, RESULT), errno.success);
  assert.deepEqual([h.u8()[RESULT], h.dv().getUint32(RESULT + 4, true)], [0, 1]);
  assert.equal(h.call('fd_prestat_get', 4, RESULT), errno.success);
  assert.equal(h.dv().getUint32(RESULT + 4, true), 5);
  assert.equal(h.call('fd_prestat_dir_name', 4, 200, 5), errno.success);
  assert.equal(Buffer.from(h.u8().subarray(200, 205)).toString(), '/data');
  assert.equal(h.call('fd_prestat_dir_name', 4, 200, 4), errno.nametoolong);
  assert.equal(h.call('fd_prestat_dir_name', 4, END - 2, 5), errno.fault);
  assert.equal(h.call('fd_prestat_get', 5, RESULT), errno.badf);
  assert.equal(h.call('fd_prestat_get', 3, END - 4), errno.fault);
});

test('the pre-opened directory holds directory rights and hands on every right', () => {
  const h = fsHarness();
  assert.equal(h.call('fd_fdstat_get', ROOT, 0), errno.success);
  assert.equal(h.u8()[0], 3);
  assert.equal(h.dv().getBigUint64(8, true), DIRECTORY_RIGHTS);
  assert.equal(h.dv().getBigUint64(16, true), ALL_RIGHTS);
  assert.equal(filestat(h, ROOT).filetype, 3);
});

test('path_open() opens a supplied file, whose bytes fd_read returns', () => {
  const h = fsHarness({ docs: { 'a.txt': Buffer.from('alpha\n') } });
  const fd = openOk(h, 'docs/a.txt');
  assert.ok(fd > 3);
  assert.deepEqual(read(h, fd), { err: errno.success, text: 'alpha\n' });
  assert.deepEqual(read(h, fd), { err: errno.success, text: '' });
  const st = filestat(h, fd);
  assert.equal(st.filetype, 4);
  assert.equal(st.size, 6n);
  assert.equal(st.dev, 1n);
  assert.equal(h.call('fd_fdstat_get', fd, 0), errno.success);
  assert.equal(h.u8()[0], 4);
  assert.equal(h.dv().getBigUint64(8, true), RW & FILE_RIGHTS);
});

test('the caller’s tree is copied: changing it later changes nothing the module sees', () => {
  const bytes = Buffer.from('original');
  const tree = { f: bytes };
  const h = fsHarness(tree);
  bytes.fill(0x41);
  (tree as Record<string, unknown>)['g'] = Buffer.from('late');
  assert.equal(read(h, openOk(h, 'f')).text, 'original');
  assert.equal(open(h, 'g').err, errno.noent);
});

test('path_open() with CREAT makes a file that writes, seeks and reads back', () => {
  const h = fsHarness();
  const fd = openOk(h, 'new.txt', { oflags: oflags.creat });
  assert.deepEqual(write(h, fd, 'hello world'), { err: errno.success, n: 11 });
  assert.equal(h.call('fd_tell', fd, RESULT), errno.success);
  assert.equal(h.dv().getBigUint64(RESULT, true), 11n);
  assert.equal(h.call('fd_seek', fd, 6n, 0, RESULT), errno.success);
  assert.equal(read(h, fd).text, 'world');
  assert.equal(h.call('fd_seek', fd, -5n, 2, RESULT), errno.success);
  assert.equal(h.dv().getBigUint64(RESULT, true), 6n);
  assert.equal(h.call('fd_seek', fd, -7n, 1, RESULT), errno.inval);
  assert.equal(h.call('fd_seek', fd, 0n, 3, RESULT), errno.inval);
  assert.equal(h.call('fd_seek', fd, 0n, 0, END - 4), errno.fault);
  // Seeking past the end and writing leaves a zero-filled gap.
  assert.equal(h.call('fd_seek', fd, 13n, 0, RESULT), errno.success);
  write(h, fd, '!');
  assert.equal(filestat(h, fd).size, 14n);
  h.call('fd_seek', fd, 0n, 0, RESULT);
  assert.equal(read(h, fd).text, 'hello world\0\0!');
});

test('an APPEND descriptor always writes at the end', () => {
  const h = fsHarness({ log: Buffer.from('one\n') });
  const fd = openOk(h, 'log', { fdflags: 1 });
  write(h, fd, 'two\n');
  h.call('fd_seek', fd, 0n, 0, RESULT);
  write(h, fd, 'three\n');
  h.call('fd_seek', fd, 0n, 0, RESULT);
  assert.equal(read(h, fd).text, 'one\ntwo\nthree\n');
});

test('fd_pread() and fd_pwrite() leave the offset alone', () => {
  const h = fsHarness({ f: Buffer.from('0123456789') });
  const fd = openOk(h, 'f');
  iovecs(h, 20000, [[DATA_AT, 3]]);
  assert.equal(h.call('fd_pread', fd, 20000, 1, 4n, RESULT), errno.success);
  assert.equal(Buffer.from(h.u8().subarray(DATA_AT, DATA_AT + 3)).toString(), '456');
  assert.equal(h.call('fd_pread', fd, 20000, 1, 99n, RESULT), errno.success);
  assert.equal(h.dv().getUint32(RESULT, true), 0);
  str(h, 'ab', DATA_AT);
  iovecs(h, 20000, [[DATA_AT, 2]]);
  assert.equal(h.call('fd_pwrite', fd, 20000, 1, 8n, RESULT), errno.success);
  assert.equal(read(h, fd).text, '01234567ab');
  assert.equal(h.call('fd_pread', ROOT, 20000, 1, 0n, RESULT), errno.isdir);
});

test('path_open() reports missing files, existing ones under EXCL and type mismatches', () => {
  const h = fsHarness({ f: Buffer.from('x'), d: {} });
  assert.equal(open(h, 'missing').err, errno.noent);
  assert.equal(open(h, 'missing/deeper', { oflags: oflags.creat }).err, errno.noent);
  assert.equal(open(h, 'f', { oflags: oflags.creat | oflags.excl }).err, errno.exist);
  assert.equal(open(h, 'f', { oflags: oflags.directory }).err, errno.notdir);
  assert.equal(open(h, 'f/').err, errno.notdir);
  assert.equal(open(h, 'f/x').err, errno.notdir);
  assert.equal(open(h, 'd', { oflags: oflags.trunc }).err, errno.isdir);
  assert.equal(open(h, 'd', { base: rights.fdWrite }).err, errno.isdir);
  assert.equal(open(h, 'new/', { oflags: oflags.creat }).err, errno.isdir);
  assert.equal(open(h, 'new', { oflags: oflags.creat | oflags.directory }).err, errno.inval);
  assert.equal(open(h, 'f', { oflags: 0x10 }).err, errno.inval);
  assert.equal(open(h, 'd', { oflags: oflags.directory, base: rights.fdReaddir }).err, errno.success);
  assert.equal(open(h, '').err, errno.noent);
});

test('paths cannot leave the directory they start from', () => {
  const h = fsHarness({ d: { f: Buffer.from('in') } });
  assert.equal(open(h, '/d/f').err, errno.perm);
  assert.equal(open(h, '..').err, errno.perm);
  assert.equal(open(h, 'd/../../d/f').err, errno.perm);
  assert.equal(read(h, openOk(h, 'd/./../d//f')).text, 'in');
  const sub = openOk(h, 'd', { oflags: oflags.directory, base: DIRECTORY_RIGHTS, inheriting: ALL_RIGHTS });
  assert.equal(
    open(h, '../d/f', { dir: sub }).err,
    errno.perm,
    'a subdirectory descriptor is its own boundary',
  );
  assert.equal(read(h, openOk(h, 'f', { dir: sub })).text, 'in');
});

test('path arguments must be in memory, UTF-8 and free of NUL', () => {
  const h = fsHarness({ f: Buffer.from('x') });
  assert.equal(h.call('path_open', ROOT, 0, END - 1, 2, 0, 0n, 0n, 0, RESULT), errno.fault);
  assert.equal(h.call('path_open', ROOT, 0, PATH_AT, 1, 0, 0n, 0n, 0, END - 2), errno.fault);
  const [p, n] = str(h, Uint8Array.of(0x66, 0xff));
  assert.equal(h.call('path_open', ROOT, 0, p, n, 0, 0n, 0n, 0, RESULT), errno.ilseq);
  assert.equal(open(h, 'f\0').err, errno.inval);
  assert.equal(open(h, 'x'.repeat(256)).err, errno.nametoolong);
});

test('rights: a descriptor can do only what it was opened for', () => {
  const h = fsHarness({ f: Buffer.from('data') });
  const ro = openOk(h, 'f', { base: rights.fdRead });
  assert.equal(write(h, ro, 'x').err, errno.badf);
  assert.equal(h.call('fd_seek', ro, 1n, 0, RESULT), errno.notcapable);
  assert.equal(h.call('fd_seek', ro, 0n, 1, RESULT), errno.notcapable, 'fd_tell right missing too');
  assert.equal(h.call('fd_filestat_set_size', ro, 0n), errno.notcapable);
  const wo = openOk(h, 'f', { base: rights.fdWrite | rights.fdTell });
  assert.equal(read(h, wo).err, errno.badf);
  assert.equal(h.call('fd_seek', wo, 0n, 1, RESULT), errno.success, 'SEEK_CUR 0 needs only fd_tell');
  // The directory's inheriting rights bound what a descriptor opened through it can get.
  const dir = openOk(h, '.', { oflags: oflags.directory, base: DIRECTORY_RIGHTS, inheriting: rights.fdRead });
  const masked = openOk(h, 'f', { dir, base: RW });
  assert.equal(h.call('fd_fdstat_get', masked, 0), errno.success);
  assert.equal(h.dv().getBigUint64(8, true), rights.fdRead);
  // Dropping a directory's right to create files refuses CREAT.
  assert.equal(
    h.call('fd_fdstat_set_rights', dir, DIRECTORY_RIGHTS & ~rights.pathCreateFile, rights.fdRead),
    0,
  );
  assert.equal(open(h, 'g', { dir, oflags: oflags.creat }).err, errno.notcapable);
  assert.equal(open(h, 'f', { dir, oflags: oflags.trunc }).err, errno.success);
});

test('directories refuse file calls', () => {
  const h = fsHarness();
  assert.equal(read(h, ROOT).err, errno.badf);
  assert.equal(write(h, ROOT, 'x').err, errno.badf);
  assert.equal(h.call('fd_seek', ROOT, 0n, 0, RESULT), errno.notcapable);
  assert.equal(h.call('fd_tell', ROOT, RESULT), errno.notcapable);
  assert.equal(h.call('fd_allocate', ROOT, 0n, 1n), errno.notcapable);
  assert.equal(h.call('fd_filestat_set_size', ROOT, 0n), errno.notcapable);
  assert.equal(h.call('sock_recv', ROOT, 0, 0, 0, 0, 0), errno.notsock);
  const fd = openOk(h, 'f', { oflags: oflags.creat });
  assert.equal(h.call('fd_readdir', fd, 0, 100, 0n, RESULT), errno.notdir);
  assert.equal(pathCall(h, 'path_create_directory', 'x', fd), errno.notdir);
});

test('fd_readdir() lists ., .. and the entries with resumable cookies', () => {
  const h = fsHarness({ a: Buffer.from('1'), sub: {}, bb: Buffer.from('') });
  const entries = (cookie: bigint, len: number) => {
    assert.equal(h.call('fd_readdir', ROOT, 1000, len, cookie, RESULT), errno.success);
    const used = h.dv().getUint32(RESULT, true);
    const out: [bigint, string, number][] = [];
    for (let at = 1000; at + 24 <= 1000 + used; ) {
      const next = h.dv().getBigUint64(at, true);
      const namlen = h.dv().getUint32(at + 16, true);
      const type = h.u8()[at + 20]!;
      out.push([next, Buffer.from(h.u8().subarray(at + 24, at + 24 + namlen)).toString(), type]);
      at += 24 + namlen;
    }
    return { used, out };
  };
  const all = entries(0n, 4096);
  assert.deepEqual(all.out, [
    [1n, '.', 3],
    [2n, '..', 3],
    [3n, 'a', 4],
    [4n, 'sub', 3],
    [5n, 'bb', 4],
  ]);
  assert.equal(all.used, 5 * 24 + 1 + 2 + 1 + 3 + 2);
  assert.deepEqual(
    entries(3n, 4096).out.map(([, n]) => n),
    ['sub', 'bb'],
  );
  // A buffer too small for the next entry comes back full, the entry cut short.
  assert.equal(entries(2n, 30).used, 30);
  assert.equal(entries(9n, 4096).used, 0);
  assert.equal(h.call('fd_readdir', ROOT, END - 10, 100, 0n, RESULT), errno.fault);
});

test('path_create_directory(), path_remove_directory() and path_unlink_file() follow POSIX', () => {
  const h = fsHarness({ f: Buffer.from('x'), full: { inside: Buffer.from('') } });
  assert.equal(pathCall(h, 'path_create_directory', 'd'), errno.success);
  assert.equal(pathCall(h, 'path_create_directory', 'd'), errno.exist);
  assert.equal(pathCall(h, 'path_create_directory', 'd/e/'), errno.success);
  assert.equal(pathCall(h, 'path_create_directory', '.'), errno.exist);
  assert.equal(pathCall(h, 'path_create_directory', 'nope/e'), errno.noent);
  assert.equal(pathCall(h, 'path_remove_directory', 'd'), errno.notempty);
  assert.equal(pathCall(h, 'path_remove_directory', 'f'), errno.notdir);
  assert.equal(pathCall(h, 'path_remove_directory', '.'), errno.inval);
  assert.equal(pathCall(h, 'path_remove_directory', 'd/e/'), errno.success);
  assert.equal(pathCall(h, 'path_remove_directory', 'd'), errno.success);
  assert.equal(pathCall(h, 'path_remove_directory', 'd'), errno.noent);
  assert.equal(pathCall(h, 'path_unlink_file', 'full'), errno.isdir);
  assert.equal(pathCall(h, 'path_unlink_file', 'f/'), errno.notdir);
  assert.equal(pathCall(h, 'path_unlink_file', 'f'), errno.success);
  assert.equal(pathCall(h, 'path_unlink_file', 'f'), errno.noent);
  assert.equal(open(h, 'f').err, errno.noent);
});

test('a removed directory takes no new entries, even through an open descriptor', () => {
  const h = fsHarness({ d: {} });
  const d = openOk(h, 'd', { oflags: oflags.directory, base: DIRECTORY_RIGHTS, inheriting: ALL_RIGHTS });
  assert.equal(pathCall(h, 'path_remove_directory', 'd'), errno.success);
  assert.equal(open(h, 'f', { dir: d, oflags: oflags.creat }).err, errno.noent);
  assert.equal(pathCall(h, 'path_create_directory', 'x', d), errno.noent);
});

function rename(h: H, from: string, to: string): number {
  const [p1, n1] = str(h, from, PATH_AT);
  const [p2, n2] = str(h, to, PATH_AT + 1000);
  return h.call('path_rename', ROOT, p1, n1, ROOT, p2, n2);
}

test('path_rename() moves and replaces entries under the POSIX rules', () => {
  const h = fsHarness({ a: Buffer.from('A'), b: Buffer.from('B'), d: { x: Buffer.from('') }, e: {} });
  assert.equal(rename(h, 'a', 'b'), errno.success);
  assert.equal(read(h, openOk(h, 'b')).text, 'A');
  assert.equal(open(h, 'a').err, errno.noent);
  assert.equal(rename(h, 'b', 'b'), errno.success);
  assert.equal(rename(h, 'b', 'e'), errno.isdir);
  assert.equal(rename(h, 'e', 'b'), errno.notdir);
  assert.equal(rename(h, 'e', 'd'), errno.notempty);
  assert.equal(rename(h, 'd', 'd/x2'), errno.inval);
  assert.equal(rename(h, 'b/', 'c'), errno.notdir);
  assert.equal(rename(h, 'missing', 'c'), errno.noent);
  assert.equal(rename(h, '.', 'c'), errno.busy);
  assert.equal(rename(h, 'd/', 'e/'), errno.success);
  assert.equal(open(h, 'e/x').err, errno.success);
  assert.equal(open(h, 'd').err, errno.noent);
});

test('symlinks: created, read back, followed on request and refused when they escape or loop', () => {
  const h = fsHarness({ dir: { f: Buffer.from('target') } });
  const symlink = (target: string, name: string): number => {
    const [p1, n1] = str(h, target, PATH_AT);
    const [p2, n2] = str(h, name, PATH_AT + 1000);
    return h.call('path_symlink', p1, n1, ROOT, p2, n2);
  };
  assert.equal(symlink('dir/f', 'link'), errno.success);
  assert.equal(symlink('dir/f', 'link'), errno.exist);
  assert.equal(symlink('/etc/passwd', 'abs'), errno.perm);
  assert.equal(symlink('', 'empty'), errno.noent);
  assert.equal(symlink('x', 'newdir/'), errno.noent);
  const [p, n] = str(h, 'link');
  assert.equal(h.call('path_readlink', ROOT, p, n, 1000, 64, RESULT), errno.success);
  assert.equal(Buffer.from(h.u8().subarray(1000, 1000 + h.dv().getUint32(RESULT, true))).toString(), 'dir/f');
  assert.equal(h.call('path_readlink', ROOT, p, n, 1000, 3, RESULT), errno.success);
  assert.equal(h.dv().getUint32(RESULT, true), 3, 'truncated to the buffer');
  const [fp, fn] = str(h, 'dir/f');
  assert.equal(h.call('path_readlink', ROOT, fp, fn, 1000, 64, RESULT), errno.inval);
  assert.equal(pathStat(h, 'link', false).filetype, 7);
  assert.equal(pathStat(h, 'link', true).filetype, 4);
  assert.equal(open(h, 'link').err, errno.loop, 'not followed: O_NOFOLLOW');
  assert.equal(read(h, openOk(h, 'link', { follow: true })).text, 'target');
  assert.equal(symlink('../..', 'up'), errno.success);
  assert.equal(open(h, 'up/x', { follow: true }).err, errno.perm);
  assert.equal(symlink('loop', 'loop'), errno.success);
  assert.equal(open(h, 'loop', { follow: true }).err, errno.loop);
  assert.equal(symlink('dir', 'dirlink'), errno.success);
  assert.equal(read(h, openOk(h, 'dirlink/f')).text, 'target', 'intermediate links are always followed');
  assert.equal(pathCall(h, 'path_unlink_file', 'dirlink'), errno.success);
  assert.equal(open(h, 'dir/f').err, errno.success, 'unlinking a link leaves its target');
});

test('path_link() adds a name for the same file and refuses directories', () => {
  const h = fsHarness({ f: Buffer.from('shared'), d: {} });
  const link = (from: string, to: string): number => {
    const [p1, n1] = str(h, from, PATH_AT);
    const [p2, n2] = str(h, to, PATH_AT + 1000);
    return h.call('path_link', ROOT, 0, p1, n1, ROOT, p2, n2);
  };
  assert.equal(link('f', 'g'), errno.success);
  assert.equal(link('f', 'g'), errno.exist);
  assert.equal(link('d', 'd2'), errno.perm);
  assert.equal(link('missing', 'x'), errno.noent);
  const a = pathStat(h, 'f', false);
  const b = pathStat(h, 'g', false);
  assert.equal(a.ino, b.ino);
  assert.equal(b.nlink, 2n);
  write(h, openOk(h, 'g'), 'SH');
  assert.equal(read(h, openOk(h, 'f')).text, 'SHared');
  assert.equal(pathCall(h, 'path_unlink_file', 'f'), errno.success);
  assert.equal(pathStat(h, 'g', false).nlink, 1n);
});

test('fd_filestat_set_size() and fd_allocate() resize with zeros, within the capacity', () => {
  const h = fsHarness({ f: Buffer.from('abcdef') }, { fsCapacityBytes: 100 });
  const fd = openOk(h, 'f', { base: RW | rights.fdFilestatSetSize | rights.fdAllocate });
  assert.equal(h.call('fd_filestat_set_size', fd, 3n), errno.success);
  assert.equal(read(h, fd).text, 'abc');
  assert.equal(h.call('fd_filestat_set_size', fd, 5n), errno.success);
  h.call('fd_seek', fd, 0n, 0, RESULT);
  assert.equal(read(h, fd).text, 'abc\0\0', 'shrunk bytes do not come back');
  assert.equal(h.call('fd_allocate', fd, 90n, 10n), errno.success);
  assert.equal(filestat(h, fd).size, 100n);
  assert.equal(h.call('fd_allocate', fd, 0n, 10n), errno.success, 'inside the file: nothing to do');
  assert.equal(h.call('fd_filestat_set_size', fd, 101n), errno.nospc);
  assert.equal(h.call('fd_filestat_set_size', fd, 2n ** 60n), errno.fbig);
  assert.equal(filestat(h, fd).size, 100n);
});

test('writes past the capacity stop with ENOSPC and report what fitted', () => {
  const h = fsHarness({}, { fsCapacityBytes: 10 });
  const fd = openOk(h, 'f', { oflags: oflags.creat });
  assert.deepEqual(write(h, fd, '12345678'), { err: errno.success, n: 8 });
  assert.deepEqual(write(h, fd, 'abc').err, errno.nospc);
  str(h, 'ab', DATA_AT);
  str(h, 'cd', DATA_AT + 10);
  iovecs(h, 20000, [
    [DATA_AT, 2],
    [DATA_AT + 10, 2],
  ]);
  assert.equal(h.call('fd_write', fd, 20000, 2, RESULT), errno.success);
  assert.equal(h.dv().getUint32(RESULT, true), 2, 'the first iovec fitted, the second did not');
  assert.equal(h.call('fd_seek', fd, 2n ** 40n, 0, RESULT), errno.success);
  assert.equal(write(h, fd, 'x').err, errno.nospc);
});

test('an unlinked file stays readable through its descriptor until closed, then frees its bytes', () => {
  const h = fsHarness({}, { fsCapacityBytes: 8 });
  const fd = openOk(h, 'tmp', { oflags: oflags.creat });
  write(h, fd, '12345678');
  assert.equal(pathCall(h, 'path_unlink_file', 'tmp'), errno.success);
  h.call('fd_seek', fd, 0n, 0, RESULT);
  assert.equal(read(h, fd).text, '12345678');
  const other = openOk(h, 'other', { oflags: oflags.creat });
  assert.equal(write(h, other, 'x').err, errno.nospc, 'the unlinked bytes still count');
  assert.equal(h.call('fd_close', fd), errno.success);
  assert.deepEqual(write(h, other, 'x'), { err: errno.success, n: 1 });
});

test('fd_filestat_set_times() and path_filestat_set_times() set or stamp times', () => {
  const h = fsHarness({ f: Buffer.from('') });
  const fd = openOk(h, 'f', { base: RW | rights.fdFilestatSetTimes });
  assert.equal(h.call('fd_filestat_set_times', fd, 111n, 222n, 1 | 4), errno.success);
  assert.deepEqual([filestat(h, fd).atim, filestat(h, fd).mtim], [111n, 222n]);
  assert.equal(h.call('fd_filestat_set_times', fd, 0n, 0n, 2), errno.success);
  assert.equal(filestat(h, fd).atim, h.clock.real);
  assert.equal(h.call('fd_filestat_set_times', fd, 0n, 0n, 1 | 2), errno.inval);
  assert.equal(h.call('fd_filestat_set_times', fd, 0n, 0n, 16), errno.inval);
  const [p, n] = str(h, 'f');
  assert.equal(h.call('path_filestat_set_times', ROOT, 0, p, n, 5n, 6n, 1 | 4), errno.success);
  assert.deepEqual([filestat(h, fd).atim, filestat(h, fd).mtim], [5n, 6n]);
  assert.equal(h.call('path_filestat_set_times', ROOT, 0, p, n, 5n, 6n, 4 | 8), errno.inval);
  const ro = openOk(h, 'f', { base: rights.fdRead });
  assert.equal(h.call('fd_filestat_set_times', ro, 0n, 0n, 2), errno.notcapable);
});

test('fd_renumber() and fd_close() work on pre-opened directories too', () => {
  const h = fsHarness({ f: Buffer.from('x') });
  const dir = openOk(h, '.', { oflags: oflags.directory, base: DIRECTORY_RIGHTS, inheriting: ALL_RIGHTS });
  const ino = filestat(h, dir).ino;
  assert.equal(h.call('fd_renumber', dir, ROOT), errno.success);
  assert.equal(filestat(h, ROOT).ino, ino);
  assert.equal(h.call('fd_fdstat_get', dir, 0), errno.badf);
  assert.equal(h.call('fd_prestat_get', ROOT, RESULT), errno.badf, 'the replacement is not a preopen');
  assert.equal(h.call('fd_close', ROOT), errno.success);
  assert.equal(open(h, 'f').err, errno.badf);
});

test('poll_oneoff() finds regular files ready at once', () => {
  const h = fsHarness({ f: Buffer.from('12345') });
  const fd = openOk(h, 'f');
  h.u8().fill(0, 0, 96);
  h.dv().setBigUint64(0, 1n, true);
  h.u8()[8] = 1;
  h.dv().setUint32(16, fd, true);
  h.dv().setBigUint64(48, 2n, true);
  h.u8()[56] = 2;
  h.dv().setUint32(64, ROOT, true);
  assert.equal(h.call('poll_oneoff', 0, 1000, 2, RESULT), errno.success);
  assert.equal(h.dv().getUint32(RESULT, true), 2);
  assert.equal(h.dv().getBigUint64(1016, true), 5n, 'bytes left to read');
  assert.equal(h.dv().getUint16(1040, true), errno.badf, 'directories cannot be written');
});

test('opening past maxFds stops the run with limit fds', () => {
  const h = fsHarness({ f: Buffer.from('x') }, { maxFds: 5 });
  openOk(h, 'f');
  assert.throws(
    () => open(h, 'f'),
    (e: unknown) => e instanceof WasiStop && e.outcome.kind === 'limit' && e.outcome.limit === 'fds',
  );
});

test('at maxFds, creating one more file stops the run; renumbering and closing do not count against it', () => {
  // stdin, stdout, stderr and the root: 4 of 6.
  const h = fsHarness({}, { maxFds: 6 });
  const a = openOk(h, 'a', { oflags: oflags.creat });
  const b = openOk(h, 'b', { oflags: oflags.creat });
  // fd_renumber moves a descriptor onto another, closing that one: the table does not grow.
  assert.equal(h.call('fd_renumber', b, a), errno.success);
  assert.equal(h.call('fd_close', a), errno.success);
  const c = openOk(h, 'c', { oflags: oflags.creat });
  openOk(h, 'd', { oflags: oflags.creat });
  assert.throws(
    () => open(h, 'e', { oflags: oflags.creat }),
    (e: unknown) => e instanceof WasiStop && e.outcome.kind === 'limit' && e.outcome.limit === 'fds',
  );
  assert.ok(c >= 4);
});

test('filesystem calls with random paths and arguments return only errnos', () => {
  const h = fsHarness(
    { a: Buffer.from('aaaa'), d: { b: Buffer.from('bb'), e: {} } },
    { fsCapacityBytes: 4096, stdin: 'null' },
  );
  const segment = fc.constantFrom('a', 'b', 'd', 'e', 'l', '.', '..', '', 'new');
  const path = fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => s.join('/'));
  const fd = fc.constantFrom(0, 1, 3, 4, 5, 6, 7, 99);
  const small = fc.integer({ min: 0, max: 70 });
  const op = fc.oneof(
    fc.tuple(
      fc.constant('open'),
      fd,
      path,
      fc.nat({ max: 0x1f }),
      fc.bigInt({ min: 0n, max: ALL_RIGHTS }),
      fc.boolean(),
    ),
    fc.tuple(
      fc.constant('path'),
      fc.constantFrom('path_create_directory', 'path_remove_directory', 'path_unlink_file'),
      fd,
      path,
    ),
    fc.tuple(fc.constant('rename'), path, path),
    fc.tuple(fc.constant('symlink'), path, path),
    fc.tuple(fc.constant('link'), path, path),
    fc.tuple(fc.constant('write'), fd, fc.string({ maxLength: 200 })),
    fc.tuple(fc.constant('read'), fd),
    fc.tuple(
      fc.constant('seek'),
      fd,
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      fc.nat({ max: 3 }),
    ),
    fc.tuple(fc.constant('size'), fd, fc.bigInt({ min: 0n, max: 5000n })),
    fc.tuple(fc.constant('readdir'), fd, small),
    fc.tuple(fc.constant('close'), fd),
    fc.tuple(fc.constant('stat'), path, fc.boolean()),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
      for (const o of ops) {
        let r: number;
        switch (o[0]) {
          case 'open':
            r = open(h, o[2], {
              dir: o[1],
              oflags: o[3] & 0x0f,
              base: o[4],
              inheriting: o[4],
              follow: o[5],
            }).err;
            break;
          case 'path':
            r = pathCall(h, o[1], o[3], o[2]);
            break;
          case 'rename':
            r = rename(h, o[1], o[2]);
            break;
          case 'symlink': {
            const [p1, n1] = str(h, o[1], PATH_AT);
            const [p2, n2] = str(h, o[2], PATH_AT + 1000);
            r = h.call('path_symlink', p1, n1, ROOT, p2, n2);
            break;
          }
          case 'link': {
            const [p1, n1] = str(h, o[1], PATH_AT);
            const [p2, n2] = str(h, o[2], PATH_AT + 1000);
            r = h.call('path_link', ROOT, 1, p1, n1, ROOT, p2, n2);
            break;
          }
          case 'write':
            r = write(h, o[1], o[2]).err;
            break;
          case 'read':
            r = read(h, o[1]).err;
            break;
          case 'seek':
            r = h.call('fd_seek', o[1], o[2], o[3], RESULT);
            break;
          case 'size':
            r = h.call('fd_filestat_set_size', o[1], o[2]);
            break;
          case 'readdir':
            r = h.call('fd_readdir', o[1], 1000, o[2], 0n, RESULT);
            break;
          case 'close':
            // Keep stdio and the preopen: closing them would only make later calls fail the same way.
            r = o[1] > 3 ? h.call('fd_close', o[1]) : errno.success;
            break;
          case 'stat':
            r = pathStat(h, o[1], o[2]).err;
            break;
        }
        assert.ok(Number.isInteger(r) && r >= 0 && r <= 76, `${o[0]} returned ${r}`);
      }
    }),
    { numRuns: 300 },
  );
});
