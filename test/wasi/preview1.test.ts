import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { errno, PREVIEW1_SIGNATURES, rights } from '../../src/wasi/abi.ts';
import { WasiStop } from '../../src/wasi/preview1.ts';
import { END, type H, harness, iovecs, NAMES, PAGES, put } from './harness.ts';
import { signature } from './wasm-builder.ts';

test('Preview1.imports links every preview1 function', () => {
  const h = harness();
  assert.deepEqual(Object.keys(h.host.imports).sort(), [...NAMES].sort());
});

test('args_sizes_get() and args_get() lay out NUL-terminated UTF-8 arguments', () => {
  const h = harness({ args: ['prog', 'héllo', ''] });
  assert.equal(h.call('args_sizes_get', 0, 4), errno.success);
  assert.equal(h.dv().getUint32(0, true), 3);
  assert.equal(h.dv().getUint32(4, true), 5 + 7 + 1);
  assert.equal(h.call('args_get', 100, 200), errno.success);
  const ptrs = [0, 1, 2].map((i) => h.dv().getUint32(100 + i * 4, true));
  assert.deepEqual(ptrs, [200, 205, 212]);
  assert.equal(Buffer.from(h.u8().subarray(200, 213)).toString(), 'prog\0héllo\0\0');
});

test('args_get() returns EFAULT and writes nothing when the buffer runs past memory', () => {
  const h = harness({ args: ['prog', 'abc'] });
  assert.equal(h.call('args_get', 100, END - 8), errno.fault);
  assert.equal(h.dv().getUint32(100, true), 0, 'pointer array untouched');
  assert.equal(h.call('args_get', END - 4, 200), errno.fault);
  assert.equal(h.call('args_sizes_get', END - 3, 0), errno.fault);
  assert.equal(h.call('args_sizes_get', 0, -1), errno.fault);
  assert.equal(h.call('args_get', 100, END - 9), errno.success, 'exactly fits');
});

test('environ_get() joins names and values with =', () => {
  const h = harness({ env: { A: '1', B: 'x=y' } });
  assert.equal(h.call('environ_sizes_get', 0, 4), errno.success);
  assert.deepEqual([h.dv().getUint32(0, true), h.dv().getUint32(4, true)], [2, 4 + 6]);
  assert.equal(h.call('environ_get', 16, 64), errno.success);
  assert.equal(Buffer.from(h.u8().subarray(64, 74)).toString(), 'A=1\0B=x=y\0');
  assert.equal(h.call('environ_get', END, 64), errno.fault);
});

test('clock_time_get() reads each clock and rejects unknown ids with EINVAL', () => {
  const h = harness();
  assert.equal(h.call('clock_time_get', 0, 0n, 8), errno.success);
  assert.equal(h.dv().getBigUint64(8, true), h.clock.real);
  assert.equal(h.call('clock_time_get', 1, 1000n, 8), errno.success);
  assert.equal(h.dv().getBigUint64(8, true), h.clock.mono);
  assert.equal(h.call('clock_time_get', 2, 0n, 8), errno.success);
  assert.equal(h.dv().getBigUint64(8, true), h.clock.cpu);
  assert.equal(h.call('clock_time_get', 3, 0n, 8), errno.success);
  assert.equal(h.call('clock_time_get', 4, 0n, 8), errno.inval);
  assert.equal(h.call('clock_time_get', -1, 0n, 8), errno.inval);
  assert.equal(h.call('clock_time_get', 1, 0n, END - 7), errno.fault);
});

test('clock_res_get() gives a non-zero resolution for each clock', () => {
  const h = harness();
  for (const id of [0, 1, 2, 3]) {
    h.dv().setBigUint64(0, 0n, true);
    assert.equal(h.call('clock_res_get', id, 0), errno.success);
    assert.ok(h.dv().getBigUint64(0, true) > 0n);
  }
  assert.equal(h.call('clock_res_get', 9, 0), errno.inval);
  assert.equal(h.call('clock_res_get', 0, END - 4), errno.fault);
});

