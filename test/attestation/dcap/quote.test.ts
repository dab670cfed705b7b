import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { concat, toHex } from '../../../src/attestation/bytes.ts';
import {
  type DcapQuote,
  detectEvidenceKind,
  parseDcapQuote,
  readPemChain,
  type SgxReportBody,
} from '../../../src/attestation/dcap/quote.ts';
import { AttestationError, type AttestationErrorCode } from '../../../src/attestation/errors.ts';
import {
  DCAP_SAMPLES,
  dcapResults,
  NEEDS_EVIDENCE,
  quoteBytes,
  reportBytes,
  SNP_SAMPLES,
} from '../evidence.ts';
import { buildQuote, chainPem, makePki, qeBody, sgxBody, tdBody } from './forge.ts';

const results = NEEDS_EVIDENCE === false ? dcapResults() : {};

function rejects(fn: () => unknown, code: AttestationErrorCode, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AttestationError, `expected AttestationError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  });
}

function sgxReportFields(r: SgxReportBody) {
  return {
    cpusvn: toHex(r.cpuSvn),
    miscselect: `0x${r.miscSelect.toString(16)}`,
    attributes: toHex(r.attributes),
    mrenclave: toHex(r.mrEnclave),
    mrsigner: toHex(r.mrSigner),
    isvprodid: r.isvProdId,
    isvsvn: r.isvSvn,
    report_data: toHex(r.reportData),
  };
}

function bodyFields(q: DcapQuote): Record<string, string | number> {
  if (q.kind === 'sgx') return sgxReportFields(q.body);
  const b = q.body;
  const out: Record<string, string | number> = {
    tee_tcb_svn: toHex(b.teeTcbSvn),
    mrseam: toHex(b.mrSeam),
    mrsignerseam: toHex(b.mrSignerSeam),
    seam_attributes: toHex(b.seamAttributes),
    td_attributes: toHex(b.tdAttributes),
    xfam: toHex(b.xfam),
    mrtd: toHex(b.mrTd),
    mrconfigid: toHex(b.mrConfigId),
    mrowner: toHex(b.mrOwner),
    mrownerconfig: toHex(b.mrOwnerConfig),
    rtmr0: toHex(b.rtmrs[0]),
    rtmr1: toHex(b.rtmrs[1]),
    rtmr2: toHex(b.rtmrs[2]),
    rtmr3: toHex(b.rtmrs[3]),
    report_data: toHex(b.reportData),
  };
  if (b.teeTcbSvn2 !== undefined) out.tee_tcb_svn2 = toHex(b.teeTcbSvn2);
  if (b.mrServiceTd !== undefined) out.mrservicetd = toHex(b.mrServiceTd);
  return out;
}

describe('parseDcapQuote() on every real quote', () => {
  for (const path of DCAP_SAMPLES) {
    test(`parseDcapQuote() reads ${path} as RESULTS.json decodes it`, { skip: NEEDS_EVIDENCE }, () => {
      const r = results[path]!;
      const bytes = quoteBytes(path);
      const q = parseDcapQuote(bytes);
      assert.equal(q.kind, r.kind === 'SGX' ? 'sgx' : 'tdx');
      if (q.kind === 'tdx') assert.equal(`TDX${q.tdxVersion}`, r.kind);
      const h = q.header;
      const header: Record<string, string | number> = {
        version: h.version,
        att_key_type: h.attestationKeyType,
        tee_type: `0x${h.teeType.toString(16)}`,
        bytes8_9: h.qeSvn,
        bytes10_11: h.pceSvn,
        qe_vendor_id: toHex(h.qeVendorId),
        user_data: toHex(h.userData),
      };
      if (q.version === 5) {
        header.body_type = q.kind === 'tdx' && q.tdxVersion === '1.5' ? 3 : 2;
        header.body_size = q.kind === 'tdx' && q.tdxVersion === '1.5' ? 648 : 584;
      }
      assert.deepEqual(header, r.header);
      assert.deepEqual(bodyFields(q), r.body);
      assert.deepEqual(sgxReportFields(q.qeReport), r.qe_report);
      assert.equal(bytes.byteLength, r.quote_len);
      assert.equal(q.trailingBytes, r.trailing_bytes);
      assert.equal(q.bytes.byteLength + q.trailingBytes, r.quote_len);
      assert.equal(q.qeAuthData.byteLength, r.qe_auth_len);
      assert.equal(q.pckChain.length, r.checks.pck_chain_subjects.length);
      const sigStart = q.signedBytes.byteLength + 4;
      assert.equal(q.bytes.byteLength - sigStart, r.sig_data_len);
      assert.equal(q.signature.byteLength, 64);
      assert.equal(q.attestationKey.byteLength, 64);
      assert.equal(detectEvidenceKind(bytes), q.kind);
    });
  }

  test('parseDcapQuote() reports the signed bytes of each layout', { skip: NEEDS_EVIDENCE }, () => {
    assert.equal(parseDcapQuote(quoteBytes('dcap-qvl/sgx_quote')).signedBytes.byteLength, 432);
    assert.equal(parseDcapQuote(quoteBytes('dcap-qvl/tdx_quote')).signedBytes.byteLength, 632);
    // v5: header, body type and size, then the 648-byte TDX 1.5 body.
    assert.equal(
      parseDcapQuote(quoteBytes('dcap-qvl/tdx_quote_outdated')).signedBytes.byteLength,
      48 + 6 + 648,
    );
  });

  test('parseDcapQuote() ignores the trailer whatever its bytes', { skip: NEEDS_EVIDENCE }, () => {
    const bytes = quoteBytes('dcap-qvl/sgx_quote');
    const base = parseDcapQuote(bytes);
    for (const trailer of [Uint8Array.of(0), new Uint8Array(100).fill(0xff)]) {
      const q = parseDcapQuote(concat(bytes, trailer));
      assert.equal(q.trailingBytes, trailer.byteLength);
      assert.deepEqual(q.bytes, base.bytes);
    }
  });

  test('parseDcapQuote() copies its input', { skip: NEEDS_EVIDENCE }, () => {
    const bytes = quoteBytes('dcap-qvl/sgx_quote');
    const q = parseDcapQuote(bytes);
    const before = toHex(q.body.reportData);
    bytes.fill(0);
    assert.equal(toHex(q.body.reportData), before);
  });
});

describe('parseDcapQuote() rejects malformed quotes', () => {
  const pki = makePki();
  const pem = chainPem(pki.pck.der, pki.pckCa.der, pki.root.der);
  const sgx = buildQuote({
    version: 3,
    body: sgxBody({}),
    qeReport: qeBody('sgx'),
    pck: pki.pck,
    chainPem: pem,
  });
  const tdx5 = buildQuote({
    version: 5,
    body: tdBody({}, 648),
    qeReport: qeBody('tdx'),
    pck: pki.pck,
    chainPem: pem,
  });

  const set = (bytes: Uint8Array, at: number, values: number[]) => {
    const copy = bytes.slice();
    copy.set(values, at);
    return copy;
  };

  test('parseDcapQuote() reads the quotes the test factory makes', () => {
    assert.equal(parseDcapQuote(sgx).kind, 'sgx');
    const t = parseDcapQuote(tdx5);
    assert.ok(t.kind === 'tdx' && t.tdxVersion === '1.5');
  });

  test('parseDcapQuote() rejects every truncation of a quote', () => {
    for (const quote of [sgx, tdx5]) {
      for (let n = 0; n < quote.byteLength; n += n < 700 ? 1 : 97) {
        rejects(() => parseDcapQuote(quote.subarray(0, n)), 'ERR_EVIDENCE_MALFORMED');
      }
    }
  });

  test('parseDcapQuote() rejects versions, key types and TEE types it does not read', () => {
    rejects(() => parseDcapQuote(set(sgx, 0, [2, 0])), 'ERR_EVIDENCE_UNSUPPORTED', /version 2/);
    rejects(() => parseDcapQuote(set(sgx, 0, [6, 0])), 'ERR_EVIDENCE_UNSUPPORTED', /version 6/);
    rejects(() => parseDcapQuote(set(sgx, 2, [3, 0])), 'ERR_EVIDENCE_UNSUPPORTED', /key type 3/);
    rejects(() => parseDcapQuote(set(sgx, 4, [0x81])), 'ERR_EVIDENCE_MALFORMED', /TEE type/);
    rejects(() => parseDcapQuote(set(tdx5, 4, [0])), 'ERR_EVIDENCE_UNSUPPORTED', /SGX/);
    rejects(() => parseDcapQuote(set(tdx5, 4, [0x80])), 'ERR_EVIDENCE_MALFORMED', /TEE type/);
    rejects(() => parseDcapQuote(set(tdx5, 48, [1])), 'ERR_EVIDENCE_UNSUPPORTED', /SGX body/);
    rejects(() => parseDcapQuote(set(tdx5, 48, [4])), 'ERR_EVIDENCE_MALFORMED', /body type 4/);
    rejects(() => parseDcapQuote(set(tdx5, 48, [2])), 'ERR_EVIDENCE_MALFORMED', /size 648, expected 584/);
  });

  test('parseDcapQuote() rejects non-zero reserved bytes', () => {
    rejects(() => parseDcapQuote(set(tdx5, 9, [1])), 'ERR_EVIDENCE_MALFORMED', /reserved header/);
    rejects(() => parseDcapQuote(set(sgx, 48 + 20, [1])), 'ERR_EVIDENCE_MALFORMED', /report body reserved/);
    rejects(() => parseDcapQuote(set(sgx, 48 + 300, [1])), 'ERR_EVIDENCE_MALFORMED', /report body reserved/);
    // The QE report starts 128 bytes into the v3 signature data.
    rejects(
      () => parseDcapQuote(set(sgx, 436 + 128 + 100, [1])),
      'ERR_EVIDENCE_MALFORMED',
      /QE report reserved/,
    );
  });

  test('parseDcapQuote() rejects lengths that do not account for their bytes', () => {
    const sigLen = new DataView(sgx.buffer, sgx.byteOffset).getUint32(432, true);
    const bumped = (delta: number) => {
      const copy = concat(sgx, new Uint8Array(8));
      new DataView(copy.buffer).setUint32(432, sigLen + delta, true);
      return copy;
    };
    rejects(() => parseDcapQuote(bumped(1)), 'ERR_EVIDENCE_MALFORMED', /after its certification data/);
    rejects(() => parseDcapQuote(bumped(-1)), 'ERR_EVIDENCE_MALFORMED');
    rejects(() => parseDcapQuote(bumped(0x7fffffff)), 'ERR_EVIDENCE_MALFORMED', /past its end/);
    // v5: the QE report certification data (type 6) size one larger than its contents.
    const off = 54 + 648 + 4 + 130;
    const size = new DataView(tdx5.buffer, tdx5.byteOffset).getUint32(off, true);
    const inner = tdx5.slice();
    new DataView(inner.buffer).setUint32(off, size + 1, true);
    rejects(() => parseDcapQuote(inner), 'ERR_EVIDENCE_MALFORMED');
  });

  test('parseDcapQuote() rejects certification data other than a PCK chain', () => {
    const v3 = sgx.slice();
    const certTypeAt = 436 + 578 + 32;
    assert.equal(v3[certTypeAt], 5);
    v3[certTypeAt] = 4;
    rejects(() => parseDcapQuote(v3), 'ERR_EVIDENCE_UNSUPPORTED', /type 4/);
    const v5 = tdx5.slice();
    v5[54 + 648 + 4 + 128] = 5;
    rejects(() => parseDcapQuote(v5), 'ERR_EVIDENCE_UNSUPPORTED', /type 5 is not 6/);
  });

  test('parseDcapQuote() rejects a chain that is not PEM certificates', () => {
    const bad = (text: string) =>
      buildQuote({ version: 3, body: sgxBody({}), qeReport: qeBody('sgx'), pck: pki.pck, chainPem: text });
    rejects(() => parseDcapQuote(bad('')), 'ERR_EVIDENCE_MALFORMED', /empty/);
    rejects(() => parseDcapQuote(bad(`${pem.slice(0, -1)}junk`)), 'ERR_EVIDENCE_MALFORMED');
    rejects(() => parseDcapQuote(bad(pem.replace(/\n/g, '\r\n'))), 'ERR_EVIDENCE_MALFORMED');
    rejects(() => parseDcapQuote(bad(`${pem}\0`)), 'ERR_EVIDENCE_MALFORMED');
    const block = '-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n';
    rejects(() => parseDcapQuote(bad(block)), 'ERR_EVIDENCE_MALFORMED', /certificate 0/);
    rejects(() => parseDcapQuote(bad(block.replace('MAA=', 'MAB='))), 'ERR_EVIDENCE_MALFORMED', /canonical/);
  });
});

describe('readPemChain()', () => {
  test('readPemChain() accepts LF-separated blocks with or without one final NUL', () => {
    const pki = makePki();
    const text = chainPem(pki.pck.der, pki.root.der);
    for (const t of [text, text.slice(0, -1), text.slice(0, -2)]) {
      const ders = readPemChain(new TextEncoder().encode(t));
      assert.deepEqual(ders, [pki.pck.der, pki.root.der]);
    }
  });

  test('readPemChain() refuses a block that is not a certificate, text between blocks and padding bits', () => {
    const pki = makePki();
    const text = chainPem(pki.pck.der, pki.root.der).replace(/\0$/, '');
    const read = (t: string) => () => readPemChain(new TextEncoder().encode(t));
    const crl = text
      .replace(/CERTIFICATE-----\n$/, 'X509 CRL-----\n')
      .replace(/(.*)BEGIN CERTIFICATE/s, '$1BEGIN X509 CRL');
    rejects(read(crl), 'ERR_EVIDENCE_MALFORMED', /X509 CRL block/);
    rejects(
      read(text.replace('-----\n-----BEGIN', '-----\nnote\n-----BEGIN')),
      'ERR_EVIDENCE_MALFORMED',
      /not strict PEM/,
    );
    rejects(
      read('-----BEGIN CERTIFICATE-----\nMAB=\n-----END CERTIFICATE-----\n'),
      'ERR_EVIDENCE_MALFORMED',
      /canonical/,
    );
  });
});

describe('detectEvidenceKind()', () => {
  test('detectEvidenceKind() tells SEV-SNP reports from DCAP quotes', { skip: NEEDS_EVIDENCE }, () => {
    for (const s of SNP_SAMPLES) assert.equal(detectEvidenceKind(reportBytes(s.report)), 'sev-snp', s.report);
  });

  test('detectEvidenceKind() refuses bytes that are neither', () => {
    for (const bytes of [
      new Uint8Array(0),
      new Uint8Array(1184),
      new Uint8Array(5000).fill(0xff),
      new Uint8Array(20),
    ]) {
      rejects(() => detectEvidenceKind(bytes), 'ERR_EVIDENCE_UNSUPPORTED');
    }
    assert.throws(() => detectEvidenceKind('x' as unknown as Uint8Array), TypeError);
  });
});

describe('parseDcapQuote() under fuzzing', () => {
  const only = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof AttestationError)) throw e;
    }
  };

  test('parseDcapQuote() and detectEvidenceKind() throw only AttestationError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        only(() => parseDcapQuote(bytes));
        only(() => detectEvidenceKind(bytes));
      }),
      { numRuns: 500 },
    );
  });

  test('parseDcapQuote() throws only AttestationError on mutated quotes', () => {
    const pki = makePki();
    const pem = chainPem(pki.pck.der, pki.pckCa.der, pki.root.der);
    const seeds = [
      buildQuote({ version: 3, body: sgxBody({}), qeReport: qeBody('sgx'), pck: pki.pck, chainPem: pem }),
      buildQuote({ version: 4, body: tdBody({}), qeReport: qeBody('tdx'), pck: pki.pck, chainPem: pem }),
      buildQuote({ version: 5, body: tdBody({}, 648), qeReport: qeBody('tdx'), pck: pki.pck, chainPem: pem }),
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...seeds),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        (seed, edits, cut) => {
          const bytes = seed.slice(0, seed.byteLength - (cut % 64));
          for (const [at, value] of edits) bytes[at % bytes.byteLength] = value;
          only(() => parseDcapQuote(bytes));
        },
      ),
      { numRuns: 400 },
    );
  });
});
