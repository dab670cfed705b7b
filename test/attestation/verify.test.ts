import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { parseDcapCollateral } from '../../src/attestation/dcap/collateral.ts';
import { AttestationError, type AttestationErrorCode } from '../../src/attestation/errors.ts';
import { type Policy, parsePolicy } from '../../src/attestation/policy.ts';
import { defaultRoots } from '../../src/attestation/roots.ts';
import { signSimReport } from '../../src/attestation/sim/report.ts';
import { createSimRoot, type SimRootMaterial } from '../../src/attestation/sim/root.ts';
import {
  type Claims,
  type DcapClaims,
  type Evidence,
  type SnpClaims,
  type SnpEvidence,
  verify,
} from '../../src/attestation/verify.ts';
import { clearCertificateCache } from '../../src/attestation/x509.ts';
import {
  certDers,
  collateralJson,
  DCAP_SAMPLES,
  dcapResults,
  evidenceBytes,
  NEEDS_EVIDENCE,
  quoteBytes,
  quoteTime,
  reportBytes,
  SNP_SAMPLES,
  type SnpSample,
  sampleCerts,
  snpResults,
  timeInside,
} from './evidence.ts';

const NOW = new Date('2026-03-01T12:00:00Z');
const results = NEEDS_EVIDENCE === false ? snpResults() : {};
let root: SimRootMaterial;

before(async () => {
  root = await createSimRoot({ now: NOW });
});

function rejects(fn: () => unknown, code: AttestationErrorCode, field?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AttestationError, String(e));
    assert.equal(e.code, code, e.message);
    if (field !== undefined) assert.equal(e.field, field);
    return true;
  });
}

function sample(report: string): SnpSample {
  return SNP_SAMPLES.find((s) => s.report === report)!;
}

function realEvidence(s: SnpSample, order: 'vek' | 'chain' | 'shuffled' = 'chain'): SnpEvidence {
  const { vek, ask, ark } = sampleCerts(s);
  const certs = order === 'vek' ? [vek] : order === 'chain' ? [vek, ask, ark] : [ark, vek, ask, vek];
  return { kind: 'sev-snp', report: reportBytes(s.report), certs };
}

const MEASUREMENT = new Uint8Array(48).fill(0x3c);
const REPORT_DATA = Uint8Array.from({ length: 64 }, (_, i) => 255 - i);

function simEvidence(input: Partial<Parameters<typeof signSimReport>[1]> = {}): SnpEvidence {
  const report = signSimReport(root, { reportData: REPORT_DATA, measurement: MEASUREMENT, ...input });
  return { kind: 'sev-snp', report, certs: [root.arkDer, root.vcekDer, root.askDer] };
}

/** The claims as SEV-SNP claims: fails the test when they are of another kind. */
function snp(claims: Claims): SnpClaims {
  assert.equal(claims.kind, 'sev-snp');
  return claims as SnpClaims;
}

function trusting(extra: Record<string, unknown> = {}): Policy {
  return parsePolicy({ trustSimulatedRoots: [root.fingerprint], ...extra });
}

