import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { concat, toHex } from '../../../src/attestation/bytes.ts';
import { clearCrlCache } from '../../../src/attestation/crl.ts';
import {
  type DcapCollateral,
  parseDcapCollateral,
  splitPcsResponse,
} from '../../../src/attestation/dcap/collateral.ts';
import { type DcapQuote, parseDcapQuote } from '../../../src/attestation/dcap/quote.ts';
import { verifyDcapQuote } from '../../../src/attestation/dcap/verify.ts';
import { AttestationError, type AttestationErrorCode } from '../../../src/attestation/errors.ts';
import { defaultRoots, intelRootCertificate } from '../../../src/attestation/roots.ts';
import { clearCertificateCache } from '../../../src/attestation/x509.ts';
import { writePem } from '../../../src/lib/pem.ts';
import {
  collateralJson,
  DCAP_SAMPLES,
  dcapResults,
  evidenceBytes,
  evidenceText,
  NEEDS_EVIDENCE,
  quoteBytes,
  quoteTime,
} from '../evidence.ts';
import {
  buildQuote,
  chainPem,
  collateral,
  ecCert,
  ecCrl,
  ecKey,
  intelName,
  makePki,
  PLATFORM,
  qeBody,
  qeIdentity,
  SCENARIO_NOW,
  scenario,
  sgxBody,
  tcbInfo,
} from './forge.ts';

const results = NEEDS_EVIDENCE === false ? dcapResults() : {};
const roots = defaultRoots;

