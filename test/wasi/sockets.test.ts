// The socket functions of the preview1 host, on the test's own thread: a fake Preview1Net stands for the
// caller's thread, and a test that would block plays that thread in onWait.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { errno, eventtype, fdflags, filetype, rights, sizes } from '../../src/wasi/abi.ts';
import type { Preview1Net } from '../../src/wasi/net.ts';
import { type Preview1File, WasiStop } from '../../src/wasi/preview1.ts';
import { END, type H, harness, iovecs, put } from './harness.ts';

interface FakeConn {
  rx: number[];
  ended: boolean;
  reset: boolean;
  sendRoom: number;
  sent: number[];
  shutRead: boolean;
  shutWrite: boolean;
  closed: boolean;
}

class FakeNet implements Preview1Net {
  readonly conns = new Map<number, FakeConn>();
  readonly pendingOf = new Map<number, number[]>();
  readonly closedListeners: number[] = [];
  bell = 0;
  waits = 0;
  onWait: ((net: FakeNet) => void) | undefined;
  advance: ((ms: number) => void) | undefined;

  conn(id: number): FakeConn {
    let c = this.conns.get(id);
    if (!c) {
      c = {
        rx: [],
        ended: false,
        reset: false,
        sendRoom: 1 << 20,
        sent: [],
        shutRead: false,
        shutWrite: false,
        closed: false,
      };
      this.conns.set(id, c);
    }
    return c;
  }
  arrive(listener: number, id: number): void {
    this.conn(id);
    this.pendingOf.set(listener, [...(this.pendingOf.get(listener) ?? []), id]);
    this.bell++;
  }
  feed(id: number, s: string): void {
    this.conn(id).rx.push(...Buffer.from(s));
    this.bell++;
  }
  seq(): number {
    return this.bell;
  }
  wait(seq: number, timeoutMs: number): void {
    this.waits++;
    if (this.bell !== seq) return;
    if (this.onWait) this.onWait(this);
    else if (Number.isFinite(timeoutMs)) this.advance?.(timeoutMs);
    else throw new Error('test: the call would block forever');
  }
  accept(listener: number): number | undefined {
    return this.pendingOf.get(listener)?.shift();
  }
  pending(listener: number): number {
    return this.pendingOf.get(listener)?.length ?? 0;
  }
  closeListener(listener: number): void {
    this.closedListeners.push(listener);
  }
  state(id: number) {
    const c = this.conn(id);
    return { available: c.rx.length, ended: c.ended, reset: c.reset, sendRoom: c.reset ? 0 : c.sendRoom };
  }
  recv(id: number, dst: Uint8Array, peek: boolean): number {
    const c = this.conn(id);
    const n = Math.min(dst.length, c.rx.length);
    dst.set(peek ? c.rx.slice(0, n) : c.rx.splice(0, n));
    return n;
  }
  send(id: number, data: Uint8Array): number {
    const c = this.conn(id);
    const n = Math.min(data.length, c.sendRoom);
    c.sent.push(...data.subarray(0, n));
    c.sendRoom -= n;
    return n;
  }
  shutdown(id: number, read: boolean, write: boolean): void {
    const c = this.conn(id);
    if (read) {
      c.shutRead = true;
      c.rx.length = 0;
    }
    if (write) c.shutWrite = true;
  }
  close(id: number): void {
    this.conn(id).closed = true;
  }
}

const LISTENER = 0;
const TABLE: Preview1File[] = [
  { kind: 'null' },
  { kind: 'stdout' },
  { kind: 'stderr' },
  { kind: 'listen', listener: LISTENER },
];

function setup(options: { files?: Preview1File[]; maxFds?: number } = {}): { h: H; net: FakeNet } {
  const net = new FakeNet();
  const h = harness({
    files: options.files ?? TABLE,
    net,
    ...(options.maxFds === undefined ? {} : { maxFds: options.maxFds }),
  });
  net.advance = (ms) => {
    h.clock.mono += BigInt(ms) * 1_000_000n;
    h.clock.real += BigInt(ms) * 1_000_000n;
  };
  return { h, net };
}

/** Accepts one connection (id 9) on descriptor 3; returns its descriptor. */
function accepted(h: H, net: FakeNet, id = 9): number {
  net.arrive(LISTENER, id);
  assert.equal(h.call('sock_accept', 3, 0, 0), errno.success);
  return h.dv().getUint32(0, true);
}