describe('verify() on real evidence', () => {
  for (const s of SNP_SAMPLES) {
    test(`verify() returns the claims of ${s.report}`, { skip: NEEDS_EVIDENCE }, () => {
      const r = results[s.report]!;
      const o = r.report as Record<string, unknown>;
      // The go-sev-guest sample allows debugging; everything else must pass the default policy.
      const policy = parsePolicy(o.policy === '0xb0000' ? { allowDebug: true } : {});
      const claims = snp(verify(realEvidence(s), policy, { now: timeInside(r) }));
      assert.equal(claims.version, o.version);
      assert.equal(claims.measurement, o.measurement);
      assert.equal(claims.reportData, o.report_data);
      assert.equal(claims.chipId, o.chip_id);
      assert.equal(claims.hostData, o.host_data);
      assert.equal(claims.policy, o.policy);
      assert.equal(claims.vmpl, o.vmpl);
      assert.equal(claims.guestSvn, o.guest_svn);
      assert.equal(claims.product, s.product);
      assert.equal(claims.simulated, false);
      assert.equal(claims.rootFingerprint, r.checks.ark_sha256);
      const { raw: _, ...tcb } = o.reported_tcb as Record<string, unknown>;
      assert.deepEqual(claims.tcb, tcb);
      assert.equal(claims.currentVersion, o.current_version);
      // Claims are plain data: they survive JSON.
      assert.deepEqual(JSON.parse(JSON.stringify(claims)), claims);
    });
  }

  test('verify() takes the certificates in any order, with duplicates, or the VCEK alone', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const s = sample('routex-client-lua/report-turin.bin');
    const now = timeInside(results[s.report]!);
    const a = verify(realEvidence(s, 'vek'), {}, { now });
    const b = verify(realEvidence(s, 'shuffled'), {}, { now });
    assert.deepEqual(a, b);
  });

  test('verify() rejects the debug-enabled go-sev-guest report unless the policy allows debugging', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const s = sample('go-sev-guest/attestation.bin');
    const now = timeInside(results[s.report]!);
    rejects(() => verify(realEvidence(s), {}, { now }), 'ERR_POLICY_VIOLATION', 'allowDebug');
    assert.equal(verify(realEvidence(s), { allowDebug: true }, { now }).debug, true);
  });

  test('verify() enforces minTcb.fmc on the real Turin report', { skip: NEEDS_EVIDENCE }, () => {
    const s = sample('routex-client-lua/report-turin.bin');
    const now = timeInside(results[s.report]!);
    verify(realEvidence(s), { minTcb: { fmc: 0, snp: 2 } }, { now });
    rejects(
      () => verify(realEvidence(s), { minTcb: { snp: 3 } }, { now }),
      'ERR_POLICY_VIOLATION',
      'minTcb.snp',
    );
    const milan = sample('routex-client-lua/report-milan.bin');
    rejects(
      () => verify(realEvidence(milan), { minTcb: { fmc: 0 } }, { now: timeInside(results[milan.report]!) }),
      'ERR_POLICY_UNSUPPORTED',
      'minTcb.fmc',
    );
  });

  test('verify() checks the REPORT_DATA of a real report against the expected nonce', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const s = sample('go-sev-guest/attestation.bin');
    const now = timeInside(results[s.report]!);
    // go-sev-guest's test nonce: 01 02 03 04 05 then zeros.
    const nonce = new Uint8Array(64);
    nonce.set([1, 2, 3, 4, 5]);
    verify(realEvidence(s), { allowDebug: true, reportData: nonce }, { now });
    nonce[5] = 6;
    rejects(
      () => verify(realEvidence(s), { allowDebug: true, reportData: nonce }, { now }),
      'ERR_REPORT_DATA_MISMATCH',
    );
  });

  test('verify() uses the given roots instead of the defaults', { skip: NEEDS_EVIDENCE }, () => {
    const s = sample('routex-client-lua/report-milan.bin');
    const now = timeInside(results[s.report]!);
    const genoaOnly = {
      amdArks: [certDers('roots/AMD_ARK-Genoa.pem')[0]!],
      simulatedArkFingerprints: [],
      intelRoots: [],
    };
    rejects(() => verify(realEvidence(s), {}, { now, roots: genoaOnly }), 'ERR_ROOT_UNTRUSTED');
  });

  test('verify() timing: cold and cached', { skip: NEEDS_EVIDENCE }, (t) => {
    const s = sample('routex-client-lua/report-genoa-v5.bin');
    const now = timeInside(results[s.report]!);
    const evidence = realEvidence(s);
    const policy = parsePolicy({});
    clearCertificateCache();
    let at = performance.now();
    verify(evidence, policy, { now });
    const cold = performance.now() - at;
    at = performance.now();
    for (let i = 0; i < 50; i++) verify(evidence, policy, { now });
    t.diagnostic(
      `verify() real Genoa v5: cold ${cold.toFixed(2)} ms, cached ${((performance.now() - at) / 50).toFixed(2)} ms`,
    );
  });
});

