import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { checkNotRevoked, clearCrlCache, parseCrl, verifyCrl } from '../../src/attestation/crl.ts';
import { AttestationError, type AttestationErrorCode } from '../../src/attestation/errors.ts';
import { defaultRoots } from '../../src/attestation/roots.ts';
import { OID, parseCertificate } from '../../src/attestation/x509.ts';
import { integer, sequence } from '../../src/lib/der.ts';
import { ecCrl, intelName, makePki } from './dcap/forge.ts';
import { certDers, collateralJson, evidenceBytes, NEEDS_EVIDENCE } from './evidence.ts';

function rejects(fn: () => unknown, code: AttestationErrorCode, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AttestationError, String(e));
    assert.equal(e.code, code, e.message);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  });
}

const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));

describe('parseCrl() and verifyCrl() on real CRLs', () => {
  test('parseCrl() reads the AMD KDS CRLs and verifyCrl() checks them under their ARK', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const genoa = parseCrl(evidenceBytes('enarx-steward/milan.signed.crl.crl0.der'));
    const milan = parseCrl(evidenceBytes('enarx-steward/milan.signed.crl.crl1.der'));
    assert.deepEqual([...genoa.revoked], [0x20001n]);
    assert.equal(milan.revoked.size, 0);
    assert.equal(milan.thisUpdate.toISOString(), '2022-05-09T17:07:45.000Z');
    assert.equal(milan.nextUpdate.toISOString(), '2023-05-09T23:00:00.000Z');
    const milanArk = parseCertificate(certDers('roots/AMD_ARK-Milan.pem')[0]!);
    const genoaArk = parseCertificate(certDers('roots/AMD_ARK-Genoa.pem')[0]!);
    verifyCrl(milan, milanArk, new Date('2023-01-01T00:00:00Z'), 'the Milan CRL', 'amd-rsa-pss');
    verifyCrl(genoa, genoaArk, new Date('2023-01-01T00:00:00Z'), 'the Genoa CRL', 'amd-rsa-pss');
    rejects(
      () => verifyCrl(genoa, milanArk, new Date('2023-01-01T00:00:00Z'), 'the Genoa CRL', 'amd-rsa-pss'),
      'ERR_COLLATERAL_INVALID',
      /issued by/,
    );
    rejects(
      () => verifyCrl(milan, milanArk, new Date('2023-05-10T00:00:00Z'), 'the Milan CRL', 'amd-rsa-pss'),
      'ERR_COLLATERAL_EXPIRED',
    );
    // AMD's CRLs are RSA-PSS: asking for Intel's profile fails rather than skipping the check.
    clearCrlCache();
    rejects(
      () => verifyCrl(milan, milanArk, new Date('2023-01-01T00:00:00Z'), 'the Milan CRL', 'intel-ecdsa'),
      'ERR_COLLATERAL_INVALID',
      /ECDSA/,
    );
  });

  test('parseCrl() reads the Intel Root CA and PCK CRLs and verifyCrl() checks them', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const root = parseCertificate(defaultRoots.intelRoots[0]!);
    const json = collateralJson('dcap-qvl/tdx_quote_outdated_collateral.json');
    const rootCrl = parseCrl(hex(json.root_ca_crl!));
    verifyCrl(rootCrl, root, new Date('2026-03-01T00:00:00Z'), 'the Root CA CRL', 'intel-ecdsa');
    const pckCrl = parseCrl(hex(json.pck_crl!));
    assert.equal(pckCrl.revoked.size, 57);
    const ca = parseCertificate(certDers('roots/Intel_SGX_PCK_Platform_CA.pem')[0]!);
    verifyCrl(pckCrl, ca, new Date('2026-03-01T00:00:00Z'), 'the PCK CRL', 'intel-ecdsa');
    for (const name of ['multi.xeon', 'single.i5']) {
      for (const i of [0, 1, 2])
        parseCrl(evidenceBytes(`enarx-steward/icelake.signed.tcb.crl.${name}.crl${i}.der`));
    }
    assert.equal(parseCrl(evidenceBytes('go-tdx-guest/pckcrl')).revoked.size, 44);
  });
});