function recv(h: H, fd: number, len: number, flags = 0): { rc: number; text: string } {
  iovecs(h, 100, [[1000, len]]);
  const rc = h.call('sock_recv', fd, 100, 1, flags, 200, 204);
  const n = rc === errno.success ? h.dv().getUint32(200, true) : 0;
  return { rc, text: Buffer.from(h.u8().subarray(1000, 1000 + n)).toString() };
}

function send(h: H, fd: number, s: string): { rc: number; n: number } {
  const len = put(h, 1000, s);
  iovecs(h, 100, [[1000, len]]);
  const rc = h.call('sock_send', fd, 100, 1, 0, 200);
  return { rc, n: rc === errno.success ? h.dv().getUint32(200, true) : 0 };
}

function subscribe(h: H, at: number, userdata: bigint, type: number, fd: number): void {
  h.u8().fill(0, at, at + sizes.subscription);
  h.dv().setBigUint64(at, userdata, true);
  h.dv().setUint8(at + 8, type);
  h.dv().setUint32(at + 16, fd, true);
}

function events(h: H, out: number, count: number) {
  return Array.from({ length: count }, (_, i) => {
    const at = out + i * sizes.event;
    return {
      userdata: h.dv().getBigUint64(at, true),
      error: h.dv().getUint16(at + 8, true),
      type: h.dv().getUint8(at + 10),
      nbytes: h.dv().getBigUint64(at + 16, true),
      flags: h.dv().getUint16(at + 24, true),
    };
  });
}

test('the descriptor table follows files, and pre-opened directories come after it', () => {
  const net = new FakeNet();
  const h = harness({
    files: [...TABLE, { kind: 'socket', id: 7 }],
    net,
    preopens: { '/data': { 'a.txt': Buffer.from('x') } },
  });
  const type = (fd: number): number => {
    assert.equal(h.call('fd_fdstat_get', fd, 0), errno.success);
    return h.dv().getUint8(0);
  };
  assert.equal(type(0), filetype.characterDevice);
  assert.equal(type(3), filetype.socketStream);
  assert.equal(type(4), filetype.socketStream);
  assert.equal(type(5), filetype.directory);
  // libc's scan for pre-opened directories needs EBADF on anything else.
  assert.equal(h.call('fd_prestat_get', 3, 0), errno.badf);
  assert.equal(h.call('fd_prestat_get', 5, 0), errno.success);
  assert.equal(h.dv().getUint32(4, true), '/data'.length);
  assert.equal(h.call('fd_filestat_get', 4, 0), errno.success);
  assert.equal(h.dv().getUint8(16), filetype.socketStream);
});

test('a null file reads end of input and swallows what is written', () => {
  const { h } = setup();
  iovecs(h, 100, [[1000, 10]]);
  assert.equal(h.call('fd_read', 0, 100, 1, 200), errno.success);
  assert.equal(h.dv().getUint32(200, true), 0);
  put(h, 1000, 'discarded');
  iovecs(h, 100, [[1000, 9]]);
  assert.equal(h.call('fd_write', 0, 100, 1, 200), errno.success);
  assert.equal(h.dv().getUint32(200, true), 9);
  assert.deepEqual(h.out, []);
  assert.equal(h.call('fd_seek', 0, 0n, 0, 200), errno.spipe);
});

test('sock_accept() gives the lowest free descriptor, with socket rights, and the flags asked for', () => {
  const { h, net } = setup();
  net.arrive(LISTENER, 9);
  assert.equal(h.call('sock_accept', 3, fdflags.nonblock, 0), errno.success);
  const fd = h.dv().getUint32(0, true);
  assert.equal(fd, 4);
  assert.equal(h.call('fd_fdstat_get', fd, 16), errno.success);
  assert.equal(h.dv().getUint8(16), filetype.socketStream);
  assert.equal(h.dv().getUint16(18, true), fdflags.nonblock);
  const base = h.dv().getBigUint64(24, true);
  assert.equal(base & rights.fdRead, rights.fdRead);
  assert.equal(base & rights.sockShutdown, rights.sockShutdown);
  assert.equal(base & rights.sockAccept, 0n, 'a connection cannot accept');
});

