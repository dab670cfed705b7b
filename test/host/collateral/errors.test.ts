import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  CollateralError,
  type CollateralErrorCode,
  collateralErrorCodes,
  isCollateralError,
} from '../../../src/host/collateral/index.ts';

test('every collateral error code is documented in docs/attest.md', () => {
  const doc = readFileSync(new URL('../../../docs/attest.md', import.meta.url), 'utf8');
  for (const code of collateralErrorCodes) assert.match(doc, new RegExp(`\\| \`${code}\` \\|`), code);
  assert.equal(new Set(collateralErrorCodes).size, collateralErrorCodes.length);
});

test('CollateralError carries its code, url, status and cause', () => {
  const cause = new Error('socket hang up');
  const e = new CollateralError('ERR_COLLATERAL_FETCH_FAILED', 'Cannot fetch x: HTTP status 502', {
    url: 'https://kdsintf.amd.com/x',
    status: 502,
    cause,
  });
  assert.equal(e.name, 'CollateralError');
  assert.equal(e.code, 'ERR_COLLATERAL_FETCH_FAILED');
  assert.equal(e.url, 'https://kdsintf.amd.com/x');
  assert.equal(e.status, 502);
  assert.equal(e.cause, cause);
  assert.ok(isCollateralError(e));
  assert.ok(isCollateralError(e, 'ERR_COLLATERAL_FETCH_FAILED'));
  assert.ok(!isCollateralError(e, 'ERR_COLLATERAL_TIMEOUT'));
  assert.ok(!isCollateralError(new Error('x')));
  const bare = new CollateralError('ERR_COLLATERAL_TIMEOUT', 'Cannot fetch x: no answer');
  assert.ok(!('url' in bare) && !('status' in bare) && !('cause' in bare));
});

test('the list of collateral error codes is the whole union', () => {
  // Adding a code to the union without listing it fails to compile here.
  const all: Record<CollateralErrorCode, true> = {
    ERR_COLLATERAL_FETCH_FAILED: true,
    ERR_COLLATERAL_NOT_FOUND: true,
    ERR_COLLATERAL_TIMEOUT: true,
    ERR_COLLATERAL_MALFORMED: true,
    ERR_COLLATERAL_UNSUPPORTED: true,
  };
  assert.deepEqual([...collateralErrorCodes].sort(), Object.keys(all).sort());
});
