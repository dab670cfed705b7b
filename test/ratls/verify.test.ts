import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import {
  createSimIntelPlatform,
  makeSimSgxQuote,
  type SimRootMaterial,
  signSimReport,
  simSgxCollateral,
} from '../../src/attestation/sim/index.ts';
import { loadOrCreateSimRoot } from '../../src/host/simroot.ts';
import { encode } from '../../src/protocol/cbor.ts';
import {
  decodeCmw,
  decodeDcapCollateral,
  encodeCmw,
  encodeDcapCollateral,
  MEDIA_TYPES,
} from '../../src/ratls/cmw.ts';
import {
  BINDING_DOMAIN,
  makeKeepCertificate,
  RatlsError,
  readKeepCertificate,
  reportDataFor,
  spkiOf,
  verifyKeepCertificate,
} from '../../src/ratls/index.ts';
import {
  buildQuote,
  chainPem,
  makePki,
  qeBody,
  SCENARIO_NOW,
  scenario,
  tdBody,
} from '../attestation/dcap/forge.ts';
import { testHome } from '../helpers.ts';

let root: SimRootMaterial;
const measurement = new Uint8Array(48).fill(0x5a);
const measurementHex = Buffer.from(measurement).toString('hex');
const now = new Date();

before(async () => {
  root = (await loadOrCreateSimRoot(testHome)).material;
});

function keep(
  options: {
    nonce?: Uint8Array;
    reportDataKey?: 'own' | 'other';
    mutateReport?: (r: Uint8Array) => void;
  } = {},
) {
  const nonce = options.nonce ?? new Uint8Array(randomBytes(32));
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const other = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey;
  const spki = spkiOf(options.reportDataKey === 'other' ? other : privateKey);
  const report = signSimReport(root, {
    reportData: reportDataFor({ domain: BINDING_DOMAIN, spki, nonce }),
    measurement,
  });
  options.mutateReport?.(report);
  const der = makeKeepCertificate({
    privateKey,
    nonce,
    now,
    evidence: { kind: 'sev-snp', report, certs: [root.vcekDer, root.askDer, root.arkDer] },
  });
  return { der, nonce };
}

function expectations(nonce: Uint8Array, trust = true) {
  return {
    nonce,
    now,
    policy: { measurements: [measurementHex], ...(trust ? { trustSimulatedRoots: [root.fingerprint] } : {}) },
  };
}

function code(c: string) {
  return (e: unknown) => (e as { code?: string }).code === c;
}

describe('verifyKeepCertificate()', () => {
  test('accepts a Keep certificate whose evidence binds its key and the nonce', () => {
    const { der, nonce } = keep();
    const id = verifyKeepCertificate(der, expectations(nonce));
    assert.ok(id.claims && id.claims.kind === 'sev-snp');
    assert.equal(id.claims.measurement, measurementHex);
    assert.equal(id.claims.simulated, true);
    assert.deepEqual(id.spki, readKeepCertificate(der).spki);
  });

  test('rejects evidence with a flipped measurement byte', () => {
    const { der, nonce } = keep({
      mutateReport: (r) => {
        r[0x90] = r[0x90]! ^ 1;
      },
    });
    assert.throws(() => verifyKeepCertificate(der, expectations(nonce)), code('ERR_SIGNATURE_INVALID'));
  });

  test("rejects a report whose report_data hashes another key than the certificate's", () => {
    const { der, nonce } = keep({ reportDataKey: 'other' });
    assert.throws(() => verifyKeepCertificate(der, expectations(nonce)), code('ERR_REPORT_DATA_MISMATCH'));
  });

  test('rejects evidence made for another nonce (a replay)', () => {
    const { der } = keep();
    assert.throws(
      () => verifyKeepCertificate(der, expectations(new Uint8Array(randomBytes(32)))),
      code('ERR_KEEP_NONCE_MISMATCH'),
    );
  });

  test('rejects a simulated root the policy did not opt into', () => {
    const { der, nonce } = keep();
    assert.throws(
      () => verifyKeepCertificate(der, expectations(nonce, false)),
      code('ERR_SIMULATED_ROOT_NOT_TRUSTED'),
    );
  });

  test('rejects a runtime measurement the policy does not allow', () => {
    const { der, nonce } = keep();
    const e = expectations(nonce);
    assert.throws(
      () => verifyKeepCertificate(der, { ...e, policy: { ...e.policy, measurements: ['00'.repeat(48)] } }),
      code('ERR_POLICY_VIOLATION'),
    );
  });

  test('rejects a certificate outside its validity', () => {
    const { der, nonce } = keep();
    assert.throws(
      () =>
        verifyKeepCertificate(der, { ...expectations(nonce), now: new Date(now.getTime() + 3 * 86400_000) }),
      code('ERR_KEEP_CERT_EXPIRED'),
    );
  });

  test('refuses a certificate without evidence unless insecure is accepted', () => {
    const nonce = new Uint8Array(randomBytes(32));
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const der = makeKeepCertificate({ privateKey, nonce, now });
    assert.throws(() => verifyKeepCertificate(der, expectations(nonce)), code('ERR_KEEP_NOT_ATTESTED'));
    assert.equal(verifyKeepCertificate(der, { ...expectations(nonce), insecure: true }).claims, null);
  });

  test("rejects a certificate whose signature is not its own key's", () => {
    const { der, nonce } = keep();
    const forged = new Uint8Array(der);
    forged[forged.length - 10] = forged[forged.length - 10]! ^ 0xff;
    assert.throws(
      () => verifyKeepCertificate(forged, expectations(nonce)),
      (e: unknown) =>
        e instanceof RatlsError &&
        ['ERR_KEEP_CERT_NOT_SELF_SIGNED', 'ERR_KEEP_CERT_MALFORMED'].includes(e.code),
    );
  });

  test('rejects bytes that are not a certificate', () => {
    assert.throws(
      () => verifyKeepCertificate(new Uint8Array([1, 2, 3]), expectations(new Uint8Array(32))),
      code('ERR_KEEP_CERT_MALFORMED'),
    );
  });
});