test('sock_accept() blocks until a connection arrives, and answers EAGAIN on a non-blocking listener', () => {
  const { h, net } = setup();
  net.onWait = (n) => n.arrive(LISTENER, 11);
  assert.equal(h.call('sock_accept', 3, 0, 0), errno.success);
  assert.equal(net.waits, 1);
  assert.equal(h.call('fd_fdstat_set_flags', 3, fdflags.nonblock), errno.success);
  net.onWait = undefined;
  assert.equal(h.call('sock_accept', 3, 0, 0), errno.again);
});

test('sock_accept() refuses what is not a listening socket, bad flags and bad pointers', () => {
  const { h, net } = setup();
  assert.equal(h.call('sock_accept', 42, 0, 0), errno.badf);
  assert.equal(h.call('sock_accept', 1, 0, 0), errno.notsock);
  assert.equal(h.call('sock_accept', 0, 0, 0), errno.notsock);
  const fd = accepted(h, net);
  assert.equal(h.call('sock_accept', fd, 0, 0), errno.inval, 'accept on a connected socket');
  assert.equal(h.call('sock_accept', 3, fdflags.append, 0), errno.inval);
  net.arrive(LISTENER, 12);
  assert.equal(h.call('sock_accept', 3, 0, END - 2), errno.fault);
  assert.equal(net.pending(LISTENER), 1, 'a refused call takes no connection');
  assert.equal(h.call('fd_fdstat_set_rights', 3, 0n, 0n), errno.success);
  assert.equal(h.call('sock_accept', 3, 0, 0), errno.notcapable);
});

test('sock_accept() past the descriptor limit ends the run with limit fds', () => {
  const { h, net } = setup({ maxFds: 4 });
  net.arrive(LISTENER, 9);
  assert.throws(
    () => h.call('sock_accept', 3, 0, 0),
    (e: unknown) => e instanceof WasiStop && e.outcome.kind === 'limit' && e.outcome.limit === 'fds',
  );
});

test('sock_recv() reads what arrived, peeks without consuming, and with WAITALL waits for the whole buffer', () => {
  const { h, net } = setup();
  const fd = accepted(h, net);
  net.feed(9, 'hello world');
  assert.deepEqual(recv(h, fd, 5, 1), { rc: errno.success, text: 'hello' }, 'peek');
  assert.deepEqual(recv(h, fd, 5), { rc: errno.success, text: 'hello' });
  assert.equal(h.dv().getUint16(204, true), 0, 'roflags');
  assert.deepEqual(recv(h, fd, 100), { rc: errno.success, text: ' world' }, 'a short read returns at once');
  let round = 0;
  net.onWait = (n) => n.feed(9, ['ab', 'cd', 'ef'][round++]!);
  assert.deepEqual(recv(h, fd, 6, 2), { rc: errno.success, text: 'abcdef' });
  assert.equal(round, 3);
});

test('sock_recv() scatters into several iovecs', () => {
  const { h, net } = setup();
  const fd = accepted(h, net);
  net.feed(9, 'abcdefgh');
  iovecs(h, 100, [
    [1000, 3],
    [2000, 10],
  ]);
  assert.equal(h.call('sock_recv', fd, 100, 2, 0, 200, 204), errno.success);
  assert.equal(h.dv().getUint32(200, true), 8);
  assert.equal(Buffer.from(h.u8().subarray(1000, 1003)).toString(), 'abc');
  assert.equal(Buffer.from(h.u8().subarray(2000, 2005)).toString(), 'defgh');
});

test('sock_recv() reads 0 at end of stream and ECONNRESET after a reset', () => {
  const { h, net } = setup();
  const fd = accepted(h, net);
  net.feed(9, 'last');
  net.conn(9).ended = true;
  assert.deepEqual(recv(h, fd, 10), { rc: errno.success, text: 'last' });
  assert.deepEqual(recv(h, fd, 10), { rc: errno.success, text: '' });
  const other = accepted(h, net, 10);
  net.conn(10).reset = true;
  assert.equal(recv(h, other, 10).rc, errno.connreset);
});

test('sock_recv() answers EAGAIN non-blocking, ENOTCONN on a listener, ENOTSOCK on stdio, EINVAL for flags', () => {
  const { h, net } = setup();
  const fd = accepted(h, net);
  assert.equal(h.call('fd_fdstat_set_flags', fd, fdflags.nonblock), errno.success);
  assert.equal(recv(h, fd, 4).rc, errno.again);
  assert.equal(recv(h, 3, 4).rc, errno.notconn);
  assert.equal(recv(h, 1, 4).rc, errno.notsock);
  assert.equal(recv(h, 77, 4).rc, errno.badf);
  assert.equal(recv(h, fd, 4, 4).rc, errno.inval);
  iovecs(h, 100, [[1000, 4]]);
  assert.equal(h.call('sock_recv', fd, 100, 1, 0, END - 2, 204), errno.fault);
  assert.equal(h.call('sock_recv', fd, 100, 1, 0, 200, END - 1), errno.fault);
});

