import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { toHex } from '../../../src/attestation/bytes.ts';
import { AttestationError } from '../../../src/attestation/errors.ts';
import { parseSnpReport, SNP_REPORT_SIZE, type SnpTcb } from '../../../src/attestation/snp/report.ts';
import { NEEDS_EVIDENCE, reportBytes, SNP_SAMPLES, type SnpResult, snpResults } from '../evidence.ts';

const results = NEEDS_EVIDENCE === false ? snpResults() : {};

function assertTcb(actual: SnpTcb, expected: Record<string, number | string>, label: string): void {
  assert.equal(actual.raw, BigInt(expected.raw as string), `${label}.raw`);
  for (const c of ['bootloader', 'tee', 'snp', 'microcode', 'fmc'] as const) {
    assert.equal(actual[c], expected[c], `${label}.${c}`);
  }
}

function assertMatchesOracle(bytes: Uint8Array, result: SnpResult): void {
  const r = parseSnpReport(bytes);
  const o = result.report as Record<string, unknown>;
  assert.equal(r.version, o.version);
  assert.equal(r.guestSvn, o.guest_svn);
  assert.equal(r.policy, BigInt(o.policy as string));
  assert.equal(toHex(r.familyId), o.family_id);
  assert.equal(toHex(r.imageId), o.image_id);
  assert.equal(r.vmpl, o.vmpl);
  assert.equal(r.signatureAlgo, o.signature_algo);
  assert.equal(r.platformInfo, BigInt(o.platform_info as string));
  assert.equal(r.authorKeyEn, o.author_key_en === 1);
  assert.equal(r.maskChipKey, o.mask_chip_key === 1);
  assert.equal(r.signingKey, (['vcek', 'vlek'] as const)[o.signing_key as number]);
  assert.equal(toHex(r.reportData), o.report_data);
  assert.equal(toHex(r.measurement), o.measurement);
  assert.equal(toHex(r.hostData), o.host_data);
  assert.equal(toHex(r.idKeyDigest), o.id_key_digest);
  assert.equal(toHex(r.authorKeyDigest), o.author_key_digest);
  assert.equal(toHex(r.reportId), o.report_id);
  assert.equal(toHex(r.reportIdMa), o.report_id_ma);
  assert.equal(toHex(r.chipId), o.chip_id);
  assert.equal(r.currentVersion, o.current_version);
  assert.equal(r.committedVersion, o.committed_version);
  assertTcb(r.currentTcb, o.current_tcb as Record<string, number>, 'currentTcb');
  assertTcb(r.reportedTcb, o.reported_tcb as Record<string, number>, 'reportedTcb');
  assertTcb(r.committedTcb, o.committed_tcb as Record<string, number>, 'committedTcb');
  assertTcb(r.launchTcb, o.launch_tcb as Record<string, number>, 'launchTcb');
  assert.equal(r.reportedTcb.fmc !== undefined, o.turin_like_tcb_layout);
  if (o.cpuid_fam_id === undefined) {
    assert.equal(r.cpuid, undefined);
  } else {
    assert.deepEqual(r.cpuid, {
      family: Number(o.cpuid_fam_id),
      model: Number(o.cpuid_mod_id),
      stepping: Number(o.cpuid_step),
    });
  }
  assert.equal(
    r.launchMitVector,
    o.launch_mit_vector === undefined ? undefined : BigInt(o.launch_mit_vector as string),
  );
  assert.equal(
    r.currentMitVector,
    o.current_mit_vector === undefined ? undefined : BigInt(o.current_mit_vector as string),
  );
  assert.equal(r.debug, (r.policy & (1n << 19n)) !== 0n);
  assert.deepEqual(r.signedBytes, bytes.subarray(0, 0x2a0));
  // The signature is stored little-endian; the parsed form is big-endian r || s.
  assert.deepEqual(r.signature.subarray(0, 48), bytes.slice(0x2a0, 0x2d0).reverse());
  assert.deepEqual(r.signature.subarray(48), bytes.slice(0x2e8, 0x318).reverse());
}

