import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pckCrlPath, qeIdentityPath, tcbInfoPath } from '../../../src/host/collateral/index.ts';

test('pckCrlPath() asks PCS v4 for a DER CRL of the given PCK CA', () => {
  assert.equal(pckCrlPath('platform'), '/sgx/certification/v4/pckcrl?ca=platform&encoding=der');
  assert.equal(pckCrlPath('processor'), '/sgx/certification/v4/pckcrl?ca=processor&encoding=der');
  assert.throws(() => pckCrlPath('root' as 'platform'), RangeError);
});

test('tcbInfoPath() has SGX and TDX flavours and lower-cases the FMSPC', () => {
  assert.equal(tcbInfoPath('sgx', '00A067110000'), '/sgx/certification/v4/tcb?fmspc=00a067110000');
  assert.equal(tcbInfoPath('tdx', '50806f000000'), '/tdx/certification/v4/tcb?fmspc=50806f000000');
  assert.throws(() => tcbInfoPath('tdx', '50806f'), RangeError);
  assert.throws(() => tcbInfoPath('tdx', '50806f00000g'), RangeError);
  assert.throws(() => tcbInfoPath('sev' as 'sgx', '50806f000000'), RangeError);
});

test('qeIdentityPath() has SGX (QE) and TDX (TD_QE) flavours', () => {
  assert.equal(qeIdentityPath('sgx'), '/sgx/certification/v4/qe/identity');
  assert.equal(qeIdentityPath('tdx'), '/tdx/certification/v4/qe/identity');
});
