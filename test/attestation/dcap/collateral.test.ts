import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { toHex } from '../../../src/attestation/bytes.ts';
import {
  parseDcapCollateral,
  parseQeIdentity,
  parseTcbInfo,
  readDcapCollateral,
  splitPcsResponse,
} from '../../../src/attestation/dcap/collateral.ts';
import { AttestationError } from '../../../src/attestation/errors.ts';
import { collateralJson, evidenceText, NEEDS_EVIDENCE } from '../evidence.ts';
import { collateral, makePki, PLATFORM, qeIdentity, tcbInfo } from './forge.ts';

const DCAP_QVL = [
  'dcap-qvl/sgx_quote_collateral.json',
  'dcap-qvl/tdx_quote_collateral.json',
  'dcap-qvl/tdx_quote_outdated_collateral.json',
  'dcap-qvl/near_quote_collateral.json',
];
const PCS_TCB_INFOS = [
  'go-tdx-guest/sample_tcbInfo_response',
  'go-tdx-guest/sample_tcbinfo_response_v5',
  'trustee/tcbInfo.json',
  'enarx-steward/icelake.signed.tcb.crl.multi.xeon.tcbinfo.json',
  'enarx-steward/icelake.signed.tcb.crl.single.i5.tcbinfo.json',
];
const PCS_QE_IDENTITIES = ['go-tdx-guest/sample_qeIdentity_response', 'trustee/enclaveIdentity.json'];

function invalid(fn: () => unknown, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AttestationError, String(e));
    assert.equal(e.code, 'ERR_COLLATERAL_INVALID', e.message);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  });
}

describe('parseDcapCollateral() on dcap-qvl collateral', () => {
  for (const path of DCAP_QVL) {
    test(`parseDcapCollateral() reads ${path} and keeps the signed texts exact`, {
      skip: NEEDS_EVIDENCE,
    }, () => {
      const json = collateralJson(path);
      const c = parseDcapCollateral(json);
      assert.equal(c.tcbInfo, json.tcb_info);
      assert.equal(c.qeIdentity, json.qe_identity);
      assert.equal(c.pckCrlIssuerChain, json.pck_crl_issuer_chain);
      assert.ok(c.rootCaCrl instanceof Uint8Array && c.pckCrl instanceof Uint8Array);
      assert.equal(toHex(c.rootCaCrl), json.root_ca_crl);
      assert.equal(toHex(c.pckCrl), json.pck_crl);
      assert.equal(toHex(c.tcbInfoSignature as Uint8Array), json.tcb_info_signature);
      // Its own output (camelCase, bytes) reads back to the same collateral.
      assert.deepEqual(parseDcapCollateral(c), c);
    });
  }

  test('parseDcapCollateral() reads the TCB info and QE identity of the SGX collateral', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const p = readDcapCollateral(collateralJson('dcap-qvl/sgx_quote_collateral.json'));
    assert.equal(p.tcbInfo.id, 'SGX');
    assert.equal(toHex(p.tcbInfo.fmspc), '00a067110000');
    assert.equal(p.tcbInfo.issueDate.toISOString(), '2025-06-19T10:56:11.000Z');
    assert.equal(p.tcbInfo.nextUpdate.toISOString(), '2025-07-19T10:56:11.000Z');
    assert.equal(p.tcbInfo.tcbEvaluationDataNumber, 17);
    assert.equal(p.qeIdentity.id, 'QE');
    assert.equal(p.qeIdentity.isvProdId, 1);
    assert.equal(
      toHex(p.qeIdentity.mrSigner),
      '8c4f5775d796503e96137f77c68a829a0056ac8ded70140b081b094490c57bff',
    );
    assert.equal(p.pckCrlIssuerChain.length, 2);
    assert.equal(p.tcbInfoIssuerChain.length, 2);
  });

  test('parseDcapCollateral() rejects missing, unknown and mistyped fields', { skip: NEEDS_EVIDENCE }, () => {
    const json = collateralJson('dcap-qvl/sgx_quote_collateral.json');
    const { tcb_info: _, ...missing } = json;
    invalid(() => parseDcapCollateral(missing), /lacks the field tcbInfo|unknown field/);
    invalid(
      () => parseDcapCollateral({ ...json, pck_certificate_chain: null }),
      /unknown field pck_certificate_chain/,
    );
    invalid(() => parseDcapCollateral({ ...json, tcbInfo: json.tcb_info }), /unknown field tcbInfo/);
    invalid(
      () => parseDcapCollateral({ ...json, root_ca_crl: `${json.root_ca_crl}0` }),
      /rootCaCrl is not hex/,
    );
    invalid(() => parseDcapCollateral({ ...json, root_ca_crl: 42 }), /rootCaCrl is neither/);
    invalid(() => parseDcapCollateral({ ...json, pck_crl: json.root_ca_crl!.slice(0, 100) }), /PCK CRL/);
    invalid(
      () => parseDcapCollateral({ ...json, tcb_info_signature: `${json.tcb_info_signature}00` }),
      /64 bytes/,
    );
    invalid(() => parseDcapCollateral({ ...json, qe_identity_issuer_chain: 'not pem' }), /PEM/);
    invalid(
      () =>
        parseDcapCollateral({
          ...json,
          pck_crl_issuer_chain: json.pck_crl_issuer_chain!.replaceAll('CERTIFICATE', 'X509 CRL'),
        }),
      /pckCrlIssuerChain is not a PEM certificate chain/,
    );
    invalid(
      () =>
        parseDcapCollateral({ ...json, tcb_info_issuer_chain: `${json.tcb_info_issuer_chain}trailing text` }),
      /PEM/,
    );
    invalid(() => parseDcapCollateral({ ...json, tcb_info: json.tcb_info!.slice(0, -1) }), /not JSON/);
    invalid(() => parseDcapCollateral({ ...json, qe_identity: json.tcb_info! }), /QE identity/);
    for (const bad of [null, [], 'x', 3, new Uint8Array(3)]) invalid(() => parseDcapCollateral(bad));
  });
});