function rejects(fn: () => unknown, code: AttestationErrorCode, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AttestationError, `expected AttestationError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  });
}

/** dcap-qvl collateral with some fields replaced (snake_case keys, as in the files). */
function qvl(path: string, replace: Record<string, string> = {}): DcapCollateral {
  return parseDcapCollateral({ ...collateralJson(path), ...replace });
}

const SGX = 'dcap-qvl/sgx_quote';
const SGX_COLLATERAL = 'dcap-qvl/sgx_quote_collateral.json';
const SGX_NOW = new Date('2025-07-01T00:00:00Z');
const TDX = 'dcap-qvl/tdx_quote';
const TDX_COLLATERAL = 'dcap-qvl/tdx_quote_collateral.json';

describe('verifyDcapQuote() without collateral on every real quote', () => {
  for (const path of DCAP_SAMPLES) {
    test(`verifyDcapQuote() verifies ${path} to the Intel SGX Root CA`, { skip: NEEDS_EVIDENCE }, () => {
      const r = results[path]!;
      const v = verifyDcapQuote(quoteBytes(path), { now: quoteTime(r), roots });
      assert.equal(v.rootFingerprint, intelRootCertificate.fingerprint);
      assert.equal(v.collateralChecked, false);
      assert.equal(v.tcb, undefined);
      assert.equal(v.pckCa, r.checks.pck_chain_subjects[1]!.includes('Platform') ? 'platform' : 'processor');
      assert.equal(toHex(v.pck.fmspc), r.checks.pck_extensions.fmspc);
    });
  }

  test('verifyDcapQuote() refuses a quote outside its PCK validity', { skip: NEEDS_EVIDENCE }, () => {
    // The SGX sample's PCK is valid 2023-09-20T21:53:43Z .. 2030-09-20T21:53:43Z.
    rejects(
      () => verifyDcapQuote(quoteBytes(SGX), { now: new Date('2023-09-20T21:53:42Z'), roots }),
      'ERR_CERT_EXPIRED',
    );
    rejects(
      () => verifyDcapQuote(quoteBytes(SGX), { now: new Date('2030-09-20T21:53:44Z'), roots }),
      'ERR_CERT_EXPIRED',
    );
    verifyDcapQuote(quoteBytes(SGX), { now: new Date('2030-09-20T21:53:43Z'), roots });
  });

  test('verifyDcapQuote() refuses a chain to a root that is not pinned', { skip: NEEDS_EVIDENCE }, () => {
    const pki = makePki();
    rejects(() => verifyDcapQuote(quoteBytes(SGX), { now: SGX_NOW, roots: pki.roots }), 'ERR_ROOT_UNTRUSTED');
    // The embedded root is compared with the pinned ones, never trusted for carrying Intel's name.
    const s = scenario('sgx');
    rejects(() => verifyDcapQuote(s.quote, { now: s.now, roots }), 'ERR_ROOT_UNTRUSTED', /not pinned/);
  });

  test('verifyDcapQuote() accepts a parsed quote and verifies the bytes it came from', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const q = parseDcapQuote(quoteBytes(SGX));
    const forged = { ...q, body: { ...q.body, reportData: new Uint8Array(64) } } as DcapQuote;
    const v = verifyDcapQuote(forged, { now: SGX_NOW, roots });
    assert.equal(toHex(v.quote.body.reportData), results[SGX]!.body.report_data);
  });

  test('verifyDcapQuote() refuses bad options with TypeError', () => {
    const s = scenario('sgx');
    assert.throws(() => verifyDcapQuote(s.quote, undefined as never), TypeError);
    assert.throws(
      () => verifyDcapQuote(s.quote, { now: new Date(Number.NaN), roots: s.pki.roots }),
      TypeError,
    );
    assert.throws(() => verifyDcapQuote(s.quote, { now: s.now, roots: {} as never }), TypeError);
    assert.throws(() => verifyDcapQuote('quote' as never, { now: s.now, roots: s.pki.roots }), TypeError);
  });
});

describe('verifyDcapQuote() refuses forged real quotes', () => {
  const flip = (bytes: Uint8Array, at: number) => {
    const copy = bytes.slice();
    copy[at] = copy[at]! ^ 0x01;
    return copy;
  };

  test('verifyDcapQuote() refuses a change anywhere in the signed header and body', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    for (const path of [SGX, TDX, 'dcap-qvl/tdx_quote_outdated']) {
      const bytes = quoteBytes(path);
      const q = parseDcapQuote(bytes);
      const now = quoteTime(results[path]!);
      const signedEnd = q.signedBytes.byteLength;
      const reserved = new Set<number>();
      if (q.version !== 3) for (let i = 8; i < 12; i++) reserved.add(i);
      if (q.kind === 'sgx')
        for (const [a, n] of [
          [20, 12],
          [96, 32],
          [160, 32],
          [262, 42],
        ])
          for (let i = 0; i < n!; i++) reserved.add(48 + a! + i);
      for (let at = 0; at < signedEnd; at += 7) {
        let code: AttestationErrorCode = 'ERR_SIGNATURE_INVALID';
        if (at < 8 || (q.version === 5 && at >= 48 && at < 54))
          code = at >= 2 && at < 4 ? 'ERR_EVIDENCE_UNSUPPORTED' : 'ERR_EVIDENCE_MALFORMED';
        // Version 3 -> 2 is unknown; 4 <-> 5 re-reads the body under the other layout, which fails to parse.
        if (at === 0) code = q.version === 3 ? 'ERR_EVIDENCE_UNSUPPORTED' : 'ERR_EVIDENCE_MALFORMED';
        if (at === 1) code = 'ERR_EVIDENCE_UNSUPPORTED';
        if (at >= 12 && at < 28) code = 'ERR_EVIDENCE_UNSUPPORTED';
        if (reserved.has(at)) code = 'ERR_EVIDENCE_MALFORMED';
        rejects(() => verifyDcapQuote(flip(bytes, at), { now, roots }), code, undefined);
      }
    }
  });

  test('verifyDcapQuote() names what a flipped byte broke', { skip: NEEDS_EVIDENCE }, () => {
    const bytes = quoteBytes(SGX);
    const now = SGX_NOW;
    const sig = 436; // v3 signature data
    const cases: [number, AttestationErrorCode, RegExp][] = [
      [48 + 64, 'ERR_SIGNATURE_INVALID', /quote signature/], // MRENCLAVE
      [48 + 320, 'ERR_SIGNATURE_INVALID', /quote signature/], // REPORTDATA
      [12, 'ERR_EVIDENCE_UNSUPPORTED', /QE vendor/],
      [sig + 10, 'ERR_SIGNATURE_INVALID', /quote signature/],
      [sig + 64 + 5, 'ERR_SIGNATURE_INVALID', /bind the attestation key/],
      [sig + 128 + 64, 'ERR_SIGNATURE_INVALID', /QE report signature/], // QE MRENCLAVE
      [sig + 128 + 384 + 3, 'ERR_SIGNATURE_INVALID', /QE report signature/],
      [sig + 578 + 3, 'ERR_SIGNATURE_INVALID', /bind the attestation key/], // QE auth data
      [sig + 128 + 20, 'ERR_EVIDENCE_MALFORMED', /QE report reserved/],
    ];
    for (const [at, code, message] of cases)
      rejects(() => verifyDcapQuote(flip(bytes, at), { now, roots }), code, message);
  });

  test('verifyDcapQuote() refuses a change in each part of the signature data of every real quote', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    for (const path of DCAP_SAMPLES) {
      const bytes = quoteBytes(path);
      const q = parseDcapQuote(bytes);
      const now = quoteTime(results[path]!);
      const sig = q.signedBytes.byteLength + 4;
      // v4/v5 nest the QE report in certification data type 6 (2 + 4 bytes of header).
      const qe = sig + (q.version === 3 ? 128 : 134);
      const auth = qe + 384 + 64 + 2;
      const pem = auth + q.qeAuthData.byteLength + 6;
      const cases: [number, AttestationErrorCode, RegExp][] = [
        [sig + 1, 'ERR_SIGNATURE_INVALID', /quote signature/],
        [sig + 63, 'ERR_SIGNATURE_INVALID', /quote signature/],
        [sig + 64, 'ERR_SIGNATURE_INVALID', /bind the attestation key/],
        [sig + 127, 'ERR_SIGNATURE_INVALID', /bind the attestation key/],
        [qe + 64, 'ERR_SIGNATURE_INVALID', /QE report signature/],
        [qe + 256, 'ERR_SIGNATURE_INVALID', /QE report signature/],
        [qe + 340, 'ERR_SIGNATURE_INVALID', /QE report signature/],
        [qe + 384, 'ERR_SIGNATURE_INVALID', /QE report signature/],
        // A QE auth data one byte longer shifts everything after it: the type read next is no type at all.
        [auth - 2, 'ERR_EVIDENCE_MALFORMED', /not a defined type/],
        [auth, 'ERR_SIGNATURE_INVALID', /bind the attestation key/],
        [pem - 6, 'ERR_EVIDENCE_UNSUPPORTED', /certification data type/],
        [pem + 3, 'ERR_EVIDENCE_MALFORMED', /PCK certificate chain/],
      ];
      if (q.version !== 3) cases.push([sig + 128, 'ERR_EVIDENCE_UNSUPPORTED', /type 7 is not 6/]);
      for (const [at, code, message] of cases) {
        rejects(() => verifyDcapQuote(flip(bytes, at), { now, roots }), code, message);
      }
    }
  });

  test('verifyDcapQuote() refuses a PCK certificate whose signature was changed', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const bytes = quoteBytes(SGX);
    const text = Buffer.from(bytes).toString('latin1');
    const begin = text.indexOf('-----BEGIN CERTIFICATE-----');
    const end = text.indexOf('-----END CERTIFICATE-----', begin);
    // Near the end of the first block: the signature's bytes, not the parsed fields.
    const at = end - 20;
    const copy = bytes.slice();
    copy[at] = copy[at] === 0x41 ? 0x42 : 0x41;
    rejects(() => verifyDcapQuote(copy, { now: SGX_NOW, roots }), 'ERR_CHAIN_INVALID', /PCK certificate/);
  });

  test('verifyDcapQuote() refuses truncated quotes and accepts trailing bytes', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const bytes = quoteBytes(SGX);
    for (const n of [0, 47, 432, 1000, bytes.byteLength - 1]) {
      rejects(() => verifyDcapQuote(bytes.subarray(0, n), { now: SGX_NOW, roots }), 'ERR_EVIDENCE_MALFORMED');
    }
    verifyDcapQuote(concat(bytes, new Uint8Array(64).fill(0xee)), { now: SGX_NOW, roots });
  });
});

describe('verifyDcapQuote() with real collateral', () => {
  test('verifyDcapQuote() gives the dcap-qvl SGX quote ConfigurationAndSWHardeningNeeded [INTEL-SA-00289, INTEL-SA-00615]', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const v = verifyDcapQuote(quoteBytes(SGX), { now: SGX_NOW, roots, collateral: qvl(SGX_COLLATERAL) });
    assert.equal(v.collateralChecked, true);
    assert.equal(v.tcb?.status, 'ConfigurationAndSWHardeningNeeded');
    assert.deepEqual(v.tcb?.advisoryIds, ['INTEL-SA-00289', 'INTEL-SA-00615']);
    assert.equal(v.tcb?.qe.status, results[SGX]!.checks.qe_tcb_status);
  });

  test('verifyDcapQuote() gives the dcap-qvl TDX quote UpToDate with no advisories', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const v = verifyDcapQuote(quoteBytes(TDX), { now: SGX_NOW, roots, collateral: qvl(TDX_COLLATERAL) });
    assert.equal(v.tcb?.status, 'UpToDate');
    assert.deepEqual(v.tcb?.advisoryIds, []);
    assert.deepEqual(
      { id: v.tcb?.module?.id, isvsvn: v.tcb?.module?.isvSvn, status: v.tcb?.module?.status },
      results[TDX]!.checks.tdx_module_identity,
    );
  });

  test('verifyDcapQuote() gives the NEAR TDX quote UpToDate', { skip: NEEDS_EVIDENCE }, () => {
    const v = verifyDcapQuote(quoteBytes('dcap-qvl/near_quote_hex.txt'), {
      now: new Date('2025-09-15T00:00:00Z'),
      roots,
      collateral: qvl('dcap-qvl/near_quote_collateral.json'),
    });
    assert.equal(v.tcb?.status, 'UpToDate');
  });

  test('verifyDcapQuote() finds no TCB level for tdx_quote_outdated (as RESULTS.json and dcap-qvl)', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    rejects(
      () =>
        verifyDcapQuote(quoteBytes('dcap-qvl/tdx_quote_outdated'), {
          now: new Date('2026-03-01T00:00:00Z'),
          roots,
          collateral: qvl('dcap-qvl/tdx_quote_outdated_collateral.json'),
        }),
      'ERR_TCB_NOT_SUPPORTED',
    );
  });

  const goCollateral = (): DcapCollateral => {
    const tcb = splitPcsResponse(evidenceText('go-tdx-guest/sample_tcbInfo_response'), 'tcbInfo');
    const qe = splitPcsResponse(evidenceText('go-tdx-guest/sample_qeIdentity_response'), 'enclaveIdentity');
    return {
      pckCrlIssuerChain: evidenceText('go-tdx-guest/pckCrlIssuerChain.pem'),
      rootCaCrl: evidenceBytes('go-tdx-guest/rootcrl.der'),
      pckCrl: evidenceBytes('go-tdx-guest/pckcrl'),
      tcbInfoIssuerChain: evidenceText('go-tdx-guest/tcbInfoIssuerChain.pem'),
      tcbInfo: tcb.body,
      tcbInfoSignature: tcb.signature,
      qeIdentityIssuerChain: evidenceText('go-tdx-guest/qeIdentityIssuerChain.pem'),
      qeIdentity: qe.body,
      qeIdentitySignature: qe.signature,
    };
  };

  test('verifyDcapQuote() checks go-tdx-guest collateral and finds no level for its 2023 TCB info', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const now = new Date('2023-07-01T01:00:00Z');
    // The collateral itself verifies: TCB info, QE identity, both CRLs, at go-tdx-guest's test time.
    rejects(
      () =>
        verifyDcapQuote(quoteBytes('go-tdx-guest/tdx_prod_quote_SPR_E4.dat'), {
          now,
          roots,
          collateral: goCollateral(),
        }),
      'ERR_TCB_NOT_SUPPORTED',
    );
    // After the QE identity's nextUpdate (2023-07-08T07:24:59Z) it is stale.
    rejects(
      () =>
        verifyDcapQuote(quoteBytes('go-tdx-guest/tdx_prod_quote_SPR_E4.dat'), {
          now: new Date('2023-07-08T07:25:00Z'),
          roots,
          collateral: goCollateral(),
        }),
      'ERR_COLLATERAL_EXPIRED',
    );
  });

  test('verifyDcapQuote() gives the go-tdx-guest v5 (TDX 1.5) quote UpToDate with its v5 TCB info', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const tcb = splitPcsResponse(evidenceText('go-tdx-guest/sample_tcbinfo_response_v5'), 'tcbInfo');
    const rest = collateralJson('dcap-qvl/tdx_quote_outdated_collateral.json');
    const c = parseDcapCollateral({ ...rest, tcb_info: tcb.body, tcb_info_signature: toHex(tcb.signature) });
    const v = verifyDcapQuote(quoteBytes('go-tdx-guest/quote_v5_sample.dat'), {
      now: new Date('2026-02-25T00:00:00Z'),
      roots,
      collateral: c,
    });
    assert.equal(v.tcb?.status, 'UpToDate');
    assert.equal(v.tcb?.module?.id, 'TDX_01');
  });

  test('verifyDcapQuote() refuses collateral outside its validity window', { skip: NEEDS_EVIDENCE }, () => {
    const c = qvl(SGX_COLLATERAL);
    const at = (iso: string) => () =>
      verifyDcapQuote(quoteBytes(SGX), { now: new Date(iso), roots, collateral: c });
    // Simultaneously valid 2025-06-19T10:56:11Z (TCB info issued) .. 2025-07-19T10:01:18Z (QE identity due).
    verifyDcapQuote(quoteBytes(SGX), { now: new Date('2025-06-19T10:56:11Z'), roots, collateral: c });
    verifyDcapQuote(quoteBytes(SGX), { now: new Date('2025-07-19T10:01:18Z'), roots, collateral: c });
    rejects(at('2025-06-19T10:56:10Z'), 'ERR_COLLATERAL_EXPIRED', /TCB info: it is issued/);
    rejects(at('2025-07-19T10:01:19Z'), 'ERR_COLLATERAL_EXPIRED', /QE identity/);
    // dcap-qvl's own test time (1750320802) is before the TCB info was issued; dcap-qvl did not check that then.
    rejects(at(new Date(1750320802 * 1000).toISOString()), 'ERR_COLLATERAL_EXPIRED');
    rejects(at('2025-07-19T10:23:19Z'), 'ERR_COLLATERAL_EXPIRED');
  });

  test('verifyDcapQuote() refuses a re-serialised TCB info or QE identity', { skip: NEEDS_EVIDENCE }, () => {
    const json = collateralJson(SGX_COLLATERAL);
    const pretty = JSON.stringify(JSON.parse(json.tcb_info!), null, 2);
    rejects(
      () =>
        verifyDcapQuote(quoteBytes(SGX), {
          now: SGX_NOW,
          roots,
          collateral: qvl(SGX_COLLATERAL, { tcb_info: pretty }),
        }),
      'ERR_COLLATERAL_INVALID',
      /re-serialised/,
    );
    const { id, ...rest } = JSON.parse(json.qe_identity!);
    const reordered = JSON.stringify({ ...rest, id });
    rejects(
      () =>
        verifyDcapQuote(quoteBytes(SGX), {
          now: SGX_NOW,
          roots,
          collateral: qvl(SGX_COLLATERAL, { qe_identity: reordered }),
        }),
      'ERR_COLLATERAL_INVALID',
      /QE identity/,
    );
  });

  test('verifyDcapQuote() refuses collateral signatures and CRLs that do not verify', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const json = collateralJson(SGX_COLLATERAL);
    const flipHex = (hex: string, at: number) =>
      hex.slice(0, at) + (hex[at] === '0' ? '1' : '0') + hex.slice(at + 1);
    const run = (replace: Record<string, string>) => () =>
      verifyDcapQuote(quoteBytes(SGX), { now: SGX_NOW, roots, collateral: qvl(SGX_COLLATERAL, replace) });
    rejects(
      run({ tcb_info_signature: flipHex(json.tcb_info_signature!, 10) }),
      'ERR_COLLATERAL_INVALID',
      /TCB info/,
    );
    rejects(
      run({ qe_identity_signature: flipHex(json.qe_identity_signature!, 100) }),
      'ERR_COLLATERAL_INVALID',
      /QE identity/,
    );
    // The last bytes of a CRL are its signature.
    rejects(
      run({ root_ca_crl: flipHex(json.root_ca_crl!, json.root_ca_crl!.length - 4) }),
      'ERR_COLLATERAL_INVALID',
      /Root CA CRL/,
    );
    rejects(
      run({ pck_crl: flipHex(json.pck_crl!, json.pck_crl!.length - 4) }),
      'ERR_COLLATERAL_INVALID',
      /PCK CRL/,
    );
    // CRLs swapped: the PCK CA's CRL is not the root's.
    rejects(run({ root_ca_crl: json.pck_crl! }), 'ERR_COLLATERAL_INVALID', /issued by/);
    // A TCB info "signed" by the chain of the PCK CRL's issuer: not the TCB signing key.
    rejects(
      run({ tcb_info_issuer_chain: json.pck_crl_issuer_chain! }),
      'ERR_COLLATERAL_INVALID',
      /TCB Signing/,
    );
  });

  test('verifyDcapQuote() refuses collateral for another CA, platform or TEE', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    // The SGX PCK is issued by the Processor CA; the TDX collateral is for the Platform CA.
    rejects(
      () => verifyDcapQuote(quoteBytes(SGX), { now: SGX_NOW, roots, collateral: qvl(TDX_COLLATERAL) }),
      'ERR_COLLATERAL_INVALID',
      /PCK CRL/,
    );
    rejects(
      () =>
        verifyDcapQuote(quoteBytes(TDX), {
          now: new Date('2025-09-15T00:00:00Z'),
          roots,
          collateral: qvl('dcap-qvl/near_quote_collateral.json'),
        }),
      'ERR_FMSPC_MISMATCH',
    );
    const tdx = collateralJson(TDX_COLLATERAL);
    rejects(
      () =>
        verifyDcapQuote(quoteBytes(TDX), {
          now: SGX_NOW,
          roots,
          collateral: qvl(TDX_COLLATERAL, {
            tcb_info: collateralJson(SGX_COLLATERAL).tcb_info!,
            tcb_info_signature: collateralJson(SGX_COLLATERAL).tcb_info_signature!,
          }),
        }),
      'ERR_COLLATERAL_INVALID',
      /for SGX/,
    );
    assert.ok(tdx.qe_identity);
  });
});

describe('verifyDcapQuote() on factory quotes with collateral', () => {
  test('verifyDcapQuote() verifies factory SGX v3 and TDX v4/v5 quotes end to end', () => {
    for (const [kind, version, size] of [
      ['sgx', 3, 584],
      ['tdx', 4, 584],
      ['tdx', 5, 584],
      ['tdx', 5, 648],
    ] as const) {
      const s = scenario(kind, { version, tdBodySize: size });
      const v = verifyDcapQuote(s.quote, { now: s.now, roots: s.pki.roots, collateral: s.collateral });
      assert.equal(v.tcb?.status, 'UpToDate', `${kind} v${version}`);
      assert.equal(v.quote.kind, kind);
      assert.equal(verifyDcapQuote(s.quote, { now: s.now, roots: s.pki.roots }).collateralChecked, false);
    }
  });

  test('verifyDcapQuote() refuses a PCK its CA revoked', () => {
    const s = scenario('sgx');
    const pckCrl = ecCrl({
      issuer: s.pki.caName,
      issuerKey: s.pki.pckCa.key.privateKey,
      thisUpdate: new Date('2025-06-01T00:00:00Z'),
      nextUpdate: new Date('2025-07-01T00:00:00Z'),
      revoked: [0x10n, s.pki.pck.serial, 0x99n],
    });
    const c = { ...s.collateral, pckCrl };
    rejects(
      () => verifyDcapQuote(s.quote, { now: s.now, roots: s.pki.roots, collateral: c }),
      'ERR_REVOKED',
      /PCK certificate/,
    );
    // Without collateral nothing checks revocation: that is what collateralChecked false says.
    assert.equal(verifyDcapQuote(s.quote, { now: s.now, roots: s.pki.roots }).collateralChecked, false);
  });

  test('verifyDcapQuote() refuses a PCK CA or TCB signing key the root revoked', () => {
    const s = scenario('tdx');
    const rootCrl = (revoked: bigint[]) =>
      ecCrl({
        issuer: s.pki.rootName,
        issuerKey: s.pki.root.key.privateKey,
        thisUpdate: new Date('2025-03-01T00:00:00Z'),
        nextUpdate: new Date('2026-03-01T00:00:00Z'),
        revoked,
      });
    const run = (crl: Uint8Array) => () =>
      verifyDcapQuote(s.quote, {
        now: s.now,
        roots: s.pki.roots,
        collateral: { ...s.collateral, rootCaCrl: crl },
      });
    rejects(run(rootCrl([s.pki.pckCa.serial])), 'ERR_REVOKED', /PCK CA/);
    rejects(run(rootCrl([s.pki.tcbSigner.serial])), 'ERR_REVOKED', /TCB signing/);
    verifyDcapQuote(s.quote, {
      now: s.now,
      roots: s.pki.roots,
      collateral: { ...s.collateral, rootCaCrl: rootCrl([0x5n]) },
    });
  });

  test('verifyDcapQuote() refuses CRLs that are stale, early or signed by another key', () => {
    const s = scenario('sgx');
    const crl = (o: Partial<Parameters<typeof ecCrl>[0]>) =>
      ecCrl({
        issuer: s.pki.caName,
        issuerKey: s.pki.pckCa.key.privateKey,
        thisUpdate: new Date('2025-06-01T00:00:00Z'),
        nextUpdate: new Date('2025-07-01T00:00:00Z'),
        ...o,
      });
    const run = (pckCrl: Uint8Array) => () =>
      verifyDcapQuote(s.quote, { now: s.now, roots: s.pki.roots, collateral: { ...s.collateral, pckCrl } });
    rejects(run(crl({ nextUpdate: new Date('2025-06-14T00:00:00Z') })), 'ERR_COLLATERAL_EXPIRED', /PCK CRL/);
    rejects(run(crl({ thisUpdate: new Date('2025-06-16T00:00:00Z') })), 'ERR_COLLATERAL_EXPIRED', /PCK CRL/);
    rejects(run(crl({ issuerKey: ecKey().privateKey })), 'ERR_COLLATERAL_INVALID', /PCK CRL/);
    rejects(
      run(crl({ issuer: intelName('Intel SGX PCK Processor CA') })),
      'ERR_COLLATERAL_INVALID',
      /issued by/,
    );
  });

  test('verifyDcapQuote() refuses TCB info and QE identity that are expired or not yet issued', () => {
    const s = scenario('sgx');
    const levels = [{ sgx: PLATFORM.components, pcesvn: 13, status: 'UpToDate' }];
    const run = (tcb: object, qe: object) => () =>
      verifyDcapQuote(s.quote, {
        now: SCENARIO_NOW,
        roots: s.pki.roots,
        collateral: collateral(s.pki, tcb as never, qe as never),
      });
    const qe = qeIdentity({ id: 'QE' });
    rejects(
      run(tcbInfo({ id: 'SGX', levels, nextUpdate: '2025-06-14T23:59:59Z' }), qe),
      'ERR_COLLATERAL_EXPIRED',
      /TCB info/,
    );
    rejects(
      run(tcbInfo({ id: 'SGX', levels, issueDate: '2025-06-15T00:00:01Z' }), qe),
      'ERR_COLLATERAL_EXPIRED',
      /TCB info/,
    );
    rejects(
      run(tcbInfo({ id: 'SGX', levels }), qeIdentity({ id: 'QE', nextUpdate: '2025-06-10T00:00:00Z' })),
      'ERR_COLLATERAL_EXPIRED',
      /QE identity/,
    );
    run(tcbInfo({ id: 'SGX', levels, nextUpdate: '2025-06-15T00:00:00Z' }), qe)();
  });

  test('verifyDcapQuote() refuses a TCB info signed outside the pinned PKI', () => {
    const s = scenario('sgx');
    const other = makePki();
    const c = {
      ...s.collateral,
      tcbInfoIssuerChain: writePem(other.tcbSigner.der) + writePem(other.root.der),
    };
    rejects(
      () => verifyDcapQuote(s.quote, { now: s.now, roots: s.pki.roots, collateral: c }),
      'ERR_ROOT_UNTRUSTED',
    );
    // Without its root, the other signer names the pinned root as issuer, and its signature gives it away.
    const leafOnly = { ...s.collateral, tcbInfoIssuerChain: writePem(other.tcbSigner.der) };
    rejects(
      () => verifyDcapQuote(s.quote, { now: s.now, roots: s.pki.roots, collateral: leafOnly }),
      'ERR_CHAIN_INVALID',
    );
  });

  test('verifyDcapQuote() reports the TCB status of the level the platform meets', () => {
    const s = scenario('sgx');
    const run = (status: string) =>
      verifyDcapQuote(s.quote, {
        now: s.now,
        roots: s.pki.roots,
        collateral: collateral(
          s.pki,
          tcbInfo({
            id: 'SGX',
            levels: [{ sgx: PLATFORM.components, pcesvn: 13, status, advisoryIDs: ['INTEL-SA-00999'] }],
          }),
          qeIdentity({ id: 'QE' }),
        ),
      }).tcb!;
    for (const status of ['SWHardeningNeeded', 'ConfigurationNeeded', 'OutOfDate', 'Revoked'] as const) {
      const t = run(status);
      assert.equal(t.status, status);
      assert.deepEqual(t.advisoryIds, ['INTEL-SA-00999']);
    }
  });
});

describe('verifyDcapQuote() checks the chain and QE of factory quotes', () => {
  const pki = makePki();
  const sgx = (pem: string, qe = qeBody('sgx')) =>
    buildQuote({ version: 3, body: sgxBody({}), qeReport: qe, pck: pki.pck, chainPem: pem });
  const run = (quote: Uint8Array) => () => verifyDcapQuote(quote, { now: SCENARIO_NOW, roots: pki.roots });

  test('verifyDcapQuote() accepts the chain with or without its root', () => {
    run(sgx(chainPem(pki.pck.der, pki.pckCa.der, pki.root.der)))();
    run(sgx(chainPem(pki.pck.der, pki.pckCa.der)))();
  });

  test('verifyDcapQuote() refuses chains of the wrong shape', () => {
    rejects(run(sgx(chainPem(pki.pck.der))), 'ERR_ROOT_UNTRUSTED');
    rejects(run(sgx(chainPem(pki.pckCa.der, pki.pck.der, pki.root.der))), 'ERR_CHAIN_INVALID', /issuer is/);
    rejects(
      run(sgx(chainPem(pki.pck.der, pki.pckCa.der, pki.pckCa.der, pki.root.der))),
      'ERR_CHAIN_INVALID',
      /4 certificates/,
    );
    rejects(run(sgx(chainPem(pki.pck.der, pki.tcbSigner.der, pki.root.der))), 'ERR_CHAIN_INVALID');
  });

  test('verifyDcapQuote() refuses PCK and CA certificates that are not what their names and shapes say', () => {
    const wrongCn = makePki({ pckCn: 'Intel SGX TCB Signing' });
    rejects(
      () =>
        verifyDcapQuote(
          buildQuote({
            version: 3,
            body: sgxBody({}),
            qeReport: qeBody('sgx'),
            pck: wrongCn.pck,
            chainPem: chainPem(wrongCn.pck.der, wrongCn.pckCa.der),
          }),
          { now: SCENARIO_NOW, roots: wrongCn.roots },
        ),
      'ERR_CHAIN_INVALID',
      /not a PCK certificate/,
    );
    const wrongCa = makePki({ caCn: 'Intel SGX Something CA' });
    rejects(
      () =>
        verifyDcapQuote(
          buildQuote({
            version: 3,
            body: sgxBody({}),
            qeReport: qeBody('sgx'),
            pck: wrongCa.pck,
            chainPem: chainPem(wrongCa.pck.der, wrongCa.pckCa.der),
          }),
          { now: SCENARIO_NOW, roots: wrongCa.roots },
        ),
      'ERR_CHAIN_INVALID',
      /Platform or Processor CA/,
    );
    // A PCK issued by the right CA but carrying CA powers.
    const caPck = ecCert({
      serial: 9n,
      issuer: pki.caName,
      subject: intelName('Intel SGX PCK Certificate'),
      notBefore: new Date('2025-01-01T00:00:00Z'),
      notAfter: new Date('2026-01-01T00:00:00Z'),
      spki: pki.pck.key.spki,
      extensions: [{ oid: '2.5.29.19', critical: true, value: Uint8Array.of(0x30, 0x03, 0x01, 0x01, 0xff) }],
      issuerKey: pki.pckCa.key.privateKey,
    });
    rejects(run(sgx(chainPem(caPck, pki.pckCa.der))), 'ERR_CHAIN_INVALID', /CA certificate/);
  });

  test("verifyDcapQuote() without collateral still refuses a QE that is not Intel's", () => {
    const pem = chainPem(pki.pck.der, pki.pckCa.der);
    const otherSigner = qeBody('sgx');
    otherSigner.fill(0x01, 128, 160);
    rejects(run(sgx(pem, otherSigner)), 'ERR_QE_IDENTITY_MISMATCH', /MRSIGNER/);
    const debugQe = qeBody('sgx');
    debugQe[48] = debugQe[48]! | 0x02;
    rejects(run(sgx(pem, debugQe)), 'ERR_QE_IDENTITY_MISMATCH', /ATTRIBUTES/);
    // A TD QE signing an SGX quote: the ISVPRODID and signer are the TD QE's.
    rejects(run(sgx(pem, qeBody('tdx'))), 'ERR_QE_IDENTITY_MISMATCH');
  });
});

describe('verifyDcapQuote() speed', () => {
  test('verifyDcapQuote() timing: cold and cached, with and without collateral', {
    skip: NEEDS_EVIDENCE,
  }, (t) => {
    const cases = [
      { path: SGX, collateral: qvl(SGX_COLLATERAL) },
      { path: TDX, collateral: qvl(TDX_COLLATERAL) },
    ];
    for (const { path, collateral: c } of cases) {
      const bytes = quoteBytes(path);
      const clear = () => {
        clearCertificateCache();
        clearCrlCache();
      };
      const rate = (withCollateral: boolean, cold: boolean) => {
        const n = cold ? 20 : 100;
        const options = withCollateral ? { now: SGX_NOW, roots, collateral: c } : { now: SGX_NOW, roots };
        verifyDcapQuote(bytes, options);
        const at = performance.now();
        for (let i = 0; i < n; i++) {
          if (cold) clear();
          verifyDcapQuote(bytes, options);
        }
        return (n * 1000) / (performance.now() - at);
      };
      const line = `${path}: collateral cold ${rate(true, true).toFixed(0)}/s, cached ${rate(true, false).toFixed(0)}/s; quote only cold ${rate(false, true).toFixed(0)}/s, cached ${rate(false, false).toFixed(0)}/s`;
      t.diagnostic(line);
    }
  });
});