test('sock_send() hands everything over, waiting for room; a non-blocking socket takes what fits', () => {
  const { h, net } = setup();
  const fd = accepted(h, net);
  net.conn(9).sendRoom = 3;
  net.onWait = (n) => {
    n.conn(9).sendRoom += 3;
    n.bell++;
  };
  assert.deepEqual(send(h, fd, 'abcdefgh'), { rc: errno.success, n: 8 });
  assert.equal(Buffer.from(net.conn(9).sent).toString(), 'abcdefgh');
  net.onWait = undefined;
  net.conn(9).sendRoom = 2;
  assert.equal(h.call('fd_fdstat_set_flags', fd, fdflags.nonblock), errno.success);
  assert.deepEqual(send(h, fd, 'xyz'), { rc: errno.success, n: 2 });
  assert.deepEqual(send(h, fd, 'xyz'), { rc: errno.again, n: 0 });
});

test('sock_send() answers EPIPE after shutdown(WR), ECONNRESET after a reset, EINVAL for flags', () => {
  const { h, net } = setup();
  const fd = accepted(h, net);
  iovecs(h, 100, [[1000, 1]]);
  assert.equal(h.call('sock_send', fd, 100, 1, 1, 200), errno.inval);
  assert.equal(h.call('sock_shutdown', fd, 2), errno.success);
  assert.equal(net.conn(9).shutWrite, true);
  assert.equal(send(h, fd, 'x').rc, errno.pipe);
  const other = accepted(h, net, 10);
  net.conn(10).reset = true;
  assert.equal(send(h, other, 'x').rc, errno.connreset);
  assert.equal(send(h, 3, 'x').rc, errno.notconn);
});

test('sock_shutdown(RD) drops input and reads 0; bad how is EINVAL; non-sockets are ENOTSOCK', () => {
  const { h, net } = setup();
  const fd = accepted(h, net);
  net.feed(9, 'unread');
  assert.equal(h.call('sock_shutdown', fd, 0), errno.inval);
  assert.equal(h.call('sock_shutdown', fd, 4), errno.inval);
  assert.equal(h.call('sock_shutdown', fd, 1), errno.success);
  assert.equal(net.conn(9).shutRead, true);
  assert.deepEqual(recv(h, fd, 10), { rc: errno.success, text: '' });
  assert.equal(h.call('sock_shutdown', 1, 1), errno.notsock);
  assert.equal(h.call('sock_shutdown', 3, 1), errno.notconn);
  assert.equal(h.call('sock_shutdown', 99, 1), errno.badf);
});

test('fd_read() and fd_write() on a socket work as recv and send; seeking is ESPIPE', () => {
  const { h, net } = setup();
  const fd = accepted(h, net);
  net.feed(9, 'ping');
  iovecs(h, 100, [[1000, 16]]);
  assert.equal(h.call('fd_read', fd, 100, 1, 200), errno.success);
  assert.equal(h.dv().getUint32(200, true), 4);
  const n = put(h, 1000, 'pong');
  iovecs(h, 100, [[1000, n]]);
  assert.equal(h.call('fd_write', fd, 100, 1, 200), errno.success);
  assert.equal(Buffer.from(net.conn(9).sent).toString(), 'pong');
  assert.equal(h.call('fd_write', 3, 100, 1, 200), errno.notconn);
  assert.equal(h.call('fd_read', 3, 100, 1, 200), errno.notconn);
  assert.equal(h.call('fd_seek', fd, 0n, 0, 200), errno.spipe);
  assert.equal(h.call('fd_tell', fd, 200), errno.spipe);
  assert.equal(h.call('fd_pread', fd, 100, 1, 0n, 200), errno.spipe);
  assert.equal(h.call('fd_sync', fd), errno.inval);
  assert.equal(h.call('fd_filestat_set_size', fd, 0n), errno.inval);
  assert.equal(h.call('fd_readdir', fd, 1000, 100, 0n, 200), errno.notdir);
  assert.equal(h.call('path_open', fd, 0, 1000, 1, 0, 0n, 0n, 0, 200), errno.notdir);
});

