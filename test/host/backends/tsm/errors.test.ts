import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  errnoOf,
  fromSystemError,
  isTsmError,
  TsmError,
  tsmErrorCodes,
} from '../../../../src/host/backends/tsm/errors.ts';
import { sysError } from './fake-tsm.ts';

describe('TsmError', () => {
  test('tsmErrorCodes lists each code once, all in the ERR_TSM_ namespace', () => {
    assert.equal(new Set(tsmErrorCodes).size, tsmErrorCodes.length);
    for (const code of tsmErrorCodes) assert.match(code, /^ERR_TSM_[A-Z_]+$/);
  });

  test('TsmError carries its code, errno and cause', () => {
    const cause = new Error('x');
    const e = new TsmError('ERR_TSM_BUSY', 'Cannot read outblob: EBUSY', { cause, errno: 'EBUSY' });
    assert.equal(e.name, 'TsmError');
    assert.equal(e.code, 'ERR_TSM_BUSY');
    assert.equal(e.errno, 'EBUSY');
    assert.equal(e.cause, cause);
    assert.ok(isTsmError(e, 'ERR_TSM_BUSY'));
    assert.equal(isTsmError(e, 'ERR_TSM_IO'), false);
    assert.equal(isTsmError(new Error('x')), false);
    assert.equal('errno' in new TsmError('ERR_TSM_IO', 'Cannot x: y'), false);
  });
});

describe('fromSystemError()', () => {
  test('fromSystemError() maps errno names to codes and keeps unknown ones as ERR_TSM_IO', () => {
    const cases: [string, string][] = [
      ['ENOENT', 'ERR_TSM_UNAVAILABLE'],
      ['ENXIO', 'ERR_TSM_NO_PROVIDER'],
      ['EACCES', 'ERR_TSM_PERMISSION'],
      ['EPERM', 'ERR_TSM_PERMISSION'],
      ['EBUSY', 'ERR_TSM_BUSY'],
      ['EINVAL', 'ERR_TSM_INVALID'],
      ['ETIMEDOUT', 'ERR_TSM_TIMEOUT'],
      ['EINTR', 'ERR_TSM_INTERRUPTED'],
      ['EIO', 'ERR_TSM_IO'],
      ['EFBIG', 'ERR_TSM_IO'],
    ];
    for (const [errno, code] of cases) {
      const e = fromSystemError('read outblob', sysError(errno, 'p'));
      assert.equal(e.code, code, errno);
      assert.equal(e.errno, errno);
      assert.equal(e.message, `Cannot read outblob: ${errno}`);
    }
  });

  test('fromSystemError() passes a TsmError through and describes non-system errors', () => {
    const own = new TsmError('ERR_TSM_PRIVLEVEL', 'Cannot x: y');
    assert.equal(fromSystemError('a', own), own);
    const e = fromSystemError('write inblob', new Error('boom'));
    assert.equal(e.code, 'ERR_TSM_IO');
    assert.equal(e.message, 'Cannot write inblob: boom');
    assert.equal(errnoOf({ code: 'ERR_SOMETHING' }), undefined);
    assert.equal(errnoOf(null), undefined);
  });
});
