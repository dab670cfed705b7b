import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AttestationError, attestationErrorCodes, isAttestationError } from '../../src/attestation/errors.ts';

test('attestationErrorCodes lists unique ERR_ codes', () => {
  assert.equal(new Set(attestationErrorCodes).size, attestationErrorCodes.length);
  for (const code of attestationErrorCodes) assert.match(code, /^ERR_[A-Z_]+$/);
  for (const code of [
    'ERR_EVIDENCE_MALFORMED',
    'ERR_EVIDENCE_UNSUPPORTED',
    'ERR_SIGNATURE_INVALID',
    'ERR_CHAIN_INVALID',
    'ERR_ROOT_UNTRUSTED',
    'ERR_SIMULATED_ROOT_NOT_TRUSTED',
    'ERR_CERT_EXPIRED',
    'ERR_TCB_MISMATCH',
    'ERR_REPORT_DATA_MISMATCH',
    'ERR_POLICY_VIOLATION',
    'ERR_POLICY_UNSUPPORTED',
    'ERR_COLLATERAL_INVALID',
    'ERR_COLLATERAL_EXPIRED',
    'ERR_REVOKED',
    'ERR_FMSPC_MISMATCH',
    'ERR_QE_IDENTITY_MISMATCH',
    'ERR_TDX_MODULE_MISMATCH',
    'ERR_TCB_NOT_SUPPORTED',
    'ERR_TCB_STATUS',
  ] as const) {
    assert.ok(attestationErrorCodes.includes(code), code);
  }
});

test('AttestationError carries its code, cause and field', () => {
  const cause = new Error('inner');
  const e = new AttestationError('ERR_POLICY_VIOLATION', 'Cannot accept evidence: no', {
    cause,
    field: 'vmpl',
  });
  assert.ok(e instanceof Error);
  assert.equal(e.name, 'AttestationError');
  assert.equal(e.code, 'ERR_POLICY_VIOLATION');
  assert.equal(e.cause, cause);
  assert.equal(e.field, 'vmpl');
  const bare = new AttestationError('ERR_CHAIN_INVALID', 'Cannot verify the ASK: bad');
  assert.equal('cause' in bare, false);
  assert.equal('field' in bare, false);
  assert.ok(isAttestationError(bare, 'ERR_CHAIN_INVALID'));
  assert.ok(!isAttestationError(bare, 'ERR_ROOT_UNTRUSTED'));
  assert.ok(!isAttestationError(new Error('x')));
});