test('random_get() fills the buffer in chunks of at most 64 KiB', () => {
  const sizes: number[] = [];
  const h = harness({
    random: (dst) => {
      sizes.push(dst.length);
      dst.fill(0xcd);
    },
  });
  assert.equal(h.call('random_get', 10, 65536 + 100), errno.success);
  assert.deepEqual(sizes, [65536, 100]);
  assert.equal(h.u8()[9], 0);
  assert.equal(h.u8()[10], 0xcd);
  assert.equal(h.u8()[10 + 65536 + 99], 0xcd);
  assert.equal(h.u8()[10 + 65536 + 100], 0);
  assert.equal(h.call('random_get', END - 10, 11), errno.fault);
  assert.equal(sizes.length, 2, 'no randomness drawn for a bad buffer');
  assert.equal(h.call('random_get', END, 0), errno.success);
});

test('fd_write() gathers iovecs to stdout and stderr and reports the count', () => {
  const h = harness();
  const a = put(h, 1000, 'Hello, ');
  const b = put(h, 2000, 'world\n');
  iovecs(h, 0, [
    [1000, a],
    [3000, 0],
    [2000, b],
  ]);
  assert.equal(h.call('fd_write', 1, 0, 3, 100), errno.success);
  assert.equal(h.dv().getUint32(100, true), 13);
  assert.equal(h.call('fd_write', 2, 0, 1, 100), errno.success);
  assert.equal(h.text(1), 'Hello, world\n');
  assert.equal(h.text(2), 'Hello, ');
});

test('fd_write() returns EBADF for stdin, unknown and closed descriptors', () => {
  const h = harness();
  iovecs(h, 0, [[1000, put(h, 1000, 'x')]]);
  assert.equal(h.call('fd_write', 0, 0, 1, 100), errno.badf);
  assert.equal(h.call('fd_write', 3, 0, 1, 100), errno.badf);
  assert.equal(h.call('fd_write', -1, 0, 1, 100), errno.badf);
  assert.equal(h.call('fd_close', 1), errno.success);
  assert.equal(h.call('fd_write', 1, 0, 1, 100), errno.badf);
  assert.equal(h.call('fd_close', 1), errno.badf);
  assert.equal(h.out.length, 0);
});

test('fd_write() returns EFAULT and writes nothing when any iovec is out of range', () => {
  const h = harness();
  iovecs(h, 0, [
    [1000, put(h, 1000, 'first')],
    [END - 2, 3],
  ]);
  assert.equal(h.call('fd_write', 1, 0, 2, 100), errno.fault);
  assert.equal(h.call('fd_write', 1, END - 4, 1, 100), errno.fault, 'iovec array itself out of range');
  assert.equal(h.call('fd_write', 1, 0, 1, END - 3), errno.fault, 'result pointer out of range');
  assert.equal(h.call('fd_write', 1, 0, 0x2000_0000, 100), errno.fault, 'count * 8 past memory');
  assert.equal(h.out.length, 0);
});

test('fd_write() returns EINVAL when the lengths add up past 2^32 - 1', () => {
  const h = harness({ discardOutput: true });
  assert.equal(h.memory.grow(8), PAGES);
  const n = 65536;
  for (let i = 0; i < n; i++) iovecs(h, 65536 + i * 8, [[0, 65536]]);
  assert.equal(h.call('fd_write', 1, 65536, n, 0), errno.inval);
  assert.equal(h.written(), 0);
  iovecs(h, 65536 + (n - 1) * 8, [[0, 65535]]);
  assert.equal(h.call('fd_write', 1, 65536, n, 0), errno.success);
  assert.equal(h.dv().getUint32(0, true), 0xffff_ffff);
  assert.equal(h.written(), 0xffff_ffff);
});

test('fd_write() past the output limit delivers up to the limit, then stops the run', () => {
  const h = harness({ outputLimit: 10 });
  iovecs(h, 0, [[1000, put(h, 1000, '0123456')]]);
  assert.equal(h.call('fd_write', 1, 0, 1, 100), errno.success);
  assert.throws(
    () => h.call('fd_write', 2, 0, 1, 100),
    (e: unknown) => e instanceof WasiStop && e.outcome.kind === 'limit' && e.outcome.limit === 'output',
  );
  assert.equal(h.text(1) + h.text(2), '0123456012');
  // The guest cannot carry on: every later call stops it again.
  assert.throws(() => h.call('sched_yield'), WasiStop);
  assert.equal(h.host.outcome?.kind, 'limit');
});

