import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { sha256Hex, toHex } from '../../../src/attestation/bytes.ts';
import { clearCrlCache } from '../../../src/attestation/crl.ts';
import { parseDcapQuote } from '../../../src/attestation/dcap/quote.ts';
import { AttestationError, type AttestationErrorCode } from '../../../src/attestation/errors.ts';
import { type DcapCollateral, type SgxClaims, verify } from '../../../src/attestation/index.ts';
import {
  createSimIntelPlatform,
  makeSimSgxQuote,
  parseSimIntelPlatform,
  SIM_COLLATERAL_DAYS,
  SIM_ENCLAVE_MRSIGNER,
  SIM_ORGANIZATION,
  serializeSimIntelPlatform,
  simSgxCollateral,
} from '../../../src/attestation/sim/index.ts';
import { nameAttribute, OID, parseCertificate } from '../../../src/attestation/x509.ts';

const NOW = new Date('2026-03-01T12:00:00Z');
const DAY = 86_400_000;
const platform = createSimIntelPlatform({ now: NOW });
const REPORT_DATA = new Uint8Array(64).fill(0x42);
const MRENCLAVE = new Uint8Array(32).fill(0xe5);
const quote = makeSimSgxQuote(platform, { reportData: REPORT_DATA, mrEnclave: MRENCLAVE });
const collateral = simSgxCollateral(platform, NOW);
const trusting = { trustSimulatedRoots: [platform.fingerprint] };