describe('parseCrl() strictness', () => {
  const pki = makePki();
  const base = {
    issuer: pki.caName,
    issuerKey: pki.pckCa.key.privateKey,
    thisUpdate: new Date('2025-06-01T00:00:00Z'),
    nextUpdate: new Date('2025-07-01T00:00:00Z'),
  };
  const ca = parseCertificate(pki.pckCa.der);
  const pck = parseCertificate(pki.pck.der);

  test('parseCrl() reads a factory CRL and checkNotRevoked() finds its serials', () => {
    const crl = parseCrl(
      ecCrl({
        ...base,
        revoked: [1n, pki.pck.serial],
        entryExtensions: [{ oid: OID.crlReason, value: Uint8Array.of(0x0a, 0x01, 0x01) }],
      }),
    );
    verifyCrl(crl, ca, new Date('2025-06-15T00:00:00Z'), 'the CRL', 'intel-ecdsa');
    rejects(() => checkNotRevoked(crl, pck, 'the PCK'), 'ERR_REVOKED', /3003/);
    checkNotRevoked(parseCrl(ecCrl({ ...base, revoked: [1n] })), pck, 'the PCK');
  });

  test('parseCrl() refuses v1, nextUpdate-less, empty-list and duplicate-entry CRLs', () => {
    rejects(() => parseCrl(ecCrl({ ...base, version: -1 })), 'ERR_COLLATERAL_INVALID', /v2/);
    rejects(() => parseCrl(ecCrl({ ...base, version: 0 })), 'ERR_COLLATERAL_INVALID', /v2/);
    const { nextUpdate: _, ...noNext } = base;
    rejects(() => parseCrl(ecCrl(noNext)), 'ERR_COLLATERAL_INVALID', /nextUpdate/);
    rejects(
      () => parseCrl(ecCrl({ ...base, nextUpdate: new Date('2025-05-01T00:00:00Z') })),
      'ERR_COLLATERAL_INVALID',
      /before/,
    );
    rejects(() => parseCrl(ecCrl({ ...base, revoked: [5n, 5n] })), 'ERR_COLLATERAL_INVALID', /twice/);
  });

  test('parseCrl() refuses unknown critical extensions on the CRL or an entry', () => {
    const idp = { oid: '2.5.29.28', critical: true, value: sequence() };
    rejects(() => parseCrl(ecCrl({ ...base, extensions: [idp] })), 'ERR_COLLATERAL_INVALID', /2\.5\.29\.28/);
    const issuer = { oid: '2.5.29.29', critical: true, value: sequence() };
    rejects(
      () => parseCrl(ecCrl({ ...base, revoked: [1n], entryExtensions: [issuer] })),
      'ERR_COLLATERAL_INVALID',
      /entry/,
    );
    // Known extensions, or unknown ones left non-critical, are fine.
    parseCrl(
      ecCrl({
        ...base,
        extensions: [
          { oid: OID.crlNumber, value: integer(7) },
          { oid: '1.2.3.4', value: integer(1) },
        ],
      }),
    );
  });

  test('verifyCrl() refuses a CRL signed by another key or by a certificate that may not sign CRLs', () => {
    const forged = parseCrl(ecCrl({ ...base, issuerKey: pki.root.key.privateKey }));
    rejects(
      () => verifyCrl(forged, ca, new Date('2025-06-15T00:00:00Z'), 'the CRL', 'intel-ecdsa'),
      'ERR_COLLATERAL_INVALID',
      /does not verify/,
    );
    const byLeaf = parseCrl(
      ecCrl({ ...base, issuer: intelName('Intel SGX PCK Certificate'), issuerKey: pki.pck.key.privateKey }),
    );
    rejects(
      () => verifyCrl(byLeaf, pck, new Date('2025-06-15T00:00:00Z'), 'the CRL', 'intel-ecdsa'),
      'ERR_COLLATERAL_INVALID',
      /may not sign/,
    );
    assert.throws(() => verifyCrl(forged, ca, new Date(Number.NaN), 'the CRL', 'intel-ecdsa'), RangeError);
  });

  test('parseCrl() throws only AttestationError on random and mutated bytes', () => {
    const seed = ecCrl({ ...base, revoked: [1n, 2n] });
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 400 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }),
        (random, edits) => {
          for (const bytes of [random, seed.slice()]) {
            for (const [at, v] of edits) bytes[at % bytes.byteLength] = v;
            try {
              parseCrl(bytes);
            } catch (e) {
              if (!(e instanceof AttestationError)) throw e;
              assert.equal(e.code, 'ERR_COLLATERAL_INVALID');
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