test('fd_read() fills iovecs from stdin, then reads 0 at end of input', () => {
  const h = harness({ input: 'abcdef', ended: true });
  iovecs(h, 0, [
    [1000, 4],
    [2000, 4],
  ]);
  assert.equal(h.call('fd_read', 0, 0, 2, 100), errno.success);
  assert.equal(h.dv().getUint32(100, true), 6);
  assert.equal(Buffer.from(h.u8().subarray(1000, 1004)).toString(), 'abcd');
  assert.equal(Buffer.from(h.u8().subarray(2000, 2002)).toString(), 'ef');
  assert.equal(h.call('fd_read', 0, 0, 2, 100), errno.success);
  assert.equal(h.dv().getUint32(100, true), 0);
});

test('fd_read() blocks until stdin has data, and returns what is there without waiting for more', () => {
  let blocked = 0;
  const h = harness({
    onBlock: (feed) => {
      blocked++;
      feed('xy');
    },
  });
  iovecs(h, 0, [[1000, 16]]);
  assert.equal(h.call('fd_read', 0, 0, 1, 100), errno.success);
  assert.equal(blocked, 1);
  assert.equal(h.dv().getUint32(100, true), 2);
});

test('fd_read() on a non-blocking stdin returns EAGAIN instead of waiting', () => {
  const h = harness();
  assert.equal(h.call('fd_fdstat_set_flags', 0, 4), errno.success);
  iovecs(h, 0, [[1000, 16]]);
  assert.equal(h.call('fd_read', 0, 0, 1, 100), errno.again);
});

test("fd_read() on a 'null' stdin reads end of input at once", () => {
  const h = harness({ stdin: 'null', input: 'ignored' });
  iovecs(h, 0, [[1000, 16]]);
  h.dv().setUint32(100, 99, true);
  assert.equal(h.call('fd_read', 0, 0, 1, 100), errno.success);
  assert.equal(h.dv().getUint32(100, true), 0);
});

test('fd_read() returns EBADF for output descriptors and EFAULT for bad buffers', () => {
  const h = harness({ input: 'abc' });
  iovecs(h, 0, [[END - 1, 2]]);
  assert.equal(h.call('fd_read', 1, 0, 1, 100), errno.badf);
  assert.equal(h.call('fd_read', 7, 0, 1, 100), errno.badf);
  assert.equal(h.call('fd_read', 0, 0, 1, 100), errno.fault);
  assert.equal(h.call('fd_read', 0, 0, 0, END), errno.fault);
  iovecs(h, 0, [[1000, 2]]);
  assert.equal(h.call('fd_read', 0, 0, 1, 100), errno.success);
});

test('fd_fdstat_get() describes stdio as character devices with stream rights', () => {
  const h = harness();
  h.u8().fill(0xff, 0, 24);
  assert.equal(h.call('fd_fdstat_get', 1, 0), errno.success);
  assert.equal(h.u8()[0], 2);
  assert.equal(h.u8()[1], 0, 'padding zeroed');
  assert.equal(h.dv().getUint16(2, true), 1, 'append');
  const base = h.dv().getBigUint64(8, true);
  assert.ok((base & rights.fdWrite) !== 0n && (base & rights.fdRead) === 0n);
  assert.equal(h.dv().getBigUint64(16, true), 0n);
  assert.equal(h.call('fd_fdstat_get', 0, 0), errno.success);
  assert.ok((h.dv().getBigUint64(8, true) & rights.fdRead) !== 0n);
  assert.equal(h.call('fd_fdstat_get', 3, 0), errno.badf);
  assert.equal(h.call('fd_fdstat_get', 0, END - 23), errno.fault);
});