describe('verify() shape checks', () => {
  test('verify() rejects evidence kinds it does not verify', () => {
    for (const kind of ['dcap', 'nil', 'SEV-SNP', undefined]) {
      const e = { ...simEvidence(), kind } as unknown as Evidence;
      rejects(() => verify(e, trusting(), { now: NOW }), 'ERR_EVIDENCE_UNSUPPORTED');
    }
  });

  test('verify() rejects an SNP report relabelled as a DCAP quote as malformed', () => {
    for (const kind of ['sgx', 'tdx']) {
      const e = { ...simEvidence(), kind } as unknown as Evidence;
      rejects(() => verify(e, trusting(), { now: NOW }), 'ERR_EVIDENCE_MALFORMED');
      const asQuote = { kind, quote: simEvidence().report } as unknown as Evidence;
      rejects(() => verify(asQuote, parsePolicy({}), { now: NOW }), 'ERR_EVIDENCE_UNSUPPORTED');
    }
  });

  test('verify() rejects evidence of the wrong shape as malformed', () => {
    const good = simEvidence();
    rejects(
      () => verify({ ...good, report: 'x' as unknown as Uint8Array }, trusting(), { now: NOW }),
      'ERR_EVIDENCE_MALFORMED',
    );
    rejects(
      () => verify({ ...good, certs: 'x' as unknown as Uint8Array[] }, trusting(), { now: NOW }),
      'ERR_EVIDENCE_MALFORMED',
    );
    rejects(
      () => verify({ ...good, certs: [new Uint8Array([0x30, 0x00])] }, trusting(), { now: NOW }),
      'ERR_EVIDENCE_MALFORMED',
    );
    rejects(() => verify(null as unknown as Evidence, trusting(), { now: NOW }), 'ERR_EVIDENCE_MALFORMED');
  });

  test('verify() rejects certificate sets without exactly one VCEK/VLEK, ASK and ARK', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const good = simEvidence();
    rejects(
      () => verify({ ...good, certs: [root.askDer, root.arkDer] }, trusting(), { now: NOW }),
      'ERR_CHAIN_INVALID',
    );
    const realVcek = certDers('routex-client-lua/vcek-milan.pem')[0]!;
    const realArk = certDers('roots/AMD_ARK-Milan.pem')[0]!;
    rejects(
      () => verify({ ...good, certs: [...good.certs, realVcek] }, trusting(), { now: NOW }),
      'ERR_CHAIN_INVALID',
    );
    rejects(
      () => verify({ ...good, certs: [...good.certs, realArk] }, trusting(), { now: NOW }),
      'ERR_CHAIN_INVALID',
    );
  });

  test('verify() rejects a real VCEK presented under the simulated chain', { skip: NEEDS_EVIDENCE }, () => {
    const realVcek = certDers('routex-client-lua/vcek-milan.pem')[0]!;
    const e = { ...simEvidence(), certs: [realVcek, root.askDer, root.arkDer] };
    rejects(() => verify(e, trusting(), { now: NOW }), 'ERR_CHAIN_INVALID');
  });

  test('verify() rejects a policy with an unknown field even when not parsed first', () => {
    rejects(
      () => verify(simEvidence(), { ...trusting(), measurement: 'x' } as unknown as Policy, { now: NOW }),
      'ERR_POLICY_UNSUPPORTED',
    );
  });
});