describe('parseTcbInfo() and parseQeIdentity()', () => {
  for (const path of PCS_TCB_INFOS) {
    test(`parseTcbInfo() reads ${path}, levels highest first`, { skip: NEEDS_EVIDENCE }, () => {
      const { body } = splitPcsResponse(evidenceText(path), 'tcbInfo');
      const info = parseTcbInfo(body);
      assert.equal(info.version, 3);
      assert.ok(info.tcbLevels.length > 0);
      for (let i = 1; i < info.tcbLevels.length; i++) {
        const [a, b] = [info.tcbLevels[i - 1]!, info.tcbLevels[i]!];
        const first = a.sgxComponents.findIndex((c, j) => c !== b.sgxComponents[j]);
        assert.ok(first === -1 ? a.pceSvn >= b.pceSvn : a.sgxComponents[first]! > b.sgxComponents[first]!);
      }
      assert.equal(info.tdxModule !== undefined, info.id === 'TDX');
    });
  }

  for (const path of PCS_QE_IDENTITIES) {
    test(`parseQeIdentity() reads ${path}`, { skip: NEEDS_EVIDENCE }, () => {
      const identity = parseQeIdentity(splitPcsResponse(evidenceText(path), 'enclaveIdentity').body);
      assert.equal(identity.id, 'TD_QE');
      assert.equal(identity.isvProdId, 2);
      assert.equal(identity.miscselectMask, 0xffffffff);
    });
  }

  const base = tcbInfo({
    id: 'TDX',
    levels: [{ sgx: PLATFORM.components, pcesvn: 13, tdx: PLATFORM.components, status: 'UpToDate' }],
  });
  const text = (o: unknown) => JSON.stringify(o);

  test('parseTcbInfo() reads a factory TCB info', () => {
    const info = parseTcbInfo(text(base));
    assert.equal(info.id, 'TDX');
    assert.deepEqual(info.tcbLevels[0]!.tdxComponents, PLATFORM.components);
  });

  test('parseTcbInfo() rejects unknown fields, bad values and unsupported versions', () => {
    invalid(() => parseTcbInfo(text({ ...base, extra: 1 })), /unknown field extra/);
    invalid(() => parseTcbInfo(text({ ...base, version: 2 })), /version is not 3/);
    invalid(() => parseTcbInfo(text({ ...base, id: 'TDX2' })), /id/);
    invalid(() => parseTcbInfo(text({ ...base, tcbType: 1 })), /tcbType 1/);
    invalid(() => parseTcbInfo(text({ ...base, fmspc: 'zz'.repeat(6) })), /fmspc/);
    invalid(() => parseTcbInfo(text({ ...base, issueDate: '2025-02-30T00:00:00Z' })), /issueDate/);
    invalid(() => parseTcbInfo(text({ ...base, nextUpdate: '2025-06-01T00:00:00.000Z' })), /nextUpdate/);
    invalid(() => parseTcbInfo(text({ ...base, issueDate: '2025-08-01T00:00:00Z' })), /before its issueDate/);
    invalid(() => parseTcbInfo(text({ ...base, tcbLevels: [] })), /no TCB levels/);
    const level = (base.tcbLevels as Record<string, unknown>[])[0]!;
    invalid(
      () => parseTcbInfo(text({ ...base, tcbLevels: [{ ...level, tcbStatus: 'Fine' }] })),
      /TCB status/,
    );
    invalid(() => parseTcbInfo(text({ ...base, tcbLevels: [{ ...level, advisoryIDs: [1] }] })), /advisory/);
    const tcb = level.tcb as Record<string, unknown>;
    invalid(
      () =>
        parseTcbInfo(
          text({ ...base, tcbLevels: [{ ...level, tcb: { ...tcb, sgxtcbcomponents: [{ svn: 1 }] } }] }),
        ),
      /16 components/,
    );
    invalid(
      () =>
        parseTcbInfo(
          text({ ...base, tcbLevels: [{ ...level, tcb: { ...tcb, tdxtcbcomponents: undefined } }] }),
        ),
      /lacks/,
    );
    invalid(() => parseTcbInfo(text({ ...base, tdxModule: undefined })), /tdxModule/);
    const identity = {
      id: 'TDX_01',
      mrsigner: '00'.repeat(48),
      attributes: '00'.repeat(8),
      attributesMask: 'FF'.repeat(8),
      tcbLevels: [{ tcb: { isvsvn: 1 }, tcbDate: '2024-01-01T00:00:00Z', tcbStatus: 'UpToDate' }],
    };
    assert.equal(
      parseTcbInfo(text({ ...base, tdxModuleIdentities: [identity] })).tdxModuleIdentities?.[0]?.id,
      'TDX_01',
    );
    invalid(() => parseTcbInfo(text({ ...base, tdxModuleIdentities: [identity, identity] })), /twice/);
    invalid(
      () => parseTcbInfo(text({ ...base, tdxModuleIdentities: [{ ...identity, id: 'TDX_1' }] })),
      /TDX_/,
    );
    const sgx = tcbInfo({
      id: 'SGX',
      levels: [{ sgx: PLATFORM.components, pcesvn: 13, status: 'UpToDate' }],
    });
    invalid(() => parseTcbInfo(text({ ...sgx, tdxModule: base.tdxModule })), /TDX module fields/);
  });

  test('parseQeIdentity() reads MISCSELECT big-endian and sorts levels by ISVSVN', () => {
    const qe = qeIdentity({
      id: 'QE',
      levels: [
        { isvsvn: 2, status: 'OutOfDate' },
        { isvsvn: 8, status: 'UpToDate' },
      ],
    });
    const identity = parseQeIdentity(text({ ...qe, miscselect: '00000001', miscselectMask: 'FFFFFFFE' }));
    assert.equal(identity.miscselect, 1);
    assert.equal(identity.miscselectMask, 0xfffffffe);
    assert.deepEqual(
      identity.tcbLevels.map((l) => l.isvSvn),
      [8, 2],
    );
    invalid(() => parseQeIdentity(text({ ...qe, id: 'QVE' })), /id/);
    invalid(() => parseQeIdentity(text({ ...qe, version: 1 })), /version/);
    invalid(() => parseQeIdentity(text({ ...qe, mrsigner: 'AB' })), /mrsigner/);
    invalid(() => parseQeIdentity(text({ ...qe, tcbLevels: [] })), /non-empty/);
    invalid(() => parseQeIdentity(text({ ...qe, isvprodid: -1 })), /isvprodid/);
    invalid(() => parseQeIdentity('[]'), /not an object/);
  });
});