test('fd_fdstat_set_flags() takes append and nonblock, refuses sync flags and unknown bits', () => {
  const h = harness();
  assert.equal(h.call('fd_fdstat_set_flags', 1, 0), errno.success);
  assert.equal(h.call('fd_fdstat_set_flags', 1, 2), errno.notsup);
  assert.equal(h.call('fd_fdstat_set_flags', 1, 16), errno.notsup);
  assert.equal(h.call('fd_fdstat_set_flags', 1, 0x20), errno.inval);
  assert.equal(h.call('fd_fdstat_set_flags', 1, 0x10004), errno.inval);
  assert.equal(h.call('fd_fdstat_set_flags', 5, 0), errno.badf);
  assert.equal(h.call('fd_fdstat_get', 1, 0), errno.success);
  assert.equal(h.dv().getUint16(2, true), 0);
});

test('fd_fdstat_set_rights() only removes rights, and removed rights are enforced', () => {
  const h = harness();
  assert.equal(h.call('fd_fdstat_set_rights', 1, rights.fdRead, 0n), errno.notcapable);
  assert.equal(h.call('fd_fdstat_set_rights', 1, 0n, 1n), errno.notcapable);
  assert.equal(h.call('fd_fdstat_set_rights', 1, rights.fdFilestatGet, 0n), errno.success);
  iovecs(h, 0, [[1000, put(h, 1000, 'x')]]);
  assert.equal(h.call('fd_write', 1, 0, 1, 100), errno.badf);
  assert.equal(h.call('fd_fdstat_set_flags', 1, 0), errno.notcapable);
  assert.equal(h.call('fd_filestat_get', 1, 0), errno.success);
  assert.equal(h.call('fd_fdstat_set_rights', 1, 0n, 0n), errno.success);
  assert.equal(h.call('fd_filestat_get', 1, 0), errno.notcapable);
  assert.equal(h.call('fd_fdstat_set_rights', 9, 0n, 0n), errno.badf);
});

test('fd_filestat_get() reports a character device and EBADF for unknown descriptors', () => {
  const h = harness();
  h.u8().fill(0xff, 0, 64);
  assert.equal(h.call('fd_filestat_get', 2, 0), errno.success);
  assert.equal(h.u8()[16], 2);
  assert.equal(h.dv().getBigUint64(24, true), 1n);
  assert.equal(h.dv().getBigUint64(32, true), 0n);
  assert.equal(h.call('fd_filestat_get', 3, 0), errno.badf);
  assert.equal(h.call('fd_filestat_get', 2, END - 63), errno.fault);
});

test('fd_renumber() moves a descriptor over another and closes the old number', () => {
  const h = harness();
  assert.equal(h.call('fd_renumber', 2, 1), errno.success);
  iovecs(h, 0, [[1000, put(h, 1000, 'to stderr')]]);
  assert.equal(h.call('fd_write', 1, 0, 1, 100), errno.success);
  assert.equal(h.call('fd_write', 2, 0, 1, 100), errno.badf);
  assert.equal(h.text(2), 'to stderr');
  assert.equal(h.call('fd_renumber', 1, 1), errno.success);
  assert.equal(h.call('fd_renumber', 1, 4), errno.badf);
  assert.equal(h.call('fd_renumber', 4, 1), errno.badf);
});

test('fd_prestat_get() and fd_prestat_dir_name() return EBADF: there are no preopens', () => {
  const h = harness();
  for (const fd of [0, 1, 3, 4]) assert.equal(h.call('fd_prestat_get', fd, 0), errno.badf);
  assert.equal(h.call('fd_prestat_dir_name', 3, 0, 10), errno.badf);
});

test('fd_seek() and fd_tell() on stdio return ESPIPE, on unknown descriptors EBADF', () => {
  const h = harness();
  assert.equal(h.call('fd_seek', 1, 0n, 0, 0), errno.spipe);
  assert.equal(h.call('fd_seek', 0, -5n, 1, 0), errno.spipe);
  assert.equal(h.call('fd_tell', 2, 0), errno.spipe);
  assert.equal(h.call('fd_seek', 3, 0n, 0, 0), errno.badf);
  assert.equal(h.call('fd_tell', 3, 0), errno.badf);
});

