import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { toHex } from '../../../src/attestation/bytes.ts';
import { AttestationError } from '../../../src/attestation/errors.ts';
import { readVekExtensions } from '../../../src/attestation/snp/vek.ts';
import { parseCertificate } from '../../../src/attestation/x509.ts';
import { certDers, NEEDS_EVIDENCE, SNP_SAMPLES, snpResults } from '../evidence.ts';

const results = NEEDS_EVIDENCE === false ? snpResults() : {};

describe('readVekExtensions() on real certificates', () => {
  for (const sample of SNP_SAMPLES) {
    test(`readVekExtensions() reads ${sample.vek} as RESULTS.json does`, { skip: NEEDS_EVIDENCE }, () => {
      const info = readVekExtensions(parseCertificate(certDers(sample.vek)[0]!));
      const ext = results[sample.report]!.checks.vek_extensions;
      assert.equal(info.structVersion, ext['1']);
      assert.equal(info.productName, ext['2']);
      assert.equal(info.tcb.bootloader, ext['3.1']);
      assert.equal(info.tcb.tee, ext['3.2']);
      assert.equal(info.tcb.snp, ext['3.3']);
      assert.equal(info.tcb.microcode, ext['3.8']);
      assert.equal(info.tcb.fmc, ext['3.9']);
      if (ext.hwID !== undefined) {
        assert.equal(info.kind, 'vcek');
        assert.equal(toHex(info.hwId!), ext.hwID);
        assert.equal(info.cspId, undefined);
      } else {
        assert.equal(info.kind, 'vlek');
        assert.equal(info.cspId, ext['5']);
        assert.equal(info.hwId, undefined);
      }
    });
  }

  test('readVekExtensions() reads the Turin VCEK that came without a report', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const info = readVekExtensions(parseCertificate(certDers('virtee-sev/vcek_turin.der')[0]!));
    assert.equal(info.structVersion, 1);
    assert.equal(info.productName, 'Turin');
    assert.equal(toHex(info.hwId!), '1e550a8ee5cf9f4d');
    assert.equal(info.tcb.microcode, 9);
    assert.notEqual(info.tcb.fmc, undefined);
  });

  test('readVekExtensions() reads a ucodeSPL of 128 or more (DER leading zero)', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const info = readVekExtensions(parseCertificate(certDers('trustee/snp__test-vlek.der')[0]!));
    assert.equal(info.tcb.microcode, 217);
  });

  test('readVekExtensions() accepts hwID raw and wrapped in an OCTET STRING', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const expected = Array.from({ length: 64 }, (_, i) => i.toString(16).padStart(2, '0')).join('');
    for (const name of ['snp__test-vcek-invalid-legacy.der', 'snp__test-vcek-invalid-new.der']) {
      const info = readVekExtensions(parseCertificate(certDers(`trustee/SYNTHETIC/${name}`)[0]!));
      assert.equal(toHex(info.hwId!), expected, name);
    }
  });

  test('readVekExtensions() rejects an ARK, which has no VCEK extensions', { skip: NEEDS_EVIDENCE }, () => {
    const ark = parseCertificate(certDers('roots/AMD_ARK-Milan.pem')[0]!);
    assert.throws(
      () => readVekExtensions(ark),
      (e: unknown) => e instanceof AttestationError && e.code === 'ERR_CHAIN_INVALID',
    );
  });
});
