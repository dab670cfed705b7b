import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isWasiError, WasiError, wasiErrorCodes } from '../../src/wasi/errors.ts';

test('WasiError carries its code, name and cause', () => {
  const cause = new Error('inner');
  const e = new WasiError('ERR_WASM_INVALID', 'Cannot read the module: it is empty', { cause });
  assert.equal(e.code, 'ERR_WASM_INVALID');
  assert.equal(e.name, 'WasiError');
  assert.equal(e.cause, cause);
  assert.ok(e instanceof Error);
  assert.equal('cause' in new WasiError('ERR_WASM_INVALID', 'x'), false);
});

test('isWasiError() narrows on the code', () => {
  const e = new WasiError('ERR_WASM_MEMORY_LIMIT', 'Cannot run the module: too big');
  assert.equal(isWasiError(e), true);
  assert.equal(isWasiError(e, 'ERR_WASM_MEMORY_LIMIT'), true);
  assert.equal(isWasiError(e, 'ERR_WASM_INVALID'), false);
  assert.equal(isWasiError(new Error('x')), false);
});

test('wasiErrorCodes lists each code once, all in the ERR_ form the brief pins', () => {
  assert.equal(new Set(wasiErrorCodes).size, wasiErrorCodes.length);
  for (const code of [
    'ERR_WASM_INVALID',
    'ERR_WASM_NOT_COMMAND',
    'ERR_WASM_IMPORT_UNSUPPORTED',
    'ERR_WASM_MEMORY_LIMIT',
  ]) {
    assert.ok(wasiErrorCodes.includes(code as never), code);
  }
  for (const code of wasiErrorCodes) assert.match(code, /^ERR_WAS[MI]_[A-Z_]+$/);
});