test('file, directory and socket calls on stdio fail with the errno POSIX gives', () => {
  const h = harness();
  assert.equal(h.call('fd_pread', 0, 0, 0, 0n, 0), errno.spipe);
  assert.equal(h.call('fd_pwrite', 1, 0, 0, 0n, 0), errno.spipe);
  assert.equal(h.call('fd_advise', 0, 0n, 0n, 0), errno.spipe);
  assert.equal(h.call('fd_advise', 0, 0n, 0n, 6), errno.inval);
  assert.equal(h.call('fd_allocate', 1, 0n, 10n), errno.spipe);
  assert.equal(h.call('fd_sync', 1), errno.inval);
  assert.equal(h.call('fd_datasync', 1), errno.inval);
  assert.equal(h.call('fd_filestat_set_size', 1, 0n), errno.inval);
  assert.equal(h.call('fd_filestat_set_times', 1, 0n, 0n, 3), errno.inval);
  assert.equal(h.call('fd_filestat_set_times', 1, 0n, 0n, 1), errno.notsup);
  assert.equal(h.call('fd_readdir', 0, 0, 100, 0n, 200), errno.notdir);
  assert.equal(h.call('path_open', 0, 0, 0, 1, 0, 0n, 0n, 0, 100), errno.notdir);
  assert.equal(h.call('path_filestat_get', 1, 0, 0, 1, 100), errno.notdir);
  assert.equal(h.call('path_symlink', 0, 1, 1, 0, 1), errno.notdir);
  assert.equal(h.call('path_link', 0, 0, 0, 1, 1, 0, 1), errno.notdir);
  assert.equal(h.call('path_rename', 0, 0, 1, 9, 0, 1), errno.notdir);
  assert.equal(h.call('path_rename', 9, 0, 1, 0, 0, 1), errno.badf);
  assert.equal(h.call('sock_send', 1, 0, 0, 0, 0), errno.notsock);
  assert.equal(h.call('sock_accept', 0, 0, 0), errno.notsock);
  assert.equal(h.call('sock_shutdown', 3, 0), errno.badf);
});

test('every descriptor-taking call returns EBADF for an unknown descriptor', () => {
  const h = harness();
  for (const name of NAMES) {
    if (!name.startsWith('fd_') && !name.startsWith('path_') && !name.startsWith('sock_')) continue;
    const { params } = signature(PREVIEW1_SIGNATURES[name]!);
    // path_symlink takes its descriptor third; path_link and path_rename take two.
    const args = params.map((t, i) => {
      const isFd = name === 'path_symlink' ? i === 2 : i === 0;
      return t === 'i64' ? 0n : isFd ? 77 : 0;
    });
    assert.equal(h.call(name, ...args), errno.badf, name);
  }
});

test('proc_exit() stops the run with its exit code; proc_raise() is ENOSYS; sched_yield() succeeds', () => {
  const h = harness();
  assert.equal(h.call('proc_raise', 9), errno.nosys);
  assert.equal(h.call('sched_yield'), errno.success);
  assert.throws(
    () => h.call('proc_exit', 3),
    (e: unknown) => e instanceof WasiStop && e.outcome.kind === 'exit' && e.outcome.code === 3,
  );
  assert.deepEqual(harness().host.outcome, undefined);
  const big = harness();
  assert.throws(() => big.call('proc_exit', -1), WasiStop);
  assert.deepEqual(big.host.outcome, { kind: 'exit', code: 4294967295 });
});

function subscribeClock(h: H, at: number, userdata: bigint, id: number, timeout: bigint, flags = 0): void {
  h.u8().fill(0, at, at + 48);
  h.dv().setBigUint64(at, userdata, true);
  h.u8()[at + 8] = 0;
  h.dv().setUint32(at + 16, id, true);
  h.dv().setBigUint64(at + 24, timeout, true);
  h.dv().setUint16(at + 40, flags, true);
}

function subscribeFd(h: H, at: number, userdata: bigint, tag: 1 | 2, fd: number): void {
  h.u8().fill(0, at, at + 48);
  h.dv().setBigUint64(at, userdata, true);
  h.u8()[at + 8] = tag;
  h.dv().setUint32(at + 16, fd, true);
}