describe('splitPcsResponse()', () => {
  test('splitPcsResponse() returns the exact signed text and the signature', { skip: NEEDS_EVIDENCE }, () => {
    const raw = evidenceText('trustee/tcbInfo.json');
    const { body, signature } = splitPcsResponse(raw, 'tcbInfo');
    assert.ok(raw.startsWith(`{"tcbInfo":${body},"signature":"`));
    assert.equal(signature.byteLength, 64);
    assert.equal(toHex(signature), JSON.parse(raw).signature);
  });

  test('splitPcsResponse() rejects bodies of another shape', () => {
    const sig = 'ab'.repeat(64);
    assert.equal(splitPcsResponse(`{"tcbInfo":{"a":1},"signature":"${sig}"}\n`, 'tcbInfo').body, '{"a":1}');
    invalid(() => splitPcsResponse(`{"tcbInfo":{"a":1},"signature":"${sig}"}`, 'enclaveIdentity'));
    invalid(() => splitPcsResponse(`{"tcbInfo":{"a":1}, "signature":"${sig}"}`, 'tcbInfo'));
    invalid(() => splitPcsResponse(`{"tcbInfo":{"a":1},"signature":"${sig.slice(2)}"}`, 'tcbInfo'));
    invalid(() => splitPcsResponse(`{"tcbInfo":{"a":1,"signature":"${sig}"}`, 'tcbInfo'));
    invalid(() => splitPcsResponse(` {"tcbInfo":{"a":1},"signature":"${sig}"}`, 'tcbInfo'));
  });
});