describe('parseSnpReport() on real reports', () => {
  for (const sample of SNP_SAMPLES) {
    test(`parseSnpReport() decodes ${sample.report} as RESULTS.json does`, { skip: NEEDS_EVIDENCE }, () => {
      const result = results[sample.report];
      assert.ok(result, `RESULTS.json has ${sample.report}`);
      assertMatchesOracle(reportBytes(sample.report), result);
    });
  }

  test('parseSnpReport() covers versions 2, 3 and 5, VCEK and VLEK, Milan, Genoa and Turin', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const parsed = SNP_SAMPLES.map((s) => ({ s, r: parseSnpReport(reportBytes(s.report)) }));
    assert.deepEqual(new Set(parsed.map((p) => p.r.version)), new Set([2, 3, 5]));
    assert.deepEqual(new Set(parsed.map((p) => p.r.signingKey)), new Set(['vcek', 'vlek']));
    assert.deepEqual(new Set(parsed.map((p) => p.s.product)), new Set(['Milan', 'Genoa', 'Turin']));
  });

  test('parseSnpReport() reads the Turin TCB layout (fmc, 8-byte chip id)', { skip: NEEDS_EVIDENCE }, () => {
    const r = parseSnpReport(reportBytes('routex-client-lua/report-turin.bin'));
    assert.equal(r.reportedTcb.raw, 0x4700000002000100n);
    assert.deepEqual(
      { ...r.reportedTcb, raw: 0n },
      { fmc: 0, bootloader: 1, tee: 0, snp: 2, microcode: 71, raw: 0n },
    );
    assert.equal(r.cpuid?.family, 0x1a);
    assert.equal(toHex(r.chipId.subarray(0, 8)), '3b42092f69c656d3');
  });

  test('parseSnpReport() reads the parse-only v2 Genoa report without a VCEK', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const r = parseSnpReport(reportBytes('routex-client-lua/report_spec-genoa.bin'));
    assert.equal(r.version, 2);
    assert.equal(r.cpuid, undefined);
    assert.equal(toHex(r.chipId).slice(0, 8), 'd932d021');
  });

  test('parseSnpReport() reads the SNP report inside the Azure HCL report', { skip: NEEDS_EVIDENCE }, () => {
    // az-snp-vtpm__milan_snp_report.bin is bytes 0x20..0x4C0 of the HCL report: check the cut agrees.
    const hcl = reportBytes('trustee/az-snp-vtpm__genoa_hcl_report.bin');
    const inner = parseSnpReport(hcl.subarray(0x20, 0x20 + SNP_REPORT_SIZE));
    const cut = parseSnpReport(reportBytes('trustee/az-snp-vtpm__genoa_snp_report.bin'));
    assert.deepEqual(inner, cut);
  });
});