describe('verify() on simulated evidence', () => {
  test('verify() accepts simulated evidence under a policy naming its root and returns its claims', () => {
    const claims = snp(
      verify(simEvidence(), trusting({ measurements: ['3c'.repeat(48)], reportData: REPORT_DATA }), {
        now: NOW,
      }),
    );
    assert.equal(claims.simulated, true);
    assert.equal(claims.product, 'Simulated');
    assert.equal(claims.rootFingerprint, root.fingerprint);
    assert.equal(claims.measurement, '3c'.repeat(48));
    assert.equal(claims.policy, '0x30000');
    assert.equal(claims.signingKey, 'vcek');
  });

  test('verify() adds the policy roots to custom roots too', () => {
    const claims = snp(
      verify(simEvidence(), trusting(), {
        now: NOW,
        roots: { amdArks: [], simulatedArkFingerprints: [], intelRoots: [] },
      }),
    );
    assert.equal(claims.simulated, true);
    const viaRoots = snp(
      verify(simEvidence(), parsePolicy({}), {
        now: NOW,
        roots: {
          amdArks: defaultRoots.amdArks,
          simulatedArkFingerprints: [root.fingerprint],
          intelRoots: [],
        },
      }),
    );
    assert.equal(viaRoots.simulated, true);
  });

  test('verify() never accepts simulated evidence under a policy that does not name its root', () => {
    const evidence = simEvidence();
    const policy = fc.record(
      {
        measurements: fc.constant(['3c'.repeat(48)]),
        allowDebug: fc.boolean(),
        allowMigrationAgent: fc.boolean(),
        minGuestSvn: fc.constant(0),
        trustSimulatedRoots: fc.array(
          fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 }),
          { minLength: 1, maxLength: 3 },
        ),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(policy, (p) => {
        if (p.trustSimulatedRoots?.includes(root.fingerprint)) return;
        rejects(() => verify(evidence, parsePolicy(p), { now: NOW }), 'ERR_SIMULATED_ROOT_NOT_TRUSTED');
      }),
      { numRuns: 50 },
    );
  });

  test('verify() rejects a measurement the policy does not allow', () => {
    rejects(
      () => verify(simEvidence(), trusting({ measurements: ['3d'.repeat(48)] }), { now: NOW }),
      'ERR_POLICY_VIOLATION',
      'measurements',
    );
  });

  test('verify() rejects a debuggable simulated guest', () => {
    const debug = simEvidence({ policy: 0x30000n | (1n << 19n) });
    rejects(() => verify(debug, trusting(), { now: NOW }), 'ERR_POLICY_VIOLATION', 'allowDebug');
    assert.equal(verify(debug, trusting({ allowDebug: true }), { now: NOW }).debug, true);
  });

  test('verify() rejects a TCB below the policy minimum', () => {
    const snp = root.tcb.snp;
    verify(simEvidence(), trusting({ minTcb: { snp } }), { now: NOW });
    rejects(
      () => verify(simEvidence(), trusting({ minTcb: { snp: snp + 1 } }), { now: NOW }),
      'ERR_POLICY_VIOLATION',
      'minTcb.snp',
    );
  });

  test('verify() rejects REPORT_DATA other than the expected binding', () => {
    const other = REPORT_DATA.slice();
    other[63] = other[63]! ^ 1;
    rejects(
      () => verify(simEvidence(), trusting({ reportData: other }), { now: NOW }),
      'ERR_REPORT_DATA_MISMATCH',
      'reportData',
    );
  });

  test('verify() rejects VMPL, host data and guest SVN mismatches', () => {
    const e = simEvidence({ vmpl: 1, hostData: new Uint8Array(32).fill(9), guestSvn: 3 });
    verify(e, trusting({ vmpl: 1, hostData: '09'.repeat(32), minGuestSvn: 3 }), { now: NOW });
    rejects(() => verify(e, trusting({ vmpl: 0 }), { now: NOW }), 'ERR_POLICY_VIOLATION', 'vmpl');
    rejects(
      () => verify(e, trusting({ hostData: '08'.repeat(32) }), { now: NOW }),
      'ERR_POLICY_VIOLATION',
      'hostData',
    );
    rejects(
      () => verify(e, trusting({ minGuestSvn: 4 }), { now: NOW }),
      'ERR_POLICY_VIOLATION',
      'minGuestSvn',
    );
  });

  test('verify() timing on simulated evidence: cold and cached', (t) => {
    const evidence = simEvidence();
    const policy = trusting();
    clearCertificateCache();
    let at = performance.now();
    verify(evidence, policy, { now: NOW });
    const cold = performance.now() - at;
    at = performance.now();
    for (let i = 0; i < 50; i++) verify(evidence, policy, { now: NOW });
    t.diagnostic(
      `verify() simulated: cold ${cold.toFixed(2)} ms, cached ${((performance.now() - at) / 50).toFixed(2)} ms`,
    );
  });
});