describe('parseDcapCollateral() under fuzzing', () => {
  const only = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof AttestationError)) throw e;
    }
  };

  test('parseDcapCollateral() throws only AttestationError on random values', () => {
    fc.assert(
      fc.property(fc.anything({ withTypedArray: true, withNullPrototype: true }), (value) => {
        only(() => parseDcapCollateral(value));
      }),
      { numRuns: 300 },
    );
  });

  test('parseDcapCollateral() throws only AttestationError when any field is replaced', () => {
    const pki = makePki();
    const good = collateral(
      pki,
      tcbInfo({ id: 'SGX', levels: [{ sgx: PLATFORM.components, pcesvn: 13, status: 'UpToDate' }] }),
      qeIdentity({ id: 'QE' }),
    );
    assert.deepEqual(parseDcapCollateral(good).tcbInfo, good.tcbInfo);
    const keys = Object.keys(good) as (keyof typeof good)[];
    fc.assert(
      fc.property(
        fc.constantFrom(...keys),
        fc.oneof(fc.anything(), fc.string(), fc.uint8Array({ maxLength: 80 }), fc.json()),
        (key, value) => {
          only(() => parseDcapCollateral({ ...good, [key]: value }));
        },
      ),
      { numRuns: 300 },
    );
  });

  test('parseTcbInfo() and parseQeIdentity() throw only AttestationError on random JSON', () => {
    fc.assert(
      fc.property(fc.json(), (text) => {
        only(() => parseTcbInfo(text));
        only(() => parseQeIdentity(text));
      }),
      { numRuns: 300 },
    );
  });
});