function events(h: H, at: number, count: number) {
  return Array.from({ length: count }, (_, i) => {
    const e = at + i * 32;
    return {
      userdata: h.dv().getBigUint64(e, true),
      error: h.dv().getUint16(e + 8, true),
      type: h.u8()[e + 10],
      nbytes: h.dv().getBigUint64(e + 16, true),
      flags: h.dv().getUint16(e + 24, true),
    };
  });
}

test('poll_oneoff() sleeps until a relative clock subscription fires', () => {
  const h = harness();
  subscribeClock(h, 0, 42n, 1, 25_000_000n);
  const before = h.clock.mono;
  assert.equal(h.call('poll_oneoff', 0, 1000, 1, 2000), errno.success);
  assert.equal(h.dv().getUint32(2000, true), 1);
  assert.deepEqual(events(h, 1000, 1), [{ userdata: 42n, error: 0, type: 0, nbytes: 0n, flags: 0 }]);
  assert.deepEqual(h.sleeps, [25]);
  assert.ok(h.clock.mono - before >= 25_000_000n);
});

test('poll_oneoff() honours absolute deadlines on the monotonic and realtime clocks', () => {
  const h = harness();
  subscribeClock(h, 0, 1n, 1, h.clock.mono + 3_000_000n, 1);
  assert.equal(h.call('poll_oneoff', 0, 1000, 1, 2000), errno.success);
  assert.deepEqual(h.sleeps, [3]);
  subscribeClock(h, 0, 2n, 0, h.clock.real - 1n, 1);
  assert.equal(h.call('poll_oneoff', 0, 1000, 1, 2000), errno.success);
  assert.deepEqual(h.sleeps, [3], 'a deadline in the past fires without sleeping');
  assert.equal(events(h, 1000, 1)[0]?.userdata, 2n);
});

test('poll_oneoff() reports stdin readiness, end of input and stdout at once', () => {
  const h = harness({ input: 'hello', ended: true });
  subscribeFd(h, 0, 7n, 1, 0);
  subscribeFd(h, 48, 8n, 2, 1);
  subscribeClock(h, 96, 9n, 1, 10_000_000_000n);
  assert.equal(h.call('poll_oneoff', 0, 1000, 3, 2000), errno.success);
  assert.equal(h.dv().getUint32(2000, true), 2);
  const [read, write] = events(h, 1000, 2);
  assert.deepEqual(read, { userdata: 7n, error: 0, type: 1, nbytes: 5n, flags: 0 });
  assert.equal(write?.userdata, 8n);
  assert.equal(write?.type, 2);
  assert.deepEqual(h.sleeps, []);
  const drained = harness({ ended: true });
  subscribeFd(drained, 0, 7n, 1, 0);
  assert.equal(drained.call('poll_oneoff', 0, 1000, 1, 2000), errno.success);
  assert.equal(events(drained, 1000, 1)[0]?.flags, 1, 'hangup');
});

test('poll_oneoff() waits on stdin until data arrives, bounded by the earliest clock', () => {
  const h = harness({ onBlock: (feed) => feed('z') });
  subscribeFd(h, 0, 1n, 1, 0);
  subscribeClock(h, 48, 2n, 1, 7_500_000n);
  assert.equal(h.call('poll_oneoff', 0, 1000, 2, 2000), errno.success);
  assert.deepEqual(h.waits, [8]);
  assert.deepEqual(events(h, 1000, 1)[0]?.userdata, 1n);
});

test('poll_oneoff() reports bad descriptors and CPU clocks on their own events', () => {
  const h = harness();
  subscribeFd(h, 0, 1n, 1, 9);
  subscribeFd(h, 48, 2n, 1, 1);
  subscribeFd(h, 96, 3n, 2, 0);
  subscribeClock(h, 144, 4n, 2, 1n);
  assert.equal(h.call('poll_oneoff', 0, 1000, 4, 2000), errno.success);
  assert.equal(h.dv().getUint32(2000, true), 4);
  assert.deepEqual(
    events(h, 1000, 4).map((e) => [e.userdata, e.error]),
    [
      [1n, errno.badf],
      [2n, errno.badf],
      [3n, errno.badf],
      [4n, errno.inval],
    ],
  );
});