describe('verify() on DCAP quotes', () => {
  const dcap = NEEDS_EVIDENCE === false ? dcapResults() : {};
  const claimsOf = (c: Claims) => {
    assert.ok(c.kind === 'sgx' || c.kind === 'tdx');
    return c as DcapClaims;
  };

  for (const path of DCAP_SAMPLES) {
    test(`verify() returns the claims of ${path}`, { skip: NEEDS_EVIDENCE }, () => {
      const r = dcap[path]!;
      const kind = r.kind === 'SGX' ? 'sgx' : 'tdx';
      const b = r.body;
      const debug =
        kind === 'sgx'
          ? (Number.parseInt(String(b.attributes).slice(0, 2), 16) & 2) !== 0
          : (Number.parseInt(String(b.td_attributes).slice(0, 2), 16) & 1) !== 0;
      const claims = claimsOf(
        verify({ kind, quote: quoteBytes(path) }, parsePolicy(debug ? { allowDebug: true } : {}), {
          now: quoteTime(r),
        }),
      );
      assert.equal(claims.kind, kind);
      assert.equal(claims.version, r.header.version);
      assert.equal(claims.reportData, b.report_data);
      assert.equal(claims.debug, debug);
      assert.equal(claims.fmspc, r.checks.pck_extensions.fmspc);
      assert.equal(claims.collateralChecked, false);
      assert.equal(claims.tcbStatus, undefined);
      assert.equal(claims.advisoryIds, undefined);
      if (claims.kind === 'sgx') {
        assert.equal(claims.measurement, b.mrenclave);
        assert.equal(claims.mrSigner, b.mrsigner);
        assert.equal(claims.isvProdId, b.isvprodid);
        assert.equal(claims.isvSvn, b.isvsvn);
        assert.equal(claims.attributes, b.attributes);
      } else {
        assert.equal(claims.measurement, b.mrtd);
        assert.deepEqual(
          [claims.rtmr0, claims.rtmr1, claims.rtmr2, claims.rtmr3, claims.mrSeam, claims.mrSignerSeam],
          [b.rtmr0, b.rtmr1, b.rtmr2, b.rtmr3, b.mrseam, b.mrsignerseam],
        );
        assert.deepEqual(
          [
            claims.tdAttributes,
            claims.xfam,
            claims.teeTcbSvn,
            claims.mrConfigId,
            claims.mrOwner,
            claims.mrOwnerConfig,
          ],
          [b.td_attributes, b.xfam, b.tee_tcb_svn, b.mrconfigid, b.mrowner, b.mrownerconfig],
        );
        assert.equal(claims.mrServiceTd, b.mrservicetd);
        assert.equal(claims.teeTcbSvn2, b.tee_tcb_svn2);
      }
      // Labelled as the other kind, the same quote is refused.
      rejects(
        () =>
          verify(
            { kind: kind === 'sgx' ? 'tdx' : 'sgx', quote: quoteBytes(path) },
            parsePolicy({ allowDebug: true }),
            { now: quoteTime(r) },
          ),
        'ERR_EVIDENCE_MALFORMED',
      );
    });
  }

  test('verify() refuses the debug TD of trustee tdx_quote_4 under the default policy', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const path = 'trustee/tdx_quote_4.dat';
    rejects(
      () =>
        verify({ kind: 'tdx', quote: quoteBytes(path) }, parsePolicy({}), { now: quoteTime(dcap[path]!) }),
      'ERR_POLICY_VIOLATION',
      'allowDebug',
    );
  });

  test('verify() appraises the dcap-qvl SGX quote with its collateral under acceptedTcbStatuses', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const collateral = parseDcapCollateral(collateralJson('dcap-qvl/sgx_quote_collateral.json'));
    const evidence = { kind: 'sgx' as const, quote: quoteBytes('dcap-qvl/sgx_quote'), collateral };
    const now = new Date('2025-07-01T00:00:00Z');
    rejects(() => verify(evidence, parsePolicy({}), { now }), 'ERR_TCB_STATUS', 'acceptedTcbStatuses');
    const claims = claimsOf(
      verify(
        evidence,
        parsePolicy({ acceptedTcbStatuses: ['ConfigurationAndSWHardeningNeeded'], requireCollateral: true }),
        { now },
      ),
    );
    assert.equal(claims.collateralChecked, true);
    assert.equal(claims.tcbStatus, 'ConfigurationAndSWHardeningNeeded');
    assert.deepEqual(claims.advisoryIds, ['INTEL-SA-00289', 'INTEL-SA-00615']);
    // The default roots pin Intel's root; roots without it refuse the quote.
    rejects(
      () =>
        verify(evidence, parsePolicy({}), {
          now,
          roots: { amdArks: [], simulatedArkFingerprints: [], intelRoots: [] },
        }),
      'ERR_ROOT_UNTRUSTED',
    );
  });

  test('verify() accepts the dcap-qvl TDX quote with its collateral under the default policy', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const collateral = parseDcapCollateral(collateralJson('dcap-qvl/tdx_quote_collateral.json'));
    const claims = claimsOf(
      verify(
        { kind: 'tdx', quote: quoteBytes('dcap-qvl/tdx_quote'), collateral },
        parsePolicy({ requireCollateral: true }),
        {
          now: new Date('2025-07-01T00:00:00Z'),
        },
      ),
    );
    assert.equal(claims.tcbStatus, 'UpToDate');
    assert.deepEqual(claims.advisoryIds, []);
  });

  test('verify() refuses a DCAP quote given as something other than bytes', () => {
    rejects(
      () => verify({ kind: 'tdx', quote: 'x' as unknown as Uint8Array }, parsePolicy({}), { now: NOW }),
      'ERR_EVIDENCE_MALFORMED',
    );
  });

  test('verify() checks SEV-SNP CRLs given with the evidence and reports collateralChecked', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const s = sample('enarx-steward/milan.signed.crl.report.bin');
    const now = new Date('2023-01-15T00:00:00Z');
    const crls = [evidenceBytes('enarx-steward/milan.signed.crl.crl1.der')];
    const checked = snp(
      verify({ ...realEvidence(s), crls }, parsePolicy({ requireCollateral: true }), { now }),
    );
    assert.equal(checked.collateralChecked, true);
    rejects(
      () => verify(realEvidence(s), parsePolicy({ requireCollateral: true }), { now }),
      'ERR_POLICY_VIOLATION',
      'requireCollateral',
    );
    assert.equal(snp(verify(realEvidence(s), parsePolicy({}), { now })).collateralChecked, false);
  });
});