function rejects(fn: () => unknown, code: AttestationErrorCode, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AttestationError, `not an AttestationError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

describe('the simulated Intel platform', () => {
  test('every certificate names O=Donjon SIMULATED; the fingerprint is the SHA-256 of the root', () => {
    for (const der of [platform.rootDer, platform.pckCaDer, platform.pckDer, platform.tcbSignerDer]) {
      assert.equal(nameAttribute(parseCertificate(der).subject, OID.organization), SIM_ORGANIZATION);
    }
    assert.equal(platform.fingerprint, sha256Hex(platform.rootDer));
  });

  test('survives serialisation, and refuses stored material that is not whole', () => {
    const again = parseSimIntelPlatform(serializeSimIntelPlatform(platform));
    assert.deepEqual(again, platform);
    const doc = JSON.parse(new TextDecoder().decode(serializeSimIntelPlatform(platform)));
    const bad = (change: (d: Record<string, unknown>) => void, message: RegExp): void => {
      const d = structuredClone(doc);
      change(d);
      rejects(
        () => parseSimIntelPlatform(new TextEncoder().encode(JSON.stringify(d))),
        'ERR_SIM_ROOT_INVALID',
        message,
      );
    };
    bad((d) => {
      d['fingerprint'] = '00'.repeat(32);
    }, /fingerprint is not the SHA-256 of the root/);
    bad((d) => {
      d['extra'] = 1;
    }, /unknown field extra/);
    bad((d) => {
      delete d['pckKey'];
    }, /missing field pckKey/);
    bad((d) => {
      d['attestationKey'] = Buffer.from('not a key').toString('base64');
    }, /attestationKey is not a PKCS#8 private key/);
    rejects(() => parseSimIntelPlatform(new TextEncoder().encode('[')), 'ERR_SIM_ROOT_INVALID');
  });

  test('its QE makes a version 3 quote with certification data type 5 in the byte layout of Intel’s', () => {
    const q = parseDcapQuote(quote);
    assert.equal(q.kind, 'sgx');
    assert.equal(q.version, 3);
    assert.equal(q.header.attestationKeyType, 2);
    assert.equal(toHex(q.header.qeVendorId), '939a7233f79c4ca9940a0db3957f0607');
    assert.equal(q.pckChain.length, 3);
    const view = new DataView(quote.buffer, quote.byteOffset);
    // Header (48) + report body (384) + signature data length (4) + the signature data it announces.
    assert.equal(quote.byteLength, 48 + 384 + 4 + view.getUint32(432, true));
    // After the quote signature (64), the attestation key (64), the QE report (384) and its signature (64),
    // the QE auth data (2 + 32), then the certification data type: 5, the PCK chain as PEM.
    assert.equal(view.getUint16(436 + 64 + 64 + 384 + 64 + 2 + 32, true), 5);
    if (q.kind !== 'sgx') return;
    assert.deepEqual(q.body.reportData, REPORT_DATA);
    assert.deepEqual(q.body.mrEnclave, MRENCLAVE);
    assert.equal(toHex(q.body.mrSigner), SIM_ENCLAVE_MRSIGNER);
    assert.equal(SIM_ENCLAVE_MRSIGNER, sha256Hex(new TextEncoder().encode('donjon/sim/enclave-signer')));
    assert.equal(q.body.debug, false);
  });

  test('its quote verifies under a policy naming its root: the claims say simulated', () => {
    const claims = verify({ kind: 'sgx', quote, collateral }, trusting, { now: NOW }) as SgxClaims;
    assert.equal(claims.kind, 'sgx');
    assert.equal(claims.simulated, true);
    assert.equal(claims.rootFingerprint, platform.fingerprint);
    assert.equal(claims.measurement, toHex(MRENCLAVE));
    assert.equal(claims.tcbStatus, 'UpToDate');
    assert.equal(claims.collateralChecked, true);
  });

  test('the same evidence is refused under the default roots or another simulated root', () => {
    rejects(
      () => verify({ kind: 'sgx', quote, collateral }, {}, { now: NOW }),
      'ERR_SIMULATED_ROOT_NOT_TRUSTED',
      /simulated Intel root/,
    );
    const other = createSimIntelPlatform({ now: NOW });
    rejects(
      () =>
        verify(
          { kind: 'sgx', quote, collateral },
          { trustSimulatedRoots: [other.fingerprint] },
          { now: NOW },
        ),
      'ERR_SIMULATED_ROOT_NOT_TRUSTED',
    );
    // Collateral of another simulated platform does not vouch for this one's quote either.
    rejects(
      () =>
        verify(
          { kind: 'sgx', quote, collateral: simSgxCollateral(other, NOW) },
          { trustSimulatedRoots: [platform.fingerprint, other.fingerprint] },
          { now: NOW },
        ),
      'ERR_COLLATERAL_INVALID',
    );
  });

  test(`its collateral is valid for ${SIM_COLLATERAL_DAYS} days from the time it is made, not after`, () => {
    const at = (ms: number) => ({ now: new Date(NOW.getTime() + ms) });
    verify({ kind: 'sgx', quote, collateral }, trusting, at(SIM_COLLATERAL_DAYS * DAY - 1000));
    rejects(
      () => verify({ kind: 'sgx', quote, collateral }, trusting, at(SIM_COLLATERAL_DAYS * DAY + 1000)),
      'ERR_COLLATERAL_EXPIRED',
    );
    rejects(
      () => verify({ kind: 'sgx', quote, collateral }, trusting, at(-1000)),
      'ERR_COLLATERAL_EXPIRED',
      /issued at/,
    );
  });

  test('a PCK its own CRL revokes is refused', () => {
    clearCrlCache();
    const revoked = createSimIntelPlatform({ now: NOW, revokePck: true });
    rejects(
      () =>
        verify(
          {
            kind: 'sgx',
            quote: makeSimSgxQuote(revoked, { reportData: REPORT_DATA, mrEnclave: MRENCLAVE }),
            collateral: simSgxCollateral(revoked, NOW),
          },
          { trustSimulatedRoots: [revoked.fingerprint] },
          { now: NOW },
        ),
      'ERR_REVOKED',
    );
  });

  test('a flipped byte anywhere in the signed quote is refused', () => {
    // The signed part (header and body), the signatures, the attestation key and the QE report; the PEM of
    // the certification data is checked through the chain it must parse to.
    const signedEnd = 48 + 384 + 4 + 64 + 64 + 384 + 64;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: signedEnd - 1 }), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const bad = quote.slice();
        bad[at]! ^= x;
        assert.throws(
          () => verify({ kind: 'sgx', quote: bad, collateral }, trusting, { now: NOW }),
          AttestationError,
        );
      }),
      { numRuns: 150 },
    );
  });

  test('a flipped byte in a signed piece of collateral is refused', () => {
    const fields = ['tcbInfo', 'qeIdentity', 'tcbInfoSignature', 'qeIdentitySignature', 'pckCrl'] as const;
    fc.assert(
      fc.property(fc.constantFrom(...fields), fc.nat(), fc.integer({ min: 1, max: 255 }), (field, pos, x) => {
        clearCrlCache();
        const value = collateral[field];
        const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : Uint8Array.from(value);
        const bad = bytes.slice();
        bad[pos % bad.byteLength]! ^= x;
        const changed: DcapCollateral = {
          ...collateral,
          [field]: typeof value === 'string' ? new TextDecoder().decode(bad) : bad,
        };
        assert.throws(
          () => verify({ kind: 'sgx', quote, collateral: changed }, trusting, { now: NOW }),
          AttestationError,
        );
      }),
      { numRuns: 150 },
    );
  });
});