test('poll_oneoff() returns EINVAL for no subscriptions or an unknown tag, EFAULT for bad pointers', () => {
  const h = harness();
  assert.equal(h.call('poll_oneoff', 0, 1000, 0, 2000), errno.inval);
  subscribeFd(h, 0, 1n, 2, 1);
  h.u8()[8] = 3;
  assert.equal(h.call('poll_oneoff', 0, 1000, 1, 2000), errno.inval);
  subscribeClock(h, 0, 1n, 1, 0n, 2);
  assert.equal(h.call('poll_oneoff', 0, 1000, 1, 2000), errno.inval, 'unknown clock flags');
  subscribeFd(h, 0, 1n, 2, 1);
  assert.equal(h.call('poll_oneoff', END - 47, 1000, 1, 2000), errno.fault);
  assert.equal(h.call('poll_oneoff', 0, END - 31, 1, 2000), errno.fault);
  assert.equal(h.call('poll_oneoff', 0, 1000, 1, END - 3), errno.fault);
  assert.equal(h.call('poll_oneoff', 0, 1000, 0x4000_0000, 2000), errno.fault);
});

test('the memory check stops a precompiled module that outgrew the limit at its next call', () => {
  const h = harness({ memoryLimitBytes: 3 * 65536 });
  assert.equal(h.call('sched_yield'), errno.success);
  h.memory.grow(2);
  assert.throws(
    () => h.call('sched_yield'),
    (e: unknown) => e instanceof WasiStop && e.outcome.kind === 'limit' && e.outcome.limit === 'memory',
  );
});

test('allocationFailure() recognises Rust’s allocation failure only when it is the limit', () => {
  const h = harness();
  const text = 'memory allocation of 1048576 bytes failed\n';
  iovecs(h, 0, [
    [1000, put(h, 1000, text.slice(0, 21))],
    [2000, put(h, 2000, text.slice(21))],
  ]);
  assert.equal(h.call('fd_write', 2, 0, 2, 100), errno.success);
  assert.equal(h.host.allocationFailure(END + 1048575), 1048576);
  assert.equal(h.host.allocationFailure(END + 1048576), undefined, 'it would have fitted');
  iovecs(h, 0, [[1000, put(h, 1000, 'later output\n')]]);
  h.call('fd_write', 2, 0, 1, 100);
  assert.equal(h.host.allocationFailure(END), undefined, 'not the last thing written');
});

test('every preview1 function returns an errno or stops the run, whatever its arguments', () => {
  const h = harness({ input: 'some input', ended: true, outputLimit: 1 << 30 });
  const i32 = fc.oneof(
    fc.integer({ min: 0, max: END + 8 }),
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    fc.constantFrom(0, 1, 2, 3, -1),
  );
  const i64 = fc.oneof(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.constantFrom(0n, 1n, -1n));
  const calls = fc.constantFrom(...NAMES.filter((n) => n !== 'proc_exit')).chain((name) => {
    const { params } = signature(PREVIEW1_SIGNATURES[name]!);
    return fc.tuple(fc.constant(name), fc.tuple(...params.map((t) => (t === 'i64' ? i64 : i32))));
  });
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 512, maxLength: 512 }), calls, (scratch, [name, args]) => {
      // Random bytes where small pointers land make iovecs, subscriptions and lengths random too.
      h.u8().set(scratch, 0);
      const r = h.call(name, ...(args as (number | bigint)[]));
      assert.ok(Number.isInteger(r) && r >= 0 && r <= 76, `${name} returned ${r}`);
    }),
    { numRuns: 3000 },
  );
  assert.equal(h.host.outcome, undefined);
});

test('proc_exit() with any argument stops the run and nothing else', () => {
  fc.assert(
    fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (code) => {
      const h = harness();
      assert.throws(() => h.call('proc_exit', code), WasiStop);
      assert.deepEqual(h.host.outcome, { kind: 'exit', code: code >>> 0 });
    }),
    { numRuns: 50 },
  );
});