describe('decodeCmw()', () => {
  test('rejects a collection with an extra label', () => {
    const bytes = encode({
      evidence: ['x', new Uint8Array(1)],
      certs: ['y', new Uint8Array(1)],
      binding: ['z', new Uint8Array(1)],
      more: 1,
    });
    assert.throws(() => decodeCmw(bytes), code('ERR_KEEP_CERT_MALFORMED'));
  });

  test('throws only RatlsError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
        try {
          decodeCmw(bytes);
        } catch (e) {
          assert.ok(e instanceof RatlsError, String(e));
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('verifyKeepCertificate() with a TDX quote', () => {
  const pki = makePki();
  function tdxKeep(): { der: Uint8Array; nonce: Uint8Array } {
    const nonce = new Uint8Array(randomBytes(32));
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const reportData = reportDataFor({ domain: BINDING_DOMAIN, spki: spkiOf(privateKey), nonce });
    const quote = buildQuote({
      version: 4,
      body: tdBody({ reportData }),
      qeReport: qeBody('tdx'),
      pck: pki.pck,
      chainPem: chainPem(pki.pck.der, pki.pckCa.der, pki.root.der),
    });
    const der = makeKeepCertificate({
      privateKey,
      nonce,
      now: SCENARIO_NOW,
      evidence: { kind: 'tdx', report: quote, certs: [] },
    });
    return { der, nonce };
  }

  test('requires checked collateral by default, as the Keep flow does for DCAP evidence', () => {
    const { der, nonce } = tdxKeep();
    assert.throws(
      () => verifyKeepCertificate(der, { nonce, now: SCENARIO_NOW, roots: pki.roots, policy: {} }),
      (e: unknown) => (e as { code?: string; field?: string }).field === 'requireCollateral',
    );
  });

  test('accepts the quote without collateral when the policy says so', () => {
    const { der, nonce } = tdxKeep();
    const id = verifyKeepCertificate(der, {
      nonce,
      now: SCENARIO_NOW,
      roots: pki.roots,
      policy: { requireCollateral: false },
    });
    assert.equal(id.claims?.kind, 'tdx');
  });
});

describe('DCAP collateral carried in a Keep certificate', () => {
  const pki = makePki();
  function tdxKeepWithCollateral(mutate: (c: Uint8Array) => Uint8Array = (c) => c) {
    const nonce = new Uint8Array(randomBytes(32));
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const reportData = reportDataFor({ domain: BINDING_DOMAIN, spki: spkiOf(privateKey), nonce });
    const s = scenario('tdx', { pki, body: tdBody({ reportData }) });
    const der = makeKeepCertificate({
      privateKey,
      nonce,
      now: SCENARIO_NOW,
      evidence: {
        kind: 'tdx',
        report: s.quote,
        certs: [],
        collateral: mutate(encodeDcapCollateral(s.collateral)),
      },
    });
    return { der, nonce, collateral: s.collateral };
  }

  test('the client checks the carried collateral: TCB status and revocation, under the default policy', () => {
    const { der, nonce } = tdxKeepWithCollateral();
    const id = verifyKeepCertificate(der, { nonce, now: SCENARIO_NOW, roots: pki.roots, policy: {} });
    assert.ok(id.claims?.kind === 'tdx');
    assert.equal(id.claims.collateralChecked, true);
    assert.equal(id.claims.tcbStatus, 'UpToDate');
  });

  test('carried collateral past its nextUpdate is refused', () => {
    const { der, nonce } = tdxKeepWithCollateral();
    const late = new Date('2025-08-01T00:00:00Z');
    assert.throws(
      () => verifyKeepCertificate(der, { nonce, now: late, roots: pki.roots, policy: {} }),
      (e: unknown) =>
        ['ERR_COLLATERAL_EXPIRED', 'ERR_KEEP_CERT_EXPIRED'].includes(String((e as { code?: string }).code)),
    );
  });

  test('encodeDcapCollateral() and decodeDcapCollateral() round-trip, hex fields becoming bytes', () => {
    const { collateral } = tdxKeepWithCollateral();
    const hexed = { ...collateral, pckCrl: Buffer.from(collateral.pckCrl as Uint8Array).toString('hex') };
    const back = decodeDcapCollateral(encodeDcapCollateral(hexed));
    assert.deepEqual(back, { ...collateral, pckCrl: new Uint8Array(collateral.pckCrl as Uint8Array) });
  });

  test('decodeDcapCollateral() refuses a missing field, a field of the wrong type, and an extra field', () => {
    const { collateral } = tdxKeepWithCollateral();
    const good = decodeDcapCollateral(encodeDcapCollateral(collateral)) as unknown as Record<string, unknown>;
    const { tcbInfo: _dropped, ...missing } = good;
    for (const bad of [
      missing,
      { ...good, tcbInfo: new Uint8Array(4) },
      { ...good, pckCrl: 'ab' },
      { ...good, x: 1 },
    ]) {
      assert.throws(() => decodeDcapCollateral(encode(bad as never)), code('ERR_KEEP_CERT_MALFORMED'));
    }
    assert.throws(() => decodeDcapCollateral(Uint8Array.of(0xff)), code('ERR_KEEP_CERT_MALFORMED'));
  });

  test('decodeCmw() refuses collateral beside an SEV-SNP report, and under another media type', () => {
    const { collateral } = tdxKeepWithCollateral();
    const bytes = encodeDcapCollateral(collateral);
    const binding = { domain: BINDING_DOMAIN, spki: new Uint8Array(8), nonce: new Uint8Array(32) };
    const tdx = encodeCmw({
      evidence: { kind: 'tdx', report: new Uint8Array(8), certs: [], collateral: bytes },
      binding,
    });
    assert.deepEqual(decodeCmw(tdx).evidence.collateral, bytes);
    const collection = (evidenceType: string, collateralType: string) =>
      encode({
        binding: [MEDIA_TYPES.binding, encode(binding)],
        certs: [MEDIA_TYPES.certs, encode([])],
        collateral: [collateralType, bytes],
        evidence: [evidenceType, new Uint8Array(8)],
      });
    assert.doesNotThrow(() => decodeCmw(collection(MEDIA_TYPES.tdx, MEDIA_TYPES.collateral)));
    assert.throws(
      () => decodeCmw(collection(MEDIA_TYPES['sev-snp'], MEDIA_TYPES.collateral)),
      code('ERR_KEEP_CERT_MALFORMED'),
    );
    assert.throws(
      () => decodeCmw(collection(MEDIA_TYPES.tdx, MEDIA_TYPES.certs)),
      code('ERR_KEEP_CERT_MALFORMED'),
    );
    assert.throws(
      () =>
        encodeCmw({
          evidence: { kind: 'sev-snp', report: new Uint8Array(8), certs: [], collateral: bytes },
          binding,
        }),
      TypeError,
    );
  });

  test('decodeCmw() lets only RatlsError escape for any collateral record', () => {
    const fields = [
      'pckCrlIssuerChain',
      'rootCaCrl',
      'pckCrl',
      'tcbInfoIssuerChain',
      'tcbInfo',
      'tcbInfoSignature',
      'qeIdentityIssuerChain',
      'qeIdentity',
      'qeIdentitySignature',
      'x',
    ];
    const value = fc.oneof(fc.string(), fc.uint8Array({ maxLength: 40 }), fc.integer(), fc.constant(null));
    const binding = { domain: BINDING_DOMAIN, spki: new Uint8Array(8), nonce: new Uint8Array(32) };
    fc.assert(
      fc.property(
        fc.oneof(
          fc.dictionary(fc.constantFrom(...fields), value).map((m) => encode(m as never)),
          fc.uint8Array({ maxLength: 64 }),
        ),
        (collateral) => {
          const bytes = encode({
            binding: [MEDIA_TYPES.binding, encode(binding)],
            certs: [MEDIA_TYPES.certs, encode([])],
            collateral: [MEDIA_TYPES.collateral, collateral],
            evidence: [MEDIA_TYPES.tdx, new Uint8Array(8)],
          });
          try {
            decodeCmw(bytes);
          } catch (error) {
            assert.ok(error instanceof RatlsError, String(error));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  test('collateral bytes the host damaged are refused as a malformed certificate', () => {
    const { der, nonce } = tdxKeepWithCollateral((c) => c.subarray(0, c.length - 1));
    assert.throws(
      () => verifyKeepCertificate(der, { nonce, now: SCENARIO_NOW, roots: pki.roots, policy: {} }),
      code('ERR_KEEP_CERT_MALFORMED'),
    );
  });
});

describe('a simulated SGX quote carried in a Keep certificate', () => {
  const platform = createSimIntelPlatform();
  const mrEnclave = new Uint8Array(32).fill(0x3c);
  function sgxKeep(withCollateral = true) {
    const nonce = new Uint8Array(randomBytes(32));
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const reportData = reportDataFor({ domain: BINDING_DOMAIN, spki: spkiOf(privateKey), nonce });
    const der = makeKeepCertificate({
      privateKey,
      nonce,
      now,
      evidence: {
        kind: 'sgx',
        report: makeSimSgxQuote(platform, { reportData, mrEnclave }),
        certs: [],
        ...(withCollateral ? { collateral: encodeDcapCollateral(simSgxCollateral(platform, now)) } : {}),
      },
    });
    return { der, nonce };
  }
  const policy = () => ({
    mrEnclaves: [Buffer.from(mrEnclave).toString('hex')],
    trustSimulatedRoots: [platform.fingerprint],
  });

  test('travels as an sgx-quote record with its collateral, and verifies under a policy naming its root', () => {
    const { der, nonce } = sgxKeep();
    const cmw = readKeepCertificate(der).cmw!;
    assert.equal(cmw.evidence.kind, 'sgx');
    assert.ok(cmw.evidence.collateral !== undefined);
    const id = verifyKeepCertificate(der, { nonce, now, policy: policy() });
    assert.ok(id.claims?.kind === 'sgx');
    assert.equal(id.claims.simulated, true);
    assert.equal(id.claims.collateralChecked, true);
  });

  test('is refused under the default roots, and without its collateral (nothing but it vouches for the simulated QE)', () => {
    const { der, nonce } = sgxKeep();
    assert.throws(
      () => verifyKeepCertificate(der, { nonce, now, policy: { mrEnclaves: policy().mrEnclaves } }),
      code('ERR_SIMULATED_ROOT_NOT_TRUSTED'),
    );
    const bare = sgxKeep(false);
    assert.throws(
      () => verifyKeepCertificate(bare.der, { nonce: bare.nonce, now, policy: policy() }),
      code('ERR_QE_IDENTITY_MISMATCH'),
    );
  });

  test('a record of another media type is not read as an SGX quote', () => {
    assert.equal(MEDIA_TYPES.sgx, 'application/vnd.donjon.sgx-quote');
    const binding = { domain: BINDING_DOMAIN, spki: new Uint8Array(8), nonce: new Uint8Array(32) };
    const bytes = encodeCmw({ evidence: { kind: 'sgx', report: new Uint8Array(8), certs: [] }, binding });
    assert.equal(decodeCmw(bytes).evidence.kind, 'sgx');
  });
});
