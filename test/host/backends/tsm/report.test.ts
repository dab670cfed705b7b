import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, test } from 'node:test';
import { TsmError, type TsmErrorCode } from '../../../../src/host/backends/tsm/errors.ts';
import { requestTsmReport, type TsmRequestOptions } from '../../../../src/host/backends/tsm/report.ts';
import { FakeTsm, type FakeTsmOptions, sysError } from './fake-tsm.ts';

const REPORT_DATA = Uint8Array.from({ length: 64 }, (_, i) => i + 1);
const ROOT = '/sys/kernel/config/tsm/report';

/** A provider that echoes its input, so a test can tell which inblob a blob was made for. */
function echo(options: FakeTsmOptions = {}): FakeTsm {
  return new FakeTsm({
    generate: ({ inblob, privlevel }) => ({
      outblob: Uint8Array.from([privlevel, ...inblob]),
      auxblob: Uint8Array.from([0xaa, ...inblob.subarray(0, 4)]),
    }),
    ...options,
  });
}

async function rejects(
  promise: Promise<unknown>,
  code: TsmErrorCode,
  pattern?: RegExp,
  errno?: string,
): Promise<TsmError> {
  let caught: unknown;
  await promise.catch((e: unknown) => {
    caught = e;
  });
  assert.ok(caught instanceof TsmError, `expected a TsmError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (pattern) assert.match(caught.message, pattern);
  if (errno !== undefined) assert.equal(caught.errno, errno);
  assert.match(caught.message, /^Cannot [a-z]/);
  return caught;
}

const request = (fake: FakeTsm, options: TsmRequestOptions = {}) =>
  requestTsmReport(REPORT_DATA, { fs: fake, name: 'r1', ...options });

describe('requestTsmReport()', () => {
  test('requestTsmReport() makes the request in the kernel interface order and removes the directory', async () => {
    const fake = echo();
    const report = await request(fake);
    assert.equal(report.provider, 'sev_guest');
    assert.deepEqual(report.outblob, Uint8Array.from([0, ...REPORT_DATA]));
    assert.deepEqual(report.auxblob, Uint8Array.from([0xaa, 1, 2, 3, 4]));
    assert.equal(report.generation, 1);
    assert.deepEqual(
      fake.log.map((o) => `${o.op} ${o.attr ?? o.dir}`),
      [
        'mkdir r1',
        'read generation',
        'read provider',
        'write inblob',
        'read generation',
        'read outblob',
        'read auxblob',
        'read generation',
        'rmdir r1',
      ],
    );
    assert.equal(fake.guestRequests, 1);
    assert.equal(fake.dirs.size, 0);
  });

  test('requestTsmReport() writes the privilege level as text before inblob and counts both writes', async () => {
    const fake = echo({ privlevelFloor: 1 });
    const writes: string[] = [];
    const write = fake.write.bind(fake);
    fake.write = async (path, data) => {
      writes.push(`${path.split('/').pop()}=${Buffer.from(data).toString('latin1')}`);
      return write(path, data);
    };
    const report = await request(fake, { privlevel: 2 });
    assert.equal(report.outblob[0], 2);
    assert.equal(report.generation, 2);
    assert.deepEqual(writes, ['privlevel=2\n', `inblob=${Buffer.from(REPORT_DATA).toString('latin1')}`]);
  });

  test('requestTsmReport() refuses a privilege level below the floor or on a provider without one', async () => {
    await rejects(request(echo({ privlevelFloor: 2 }), { privlevel: 1 }), 'ERR_TSM_PRIVLEVEL', /floor is 2/);
    const tdx = echo({ provider: 'tdx_guest' });
    await rejects(request(tdx, { privlevel: 0 }), 'ERR_TSM_PRIVLEVEL', /has none/);
    assert.equal(tdx.guestRequests, 0);
    assert.equal(tdx.dirs.size, 0);
  });

  test('requestTsmReport() reads no auxblob where the provider has none', async () => {
    const report = await request(echo({ provider: 'tdx_guest' }));
    assert.equal(report.provider, 'tdx_guest');
    assert.equal('auxblob' in report, false);
  });

  test('requestTsmReport() refuses when another writer changes inblob before outblob is read', async () => {
    const fake = echo();
    fake.after = (op, dir) => {
      if (op.op === 'write' && op.attr === 'inblob' && dir) {
        // Another process writes its own report_data into the same directory.
        dir.inblob = new Uint8Array(64).fill(0xee);
        dir.writeGeneration++;
      }
    };
    await rejects(request(fake), 'ERR_TSM_INTERFERENCE', /generation is 2 after our writes, expected 1/);
    assert.equal(fake.guestRequests, 0, 'no guest request is spent on a directory that is not ours');
    assert.equal(fake.dirs.size, 0);
  });

  test('requestTsmReport() refuses when the generation moves while the blobs are read', async () => {
    const fake = echo();
    fake.after = (op, dir) => {
      if (op.op === 'read' && op.attr === 'outblob' && dir) dir.writeGeneration++;
    };
    await rejects(request(fake), 'ERR_TSM_INTERFERENCE', /after reading the report/);
  });

  test('requestTsmReport() refuses when the kernel did not take our write', async () => {
    const fake = echo();
    fake.after = (op, dir) => {
      // The write's commit failed on close: the data and the generation stay as they were.
      if (op.op === 'write' && op.attr === 'inblob' && dir) {
        dir.inblob = new Uint8Array(0);
        dir.writeGeneration--;
      }
    };
    await rejects(request(fake), 'ERR_TSM_INTERFERENCE', /generation is 0/);
  });

  test('requestTsmReport() refuses a stale or malformed generation', async () => {
    const stale = echo();
    const read = stale.read.bind(stale);
    let reads = 0;
    stale.read = async (path) => {
      if (path.endsWith('/generation') && ++reads === 3) return Buffer.from('0\n');
      return read(path);
    };
    await rejects(
      request(stale),
      'ERR_TSM_INTERFERENCE',
      /generation is 0 after reading the report, expected 1/,
    );

    for (const bad of ['', 'x\n', '01\n', '-1\n', '1 \n', '99999999999999999\n']) {
      const fake = echo();
      const r = fake.read.bind(fake);
      fake.read = async (path) => (path.endsWith('/generation') ? Buffer.from(bad) : r(path));
      await rejects(request(fake), 'ERR_TSM_IO', /generation/);
      assert.equal(fake.dirs.size, 0);
    }
  });

  test('requestTsmReport() turns kernel errors from the guest request into typed errors and never retries', async () => {
    const cases: [string, TsmErrorCode][] = [
      ['EBUSY', 'ERR_TSM_BUSY'],
      ['EAGAIN', 'ERR_TSM_BUSY'],
      ['EINVAL', 'ERR_TSM_INVALID'],
      ['ENXIO', 'ERR_TSM_NO_PROVIDER'],
      ['ETIMEDOUT', 'ERR_TSM_TIMEOUT'],
      ['EINTR', 'ERR_TSM_INTERRUPTED'],
      ['EIO', 'ERR_TSM_IO'],
      ['ENOTTY', 'ERR_TSM_IO'],
    ];
    for (const [errno, code] of cases) {
      const fake = new FakeTsm({
        generate: () => {
          throw sysError(errno, 'outblob');
        },
      });
      await rejects(request(fake), code, new RegExp(`Cannot read outblob: ${errno}`), errno);
      assert.equal(fake.guestRequests, 1, errno);
      assert.equal(fake.dirs.size, 0, errno);
    }
  });

  test('requestTsmReport() reports a missing root, a missing provider and a lack of privilege', async () => {
    await rejects(
      request(echo({ present: false })),
      'ERR_TSM_UNAVAILABLE',
      new RegExp(`${ROOT} does not exist`),
    );
    await rejects(request(echo({ provider: null })), 'ERR_TSM_NO_PROVIDER', /ENXIO/, 'ENXIO');
    await rejects(request(echo({ privileged: false })), 'ERR_TSM_PERMISSION', /EACCES/, 'EACCES');
    const taken = echo();
    await taken.mkdir(`${ROOT}/r1`);
    await rejects(request(taken), 'ERR_TSM_IO', /EEXIST/);
    assert.equal(taken.dirs.size, 1, 'a directory we did not create is left alone');
  });

  test('requestTsmReport() refuses an unknown provider before writing anything', async () => {
    const fake = echo({ provider: 'arm_cca_guest' });
    await rejects(request(fake), 'ERR_TSM_PROVIDER_UNSUPPORTED', /'arm_cca_guest'/);
    assert.equal(fake.log.filter((o) => o.op === 'write').length, 0);
    const allowed = await request(echo({ provider: 'arm_cca_guest' }), { providers: ['arm_cca_guest'] });
    assert.equal(allowed.provider, 'arm_cca_guest');
  });

  test('requestTsmReport() refuses a short write', async () => {
    const fake = echo();
    fake.write = async () => 63;
    await rejects(request(fake), 'ERR_TSM_IO', /took 63 of 64 bytes/);
  });

  test('requestTsmReport() publishes a failed cleanup instead of failing a good report', async () => {
    const fake = echo();
    fake.rmdir = async (path) => {
      throw sysError('EBUSY', path);
    };
    const events: unknown[] = [];
    const listener = (m: unknown) => events.push(m);
    subscribe('donjon.host.tsm', listener);
    try {
      const report = await request(fake);
      assert.equal(report.generation, 1);
    } finally {
      unsubscribe('donjon.host.tsm', listener);
    }
    assert.deepEqual(events, [
      { event: 'request', dir: `${ROOT}/r1` },
      { event: 'report', dir: `${ROOT}/r1`, provider: 'sev_guest', generation: 1 },
      { event: 'cleanup-failed', dir: `${ROOT}/r1`, errno: 'EBUSY' },
    ]);
  });

  test('requestTsmReport() uses a fresh random directory name under the given root', async () => {
    const fake = echo({ root: '/fake/tsm/report' });
    const names: string[] = [];
    fake.after = (op) => {
      if (op.op === 'mkdir') names.push(op.dir);
    };
    await requestTsmReport(REPORT_DATA, { fs: fake, root: '/fake/tsm/report' });
    await requestTsmReport(REPORT_DATA, { fs: fake, root: '/fake/tsm/report' });
    assert.equal(names.length, 2);
    assert.notEqual(names[0], names[1]);
    for (const n of names) assert.match(n, new RegExp(`^donjon-${process.pid}-[0-9a-f]{16}$`));
  });

  test('requestTsmReport() refuses bad arguments with TypeError or RangeError', async () => {
    const fake = echo();
    await assert.rejects(requestTsmReport(new Uint8Array(63), { fs: fake }), RangeError);
    await assert.rejects(requestTsmReport(new Uint8Array(65), { fs: fake }), RangeError);
    await assert.rejects(requestTsmReport('x' as unknown as Uint8Array, { fs: fake }), TypeError);
    for (const privlevel of [-1, 4, 1.5]) {
      await assert.rejects(requestTsmReport(REPORT_DATA, { fs: fake, privlevel }), RangeError);
    }
    for (const name of ['', '../x', 'a/b', 'x'.repeat(65)]) {
      await assert.rejects(requestTsmReport(REPORT_DATA, { fs: fake, name }), TypeError);
    }
    assert.equal(fake.log.length, 0);
  });
});
