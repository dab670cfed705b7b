import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSnpReport } from '../../../src/attestation/index.ts';
import { certChainPath, kdsCrlPath, snpProductOf, vcekPath } from '../../../src/host/collateral/index.ts';
import { NEEDS_EVIDENCE } from '../../attestation/evidence.ts';
import { file } from './fake-services.ts';

test('vcekPath() builds the KDS path go-sev-guest expects for its real Milan report', {
  skip: NEEDS_EVIDENCE,
}, () => {
  const r = parseSnpReport(file('go-sev-guest/attestation.bin'));
  const path = vcekPath('Milan', r.chipId, r.reportedTcb);
  // go-sev-guest verify_test.go: hwid 3ac3fe21...6b5d, blSPL=2 teeSPL=0 snpSPL=5 ucodeSPL=68.
  assert.match(path, /^\/vcek\/v1\/Milan\/3ac3fe21e13fb099[0-9a-f]{108}6b5d\?/);
  assert.equal(path.split('?')[1], 'blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68');
});

test('vcekPath() uses the 8-byte hwid and adds fmcSPL on Turin', { skip: NEEDS_EVIDENCE }, () => {
  const r = parseSnpReport(file('routex-client-lua/report-turin.bin'));
  const path = vcekPath('Turin', r.chipId, r.reportedTcb);
  assert.equal(path, '/vcek/v1/Turin/3b42092f69c656d3?blSPL=1&teeSPL=0&snpSPL=2&ucodeSPL=71&fmcSPL=0');
});

test('vcekPath() refuses a TCB of the wrong layout or a chip id of the wrong size', () => {
  const chip = new Uint8Array(64).fill(1);
  const tcb = { bootloader: 1, tee: 0, snp: 2, microcode: 3 };
  assert.throws(() => vcekPath('Turin', chip, tcb), RangeError);
  assert.throws(() => vcekPath('Milan', chip, { ...tcb, fmc: 0 }), RangeError);
  assert.throws(() => vcekPath('Milan', chip.subarray(0, 8), tcb), RangeError);
  assert.throws(() => vcekPath('Genoa', new Uint8Array(32), tcb), RangeError);
  assert.throws(() => vcekPath('Milan', chip, { ...tcb, snp: 256 }), RangeError);
  assert.throws(() => vcekPath('Naples' as 'Milan', chip, tcb), RangeError);
  assert.match(vcekPath('Genoa', chip, tcb), /^\/vcek\/v1\/Genoa\/(01){64}\?blSPL=1&/);
});

test('snpProductOf() names the product from the CPUID of v3+ reports', { skip: NEEDS_EVIDENCE }, () => {
  assert.equal(snpProductOf(parseSnpReport(file('routex-client-lua/report-turin.bin'))), 'Turin');
  assert.equal(snpProductOf(parseSnpReport(file('routex-client-lua/report-genoa-v3.bin'))), 'Genoa');
  assert.equal(snpProductOf(parseSnpReport(file('routex-client-lua/report-milan.bin'))), 'Milan');
  // Version 2 reports carry no CPUID.
  assert.equal(snpProductOf(parseSnpReport(file('go-sev-guest/attestation.bin'))), undefined);
  assert.equal(snpProductOf({ cpuid: { family: 0x17, model: 0x31, stepping: 0 } }), undefined);
});

test('certChainPath() and kdsCrlPath() follow the KDS layout', () => {
  assert.equal(certChainPath('Milan'), '/vcek/v1/Milan/cert_chain');
  assert.equal(certChainPath('Genoa', 'vlek'), '/vlek/v1/Genoa/cert_chain');
  assert.equal(kdsCrlPath('Turin'), '/vcek/v1/Turin/crl');
  assert.throws(() => kdsCrlPath('Rome' as 'Milan'), RangeError);
});
