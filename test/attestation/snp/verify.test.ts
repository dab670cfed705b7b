import assert from 'node:assert/strict';
import { constants, generateKeyPair, type KeyObject, sign } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { sha256Hex } from '../../../src/attestation/bytes.ts';
import { AttestationError, type AttestationErrorCode } from '../../../src/attestation/errors.ts';
import { defaultRoots, type TrustRoots } from '../../../src/attestation/roots.ts';
import {
  basicConstraintsCa,
  buildCertificate,
  keyUsageCertSign,
  PSS_SHA384,
} from '../../../src/attestation/sim/cert.ts';
import { signSimReport } from '../../../src/attestation/sim/report.ts';
import type { SimRootMaterial } from '../../../src/attestation/sim/root.ts';
import { parseSnpReport, SNP_SIGNED_SIZE } from '../../../src/attestation/snp/report.ts';
import { snpTcb } from '../../../src/attestation/snp/tcb.ts';
import { VEK_OID } from '../../../src/attestation/snp/vek.ts';
import { verifySnpReport } from '../../../src/attestation/snp/verify.ts';
import { clearCertificateCache, OID, parseCertificate } from '../../../src/attestation/x509.ts';
import { distinguishedName } from '../../../src/lib/certificate.ts';
import { bitString, ia5String, integer, sequence, time } from '../../../src/lib/der.ts';
import {
  certDers,
  evidenceBytes,
  NEEDS_EVIDENCE,
  reportBytes,
  SNP_SAMPLES,
  type SnpSample,
  sampleCerts,
  snpResults,
  timeInside,
} from '../evidence.ts';

const results = NEEDS_EVIDENCE === false ? snpResults() : {};
const roots = defaultRoots;
const generateKeyPairAsync = promisify(generateKeyPair);

function sample(report: string): SnpSample {
  return SNP_SAMPLES.find((s) => s.report === report)!;
}

function nowFor(s: SnpSample): Date {
  return timeInside(results[s.report]!);
}