/** A minimal valid v3 report body with zero signature, built by hand (no sample needed). */
function minimalReport(version = 3): Uint8Array {
  const b = new Uint8Array(SNP_REPORT_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint32(0x000, version, true);
  dv.setBigUint64(0x008, 0x30000n, true);
  dv.setUint32(0x034, 1, true);
  if (version >= 3) b.set([0x19, 0x11, 0x01], 0x188);
  return b;
}

function expectCode(fn: () => unknown, code: AttestationError['code']): void {
  assert.throws(fn, (e: unknown) => e instanceof AttestationError && e.code === code);
}

describe('parseSnpReport() rejects malformed reports', () => {
  test('parseSnpReport() accepts the hand-built minimal report', () => {
    const r = parseSnpReport(minimalReport());
    assert.equal(r.version, 3);
    assert.equal(r.signingKey, 'vcek');
    assert.equal(r.debug, false);
    assert.equal(r.launchMitVector, undefined);
  });

  test('parseSnpReport() rejects a truncated report', () => {
    expectCode(
      () => parseSnpReport(minimalReport().subarray(0, SNP_REPORT_SIZE - 1)),
      'ERR_EVIDENCE_MALFORMED',
    );
    expectCode(() => parseSnpReport(new Uint8Array(0)), 'ERR_EVIDENCE_MALFORMED');
  });

  test('parseSnpReport() rejects an extended report', () => {
    const b = new Uint8Array(SNP_REPORT_SIZE + 1);
    b.set(minimalReport());
    expectCode(() => parseSnpReport(b), 'ERR_EVIDENCE_MALFORMED');
  });

  test('parseSnpReport() rejects versions other than 2 to 5', () => {
    for (const v of [0, 1, 6, 0xffffffff]) {
      const b = minimalReport();
      new DataView(b.buffer).setUint32(0, v, true);
      expectCode(() => parseSnpReport(b), 'ERR_EVIDENCE_UNSUPPORTED');
    }
  });

  test('parseSnpReport() accepts version 4 with the version 3 layout', () => {
    const r = parseSnpReport(minimalReport(4));
    assert.equal(r.version, 4);
    assert.deepEqual(r.cpuid, { family: 0x19, model: 0x11, stepping: 1 });
  });

  test('parseSnpReport() rejects a signature algorithm other than ECDSA P-384', () => {
    const b = minimalReport();
    b[0x034] = 2;
    expectCode(() => parseSnpReport(b), 'ERR_EVIDENCE_UNSUPPORTED');
  });

  test('parseSnpReport() rejects a clear POLICY bit 17', () => {
    const b = minimalReport();
    b[0x00a] = 0x01; // bit 16 only
    expectCode(() => parseSnpReport(b), 'ERR_EVIDENCE_MALFORMED');
  });

  test('parseSnpReport() rejects unknown signing keys and reserved signer bits', () => {
    for (const info of [2 << 2, 3 << 2, 6 << 2, 1 << 5, 1 << 31]) {
      const b = minimalReport();
      new DataView(b.buffer).setUint32(0x048, info >>> 0, true);
      expectCode(() => parseSnpReport(b), 'ERR_EVIDENCE_MALFORMED');
    }
    const none = minimalReport();
    none[0x048] = 7 << 2;
    assert.equal(parseSnpReport(none).signingKey, 'none');
  });

  test('parseSnpReport() rejects a non-zero byte in every reserved range', () => {
    const reserved: [number, number, number][] = [
      // [start, end, version]
      [0x04c, 0x050, 3],
      [0x18b, 0x1a0, 3],
      [0x188, 0x1a0, 2],
      [0x1eb, 0x1ec, 3],
      [0x1ef, 0x1f0, 3],
      [0x1f8, 0x208, 3],
      [0x208, 0x2a0, 5],
      [0x2a0 + 48, 0x2e8, 3],
      [0x2e8 + 48, 0x330, 3],
      [0x330, 0x4a0, 3],
      // TCB reserved bytes (Milan/Genoa layout: bytes 2..5 of each TCB)
      [0x03a, 0x03e, 3],
      [0x182, 0x186, 3],
      [0x1e2, 0x1e6, 3],
      [0x1f2, 0x1f6, 3],
    ];
    for (const [start, end, version] of reserved) {
      for (const at of new Set([start, end - 1])) {
        const b = minimalReport(version);
        b[at] = 0x01;
        expectCode(() => parseSnpReport(b), 'ERR_EVIDENCE_MALFORMED');
      }
    }
  });

  test('parseSnpReport() rejects a Turin chip id with bytes beyond the eighth', () => {
    const b = minimalReport(5);
    b[0x188] = 0x1a;
    b[0x1a0 + 7] = 0xaa;
    assert.equal(parseSnpReport(b).chipId[7], 0xaa);
    b[0x1a0 + 8] = 0x01;
    expectCode(() => parseSnpReport(b), 'ERR_EVIDENCE_MALFORMED');
  });

  test('parseSnpReport() rejects Turin TCB reserved bytes but not the Milan SNP byte', () => {
    const turin = minimalReport(5);
    turin[0x188] = 0x1a;
    turin[0x180 + 6] = 1; // reserved in the Turin layout
    expectCode(() => parseSnpReport(turin), 'ERR_EVIDENCE_MALFORMED');
    const milan = minimalReport(3);
    milan[0x180 + 6] = 9; // SNP SPL in the Milan layout
    assert.equal(parseSnpReport(milan).reportedTcb.snp, 9);
  });

  test('parseSnpReport() throws TypeError for a non-Uint8Array', () => {
    assert.throws(() => parseSnpReport('report' as unknown as Uint8Array), TypeError);
  });
});

describe('parseSnpReport() fuzzing', () => {
  const onlyOurErrors = (bytes: Uint8Array) => {
    try {
      parseSnpReport(bytes);
    } catch (e) {
      if (!(e instanceof AttestationError)) throw e;
    }
  };

  test('parseSnpReport() on random bytes throws only AttestationError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 1300 }), (bytes) => onlyOurErrors(bytes)),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: SNP_REPORT_SIZE, maxLength: SNP_REPORT_SIZE }), (bytes) =>
        onlyOurErrors(bytes),
      ),
      { numRuns: 300 },
    );
  });

  test('parseSnpReport() on mutated valid reports throws only AttestationError', () => {
    const base = minimalReport(5);
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.integer({ min: 0, max: SNP_REPORT_SIZE - 1 }), fc.integer({ min: 0, max: 255 })),
          {
            maxLength: 8,
          },
        ),
        (edits) => {
          const b = base.slice();
          for (const [at, value] of edits) b[at] = value;
          onlyOurErrors(b);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