test('poll_oneoff() reports a waiting connection, readable bytes, end of stream and send room', () => {
  const { h, net } = setup();
  const fd = accepted(h, net);
  const quiet = accepted(h, net, 10);
  net.arrive(LISTENER, 11);
  net.feed(9, 'abc');
  subscribe(h, 0, 1n, eventtype.fdRead, 3);
  subscribe(h, 48, 2n, eventtype.fdRead, fd);
  subscribe(h, 96, 3n, eventtype.fdWrite, fd);
  subscribe(h, 144, 4n, eventtype.fdRead, quiet);
  assert.equal(h.call('poll_oneoff', 0, 1000, 4, 2000), errno.success);
  assert.equal(h.dv().getUint32(2000, true), 3);
  const got = events(h, 1000, 3);
  assert.deepEqual(
    got.map((e) => [e.userdata, e.type, e.error, e.nbytes, e.flags]),
    [
      [1n, eventtype.fdRead, 0, 1n, 0],
      [2n, eventtype.fdRead, 0, 3n, 0],
      [3n, eventtype.fdWrite, 0, BigInt(1 << 20), 0],
    ],
  );
  net.conn(10).ended = true;
  subscribe(h, 0, 5n, eventtype.fdRead, quiet);
  assert.equal(h.call('poll_oneoff', 0, 1000, 1, 2000), errno.success);
  assert.equal(events(h, 1000, 1)[0]!.flags, 1, 'hangup');
  assert.equal(h.call('sock_shutdown', fd, 2), errno.success);
  subscribe(h, 0, 6n, eventtype.fdWrite, fd);
  assert.equal(h.call('poll_oneoff', 0, 1000, 1, 2000), errno.success);
  assert.equal(events(h, 1000, 1)[0]!.error, errno.pipe);
  subscribe(h, 0, 7n, eventtype.fdWrite, 3);
  assert.equal(h.call('poll_oneoff', 0, 1000, 1, 2000), errno.success);
  assert.equal(events(h, 1000, 1)[0]!.error, errno.badf, 'a listener is never writable');
});

test('poll_oneoff() waits on the doorbell until a socket is ready, or its clock fires', () => {
  const { h, net } = setup();
  net.onWait = (n) => n.arrive(LISTENER, 9);
  subscribe(h, 0, 1n, eventtype.fdRead, 3);
  assert.equal(h.call('poll_oneoff', 0, 1000, 1, 2000), errno.success);
  assert.equal(net.waits, 1);
  assert.equal(events(h, 1000, 1)[0]!.userdata, 1n);
  net.onWait = undefined;
  const fd = accepted(h, net, 9);
  subscribe(h, 0, 1n, eventtype.fdRead, fd);
  subscribe(h, 48, 2n, eventtype.clock, 0);
  h.dv().setUint32(48 + 16, 1, true);
  h.dv().setBigUint64(48 + 24, 5_000_000n, true);
  assert.equal(h.call('poll_oneoff', 0, 1000, 2, 2000), errno.success);
  assert.deepEqual(
    events(h, 1000, 1).map((e) => e.userdata),
    [2n],
  );
});

test('fd_close() closes a connection, and on a listener stops it', () => {
  const { h, net } = setup();
  const fd = accepted(h, net);
  assert.equal(h.call('fd_close', fd), errno.success);
  assert.equal(net.conn(9).closed, true);
  assert.equal(h.call('fd_close', 3), errno.success);
  assert.deepEqual(net.closedListeners, [LISTENER]);
  assert.equal(h.call('sock_accept', 3, 0, 0), errno.badf);
});

test('fd_renumber() over a socket closes the socket it replaces', () => {
  const { h, net } = setup();
  const a = accepted(h, net, 9);
  const b = accepted(h, net, 10);
  assert.equal(h.call('fd_renumber', a, b), errno.success);
  assert.equal(net.conn(10).closed, true);
  assert.equal(net.conn(9).closed, false);
  net.feed(9, 'moved');
  assert.deepEqual(recv(h, b, 10), { rc: errno.success, text: 'moved' });
});

test('a table with sockets needs the sockets', () => {
  assert.throws(() => harness({ files: TABLE }), TypeError);
});