function rejects(fn: () => unknown, code: AttestationErrorCode): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AttestationError, `expected AttestationError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

const GENOA_V3 = 'routex-client-lua/report-genoa-v3.bin';
const MILAN_V2 = 'virtee-sev/report_milan.hex';
const VLEK = 'trustee/snp__test-vlek-report.bin';

describe('verifySnpReport() accepts every real report', () => {
  for (const s of SNP_SAMPLES) {
    test(`verifySnpReport() verifies ${s.report} with its full chain`, { skip: NEEDS_EVIDENCE }, () => {
      const r = results[s.report]!;
      const v = verifySnpReport(reportBytes(s.report), sampleCerts(s), { now: nowFor(s), roots });
      assert.equal(v.product, s.product);
      assert.equal(v.simulated, false);
      assert.equal(v.rootFingerprint, r.checks.ark_sha256);
      assert.equal(v.report.version, r.report.version);
    });

    test(`verifySnpReport() verifies ${s.report} with only its VCEK/VLEK and the built-in chain`, {
      skip: NEEDS_EVIDENCE,
    }, () => {
      const { vek } = sampleCerts(s);
      const v = verifySnpReport(reportBytes(s.report), { vek }, { now: nowFor(s), roots });
      assert.equal(v.product, s.product);
      assert.equal(v.vek.kind, v.report.signingKey);
    });
  }

  test('verifySnpReport() accepts a parsed report and uses only its signed bytes', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const s = sample(GENOA_V3);
    const parsed = parseSnpReport(reportBytes(s.report));
    const original = parsed.measurement.slice();
    parsed.measurement = new Uint8Array(48).fill(0xee);
    const v = verifySnpReport(parsed, sampleCerts(s), { now: nowFor(s), roots });
    assert.deepEqual(v.report.measurement, original);
  });

  test('verifySnpReport() accepts the same chain again from its cache and after clearing it', {
    skip: NEEDS_EVIDENCE,
  }, (t) => {
    const s = sample(GENOA_V3);
    const bytes = reportBytes(s.report);
    const certs = sampleCerts(s);
    clearCertificateCache();
    const cold = performance.now();
    verifySnpReport(bytes, certs, { now: nowFor(s), roots });
    const coldMs = performance.now() - cold;
    const warm = performance.now();
    for (let i = 0; i < 20; i++) verifySnpReport(bytes, certs, { now: nowFor(s), roots });
    const warmMs = (performance.now() - warm) / 20;
    t.diagnostic(`verifySnpReport(): cold ${coldMs.toFixed(2)} ms, cached ${warmMs.toFixed(2)} ms per call`);
  });
});

describe('verifySnpReport() rejects forgeries', () => {
  test('verifySnpReport() rejects a flip of every byte of the signed part', { skip: NEEDS_EVIDENCE }, () => {
    const s = sample(GENOA_V3);
    const bytes = reportBytes(s.report);
    const certs = sampleCerts(s);
    const now = nowFor(s);
    verifySnpReport(bytes, certs, { now, roots });
    const codes = new Map<string, number>();
    for (let i = 0; i < SNP_SIGNED_SIZE; i++) {
      const forged = bytes.slice();
      forged[i] = forged[i]! ^ 0x01;
      try {
        verifySnpReport(forged, certs, { now, roots });
        assert.fail(`a flip at 0x${i.toString(16)} was accepted`);
      } catch (e) {
        assert.ok(e instanceof AttestationError, `flip at 0x${i.toString(16)}: ${String(e)}`);
        codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
      }
    }
    // Most flips reach the signature check; the rest fail earlier, on structure or TCB binding.
    assert.ok((codes.get('ERR_SIGNATURE_INVALID') ?? 0) > SNP_SIGNED_SIZE / 2, JSON.stringify([...codes]));
  });

  test('verifySnpReport() rejects a flipped signature byte', { skip: NEEDS_EVIDENCE }, () => {
    const s = sample(GENOA_V3);
    for (const at of [0x2a0, 0x2a0 + 47, 0x2e8, 0x2e8 + 47]) {
      const forged = reportBytes(s.report);
      forged[at] = forged[at]! ^ 0x80;
      rejects(
        () => verifySnpReport(forged, sampleCerts(s), { now: nowFor(s), roots }),
        'ERR_SIGNATURE_INVALID',
      );
    }
  });

  test('verifySnpReport() rejects the VCEK of another chip', { skip: NEEDS_EVIDENCE }, () => {
    // Same product and TCB (3/0/8/115), different chips: only the hwID tells them apart.
    const s = sample(MILAN_V2);
    const other = certDers('trustee/snp__test-vcek.der')[0]!;
    rejects(
      () => verifySnpReport(reportBytes(s.report), { vek: other }, { now: nowFor(s), roots }),
      'ERR_CHIP_ID_MISMATCH',
    );
  });

  test('verifySnpReport() rejects a VCEK issued for another TCB', { skip: NEEDS_EVIDENCE }, () => {
    const s = sample(GENOA_V3);
    const other = certDers('routex-client-lua/vcek-genoa-v5.pem')[0]!;
    rejects(
      () =>
        verifySnpReport(
          reportBytes(s.report),
          { vek: other },
          { now: new Date('2026-01-01T00:00:00Z'), roots },
        ),
      'ERR_TCB_MISMATCH',
    );
  });

  test('verifySnpReport() rejects a VCEK for a VLEK-signed report', { skip: NEEDS_EVIDENCE }, () => {
    const s = sample(VLEK);
    const vcek = certDers('trustee/snp__test-vcek.der')[0]!;
    rejects(
      () => verifySnpReport(reportBytes(s.report), { vek: vcek }, { now: nowFor(s), roots }),
      'ERR_CHAIN_INVALID',
    );
  });

  test('verifySnpReport() rejects a report whose signing key is none', { skip: NEEDS_EVIDENCE }, () => {
    const s = sample(GENOA_V3);
    const forged = reportBytes(s.report);
    forged[0x048] = 7 << 2;
    rejects(
      () => verifySnpReport(forged, sampleCerts(s), { now: nowFor(s), roots }),
      'ERR_EVIDENCE_UNSUPPORTED',
    );
  });

  test('verifySnpReport() rejects an ASK of another product', { skip: NEEDS_EVIDENCE }, () => {
    const s = sample(MILAN_V2);
    const { vek } = sampleCerts(s);
    const [genoaAsk, genoaArk] = certDers('roots/AMD_KDS_vcek_cert_chain_Genoa.pem');
    rejects(
      () =>
        verifySnpReport(
          reportBytes(s.report),
          { vek, ask: genoaAsk!, ark: genoaArk! },
          { now: nowFor(s), roots },
        ),
      'ERR_CHAIN_INVALID',
    );
  });

  test('verifySnpReport() rejects an ARK that is not pinned', { skip: NEEDS_EVIDENCE }, () => {
    const s = sample(MILAN_V2);
    const certs = sampleCerts(s);
    const genoaOnly: TrustRoots = {
      amdArks: [certDers('roots/AMD_ARK-Genoa.pem')[0]!],
      simulatedArkFingerprints: [],
      intelRoots: [],
    };
    rejects(
      () => verifySnpReport(reportBytes(s.report), certs, { now: nowFor(s), roots: genoaOnly }),
      'ERR_ROOT_UNTRUSTED',
    );
    // Without the ARK in hand there is nothing pinned to chain to.
    rejects(
      () => verifySnpReport(reportBytes(s.report), { vek: certs.vek }, { now: nowFor(s), roots: genoaOnly }),
      'ERR_CHAIN_INVALID',
    );
  });

  test('verifySnpReport() rejects the ASK given as the ARK', { skip: NEEDS_EVIDENCE }, () => {
    const s = sample(MILAN_V2);
    const { vek, ask } = sampleCerts(s);
    rejects(
      () => verifySnpReport(reportBytes(s.report), { vek, ask, ark: ask }, { now: nowFor(s), roots }),
      'ERR_ROOT_UNTRUSTED',
    );
  });

  test('verifySnpReport() rejects a pinned ARK whose self-signature is broken', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const s = sample(MILAN_V2);
    const { vek, ask, ark } = sampleCerts(s);
    const broken = ark.slice();
    broken[broken.byteLength - 1] = broken[broken.byteLength - 1]! ^ 0x01;
    const pinned: TrustRoots = { amdArks: [broken], simulatedArkFingerprints: [], intelRoots: [] };
    rejects(
      () =>
        verifySnpReport(reportBytes(s.report), { vek, ask, ark: broken }, { now: nowFor(s), roots: pinned }),
      'ERR_CHAIN_INVALID',
    );
  });

  test('verifySnpReport() rejects a VCEK whose signature was altered after a cached success', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const s = sample(GENOA_V3);
    const certs = sampleCerts(s);
    verifySnpReport(reportBytes(s.report), certs, { now: nowFor(s), roots });
    const vek = certs.vek.slice();
    vek[vek.byteLength - 2] = vek[vek.byteLength - 2]! ^ 0x01;
    rejects(
      () => verifySnpReport(reportBytes(s.report), { ...certs, vek }, { now: nowFor(s), roots }),
      'ERR_CHAIN_INVALID',
    );
  });

  test('verifySnpReport() rejects certificates outside their validity', { skip: NEEDS_EVIDENCE }, () => {
    const s = sample(GENOA_V3);
    const certs = sampleCerts(s);
    const vek = parseCertificate(certs.vek);
    const bytes = reportBytes(s.report);
    verifySnpReport(bytes, certs, { now: vek.notAfter, roots });
    verifySnpReport(bytes, certs, { now: vek.notBefore, roots });
    rejects(
      () => verifySnpReport(bytes, certs, { now: new Date(vek.notAfter.getTime() + 1000), roots }),
      'ERR_CERT_EXPIRED',
    );
    rejects(
      () => verifySnpReport(bytes, certs, { now: new Date(vek.notBefore.getTime() - 1000), roots }),
      'ERR_CERT_EXPIRED',
    );
  });

  test('verifySnpReport() rejects the real VLEK after it expired on 2025-12-10', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const s = sample(VLEK);
    rejects(
      () =>
        verifySnpReport(reportBytes(s.report), sampleCerts(s), {
          now: new Date('2026-01-01T00:00:00Z'),
          roots,
        }),
      'ERR_CERT_EXPIRED',
    );
  });

  test('verifySnpReport() rejects a truncated or extended report', { skip: NEEDS_EVIDENCE }, () => {
    const s = sample(GENOA_V3);
    const bytes = reportBytes(s.report);
    const longer = new Uint8Array(bytes.byteLength + 1);
    longer.set(bytes);
    for (const b of [bytes.subarray(0, bytes.byteLength - 1), longer]) {
      rejects(() => verifySnpReport(b, sampleCerts(s), { now: nowFor(s), roots }), 'ERR_EVIDENCE_MALFORMED');
    }
  });

  test('verifySnpReport() rejects a truncated certificate as malformed', { skip: NEEDS_EVIDENCE }, () => {
    const s = sample(GENOA_V3);
    const certs = sampleCerts(s);
    rejects(
      () =>
        verifySnpReport(
          reportBytes(s.report),
          { ...certs, vek: certs.vek.subarray(0, 100) },
          { now: nowFor(s), roots },
        ),
      'ERR_EVIDENCE_MALFORMED',
    );
  });

  test('verifySnpReport() throws TypeError/RangeError on argument mistakes', { skip: NEEDS_EVIDENCE }, () => {
    const s = sample(GENOA_V3);
    const bytes = reportBytes(s.report);
    assert.throws(
      () => verifySnpReport(bytes, sampleCerts(s), { now: 'today' as unknown as Date, roots }),
      TypeError,
    );
    assert.throws(
      () => verifySnpReport(bytes, sampleCerts(s), { now: new Date(Number.NaN), roots }),
      RangeError,
    );
    assert.throws(
      () => verifySnpReport(bytes, sampleCerts(s), { now: new Date(), roots: {} as TrustRoots }),
      TypeError,
    );
  });
});

describe('verifySnpReport() with AMD KDS CRLs', () => {
  const MILAN_CRL = 'enarx-steward/milan.signed.crl.crl1.der';
  const GENOA_CRL = 'enarx-steward/milan.signed.crl.crl0.der';
  const STEWARD = 'enarx-steward/milan.signed.crl.report.bin';
  // Inside the Milan CRL's window (2022-05-09 .. 2023-05-09) and the VCEK's (from 2022-09-29).
  const IN_WINDOW = new Date('2023-01-15T00:00:00Z');

  test("verifySnpReport() checks the CRL of the report's ARK and ignores other products' CRLs", {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const s = sample(STEWARD);
    const bytes = reportBytes(s.report);
    const crls = [evidenceBytes(GENOA_CRL), evidenceBytes(MILAN_CRL)];
    assert.equal(verifySnpReport(bytes, sampleCerts(s), { now: IN_WINDOW, roots, crls }).crlChecked, true);
    assert.equal(verifySnpReport(bytes, sampleCerts(s), { now: IN_WINDOW, roots }).crlChecked, false);
    const genoaOnly = verifySnpReport(bytes, sampleCerts(s), {
      now: IN_WINDOW,
      roots,
      crls: [evidenceBytes(GENOA_CRL)],
    });
    assert.equal(genoaOnly.crlChecked, false);
  });

  test('verifySnpReport() refuses a stale, early or forged CRL of its ARK', { skip: NEEDS_EVIDENCE }, () => {
    const s = sample(STEWARD);
    const bytes = reportBytes(s.report);
    const crl = evidenceBytes(MILAN_CRL);
    rejects(
      () =>
        verifySnpReport(bytes, sampleCerts(s), { now: new Date('2023-05-10T00:00:00Z'), roots, crls: [crl] }),
      'ERR_COLLATERAL_EXPIRED',
    );
    rejects(
      () =>
        verifySnpReport(bytes, sampleCerts(s), { now: new Date('2022-05-09T17:07:44Z'), roots, crls: [crl] }),
      'ERR_COLLATERAL_EXPIRED',
    );
    const forged = crl.slice();
    forged[forged.byteLength - 10] = forged[forged.byteLength - 10]! ^ 0x01;
    rejects(
      () => verifySnpReport(bytes, sampleCerts(s), { now: IN_WINDOW, roots, crls: [forged] }),
      'ERR_COLLATERAL_INVALID',
    );
    rejects(
      () => verifySnpReport(bytes, sampleCerts(s), { now: IN_WINDOW, roots, crls: [crl.subarray(0, 100)] }),
      'ERR_COLLATERAL_INVALID',
    );
    assert.throws(
      () =>
        verifySnpReport(bytes, sampleCerts(s), {
          now: IN_WINDOW,
          roots,
          crls: ['x' as unknown as Uint8Array],
        }),
      TypeError,
    );
  });

  test('verifySnpReport() refuses an ASK the Genoa ARK revoked (serial 0x20001)', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const s = sample('trustee/az-snp-vtpm__genoa_snp_report.bin');
    const certs = sampleCerts(s);
    // The current Genoa ASK has serial 0x20002; the same certificate claiming serial 0x20001 is the
    // revoked one as far as the ARK's CRL is concerned, signature or not.
    const ask = certs.ask.slice();
    const serial = Buffer.from(ask).indexOf(Buffer.from([0x02, 0x03, 0x02, 0x00, 0x02]));
    assert.ok(serial > 0 && serial < 20);
    ask[serial + 4] = 0x01;
    const crls = [evidenceBytes(GENOA_CRL)];
    assert.throws(
      () => verifySnpReport(reportBytes(s.report), { ...certs, ask }, { now: IN_WINDOW, roots, crls }),
      (e: unknown) => e instanceof AttestationError && e.code === 'ERR_REVOKED' && /20001/.test(e.message),
    );
    // The genuine ASK (0x20002) is not on the list: the chain then fails only on the dates.
    rejects(
      () => verifySnpReport(reportBytes(s.report), certs, { now: IN_WINDOW, roots, crls }),
      'ERR_CERT_EXPIRED',
    );
  });
});

describe('verifySnpReport() with CRLs of a test AMD chain', () => {
  // One RSA-4096 key serves ARK and ASK (the verifier only needs each signature to check): key
  // generation is the slow part. Unlike AMD's, this ASK may sign CRLs, so the VCEK branch runs too.
  const NOW = new Date('2026-03-01T12:00:00Z');
  let chain: { material: SimRootMaterial; caKey: KeyObject; arkName: Uint8Array; askName: Uint8Array };

  before(async () => {
    const [ca, vcek] = await Promise.all([
      generateKeyPairAsync('rsa', { modulusLength: 4096, publicExponent: 0x10001 }),
      generateKeyPairAsync('ec', { namedCurve: 'secp384r1' }),
    ]);
    const spki = (k: KeyObject) => new Uint8Array(k.export({ type: 'spki', format: 'der' }));
    const name = (cn: string) =>
      distinguishedName([
        [OID.organization, 'Donjon SIMULATED test'],
        [OID.commonName, cn],
      ]);
    const arkName = name('ARK-Test');
    const askName = name('SEV-Test');
    const from = new Date('2026-01-01T00:00:00Z');
    const to = new Date('2030-01-01T00:00:00Z');
    const arkDer = buildCertificate({
      serial: 1n,
      issuer: arkName,
      subject: arkName,
      notBefore: from,
      notAfter: to,
      spki: spki(ca.publicKey),
      extensions: [keyUsageCertSign(true), basicConstraintsCa()],
      issuerKey: ca.privateKey,
    });
    const askDer = buildCertificate({
      serial: 0x20001n,
      issuer: arkName,
      subject: askName,
      notBefore: from,
      notAfter: to,
      spki: spki(ca.publicKey),
      extensions: [basicConstraintsCa(0), keyUsageCertSign(true)],
      issuerKey: ca.privateKey,
    });
    const chipId = new Uint8Array(64).fill(0x5c);
    const tcb = snpTcb({ bootloader: 1, tee: 0, snp: 9, microcode: 100 });
    const spl = (id: string, value: number) => ({ oid: id, value: integer(value) });
    const vcekDer = buildCertificate({
      serial: 0n,
      issuer: askName,
      subject: name('SEV-VCEK'),
      notBefore: from,
      notAfter: to,
      spki: spki(vcek.publicKey),
      extensions: [
        spl(VEK_OID.structVersion, 0),
        { oid: VEK_OID.productName, value: ia5String('Simulated') },
        spl(VEK_OID.blSpl, tcb.bootloader),
        spl(VEK_OID.teeSpl, tcb.tee),
        spl(VEK_OID.snpSpl, tcb.snp),
        spl(VEK_OID.ucodeSpl, tcb.microcode),
        { oid: VEK_OID.hwId, value: chipId },
      ],
      issuerKey: ca.privateKey,
    });
    const material: SimRootMaterial = {
      arkDer,
      askDer,
      vcekDer,
      vcekPrivateKeyPkcs8: new Uint8Array(vcek.privateKey.export({ type: 'pkcs8', format: 'der' })),
      fingerprint: sha256Hex(arkDer),
      chipId,
      tcb,
    };
    chain = { material, caKey: ca.privateKey, arkName, askName };
  });

  /** An RSA-PSS (AMD profile) CRL of `issuer`, listing `revoked`. */
  function pssCrl(issuer: Uint8Array, revoked: bigint[]): Uint8Array {
    const entries = revoked.map((s) => sequence(integer(s), time(NOW)));
    const tbs = sequence(
      integer(1),
      PSS_SHA384,
      issuer,
      time(new Date('2026-02-01T00:00:00Z')),
      time(new Date('2026-04-01T00:00:00Z')),
      ...(entries.length > 0 ? [sequence(...entries)] : []),
    );
    const signature = sign('sha384', tbs, {
      key: chain.caKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 48,
    });
    return sequence(tbs, PSS_SHA384, bitString(new Uint8Array(signature)));
  }

  function run(crls: Uint8Array[]) {
    const m = chain.material;
    const report = signSimReport(m, { reportData: new Uint8Array(64), measurement: new Uint8Array(48) });
    const testRoots: TrustRoots = { amdArks: [], simulatedArkFingerprints: [m.fingerprint], intelRoots: [] };
    return verifySnpReport(
      report,
      { vek: m.vcekDer, ask: m.askDer, ark: m.arkDer },
      { now: NOW, roots: testRoots, crls },
    );
  }

  test('verifySnpReport() accepts the test chain with CRLs that revoke neither ASK nor VCEK', () => {
    const v = run([pssCrl(chain.arkName, [0x20002n]), pssCrl(chain.askName, [1n])]);
    assert.equal(v.crlChecked, true);
    assert.equal(run([]).crlChecked, false);
  });

  test('verifySnpReport() refuses an ASK its ARK revoked and a VCEK its ASK revoked', () => {
    assert.throws(
      () => run([pssCrl(chain.arkName, [0x20001n])]),
      (e: unknown) => e instanceof AttestationError && e.code === 'ERR_REVOKED' && /ASK/.test(e.message),
    );
    assert.throws(
      () => run([pssCrl(chain.arkName, []), pssCrl(chain.askName, [0n])]),
      (e: unknown) => e instanceof AttestationError && e.code === 'ERR_REVOKED' && /VCEK/.test(e.message),
    );
  });
});
