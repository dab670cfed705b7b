import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  CollateralError,
  certificateInfo,
  crlInfo,
  pemCertificates,
} from '../../../src/host/collateral/index.ts';
import { NEEDS_EVIDENCE } from '../../attestation/evidence.ts';
import { file, text } from './fake-services.ts';

test('certificateInfo() tells a VCEK from its ASK and ARK', { skip: NEEDS_EVIDENCE }, () => {
  const [vcek, ask, ark] = pemCertificates(text('routex-client-lua/vcek-chain-turin.pem')).map(
    certificateInfo,
  );
  assert.equal(vcek!.snpEndorsementKey, true);
  assert.equal(vcek!.subjectCn, 'SEV-VCEK');
  assert.equal(vcek!.issuerCn, 'SEV-Turin');
  assert.equal(ask!.snpEndorsementKey, false);
  assert.equal(ark!.subjectCn, 'ARK-Turin');
  assert.equal(ark!.issuerCn, 'ARK-Turin');
});

test('certificateInfo() reads the validity of a KDS VCEK (7 years, as PROVENANCE.md lists)', {
  skip: NEEDS_EVIDENCE,
}, () => {
  const info = certificateInfo(file('go-sev-guest/vcek.testcer'));
  assert.equal(info.notBefore.toISOString(), '2022-09-24T00:55:28.000Z');
  assert.equal(info.notAfter.toISOString(), '2029-09-24T00:55:28.000Z');
  assert.equal(info.fmspc, undefined);
});

test('certificateInfo() reads the FMSPC of an Intel PCK certificate', { skip: NEEDS_EVIDENCE }, () => {
  // The PCK certificate is the first PEM block of the quote's certification data.
  const quote = Buffer.from(file('dcap-qvl/sgx_quote')).toString('latin1');
  const pck = pemCertificates(quote)[0]!;
  const info = certificateInfo(pck);
  assert.equal(info.fmspc, '00a067110000');
  assert.equal(info.subjectCn, 'Intel SGX PCK Certificate');
  assert.equal(info.issuerCn, 'Intel SGX PCK Processor CA');
});

test('crlInfo() reads issuer and update times of Intel and AMD CRLs', { skip: NEEDS_EVIDENCE }, () => {
  const pck = crlInfo(file('go-tdx-guest/pckcrl'));
  assert.equal(pck.issuerCn, 'Intel SGX PCK Platform CA');
  assert.equal(pck.thisUpdate.toISOString(), '2023-06-08T07:27:52.000Z');
  assert.equal(pck.nextUpdate?.toISOString(), '2023-07-08T07:27:52.000Z');
  assert.equal(crlInfo(file('go-tdx-guest/rootcrl.der')).issuerCn, 'Intel SGX Root CA');
  // PROVENANCE.md: Milan CRL 2022-05-09 .. 2023-05-09.
  const milan = crlInfo(file('enarx-steward/milan.signed.crl.crl1.der'));
  assert.equal(milan.issuerCn, 'ARK-Milan');
  assert.equal(milan.nextUpdate?.toISOString().slice(0, 10), '2023-05-09');
});

test('crlInfo() rejects a certificate and certificateInfo() rejects a CRL', { skip: NEEDS_EVIDENCE }, () => {
  assert.throws(() => crlInfo(file('go-sev-guest/vcek.testcer')), { code: 'ERR_COLLATERAL_MALFORMED' });
  assert.throws(() => certificateInfo(file('go-tdx-guest/pckcrl')), { code: 'ERR_COLLATERAL_MALFORMED' });
});

test('certificateInfo() and crlInfo() reject a truncated DER', { skip: NEEDS_EVIDENCE }, () => {
  const crl = file('go-tdx-guest/rootcrl.der');
  assert.throws(() => crlInfo(crl.subarray(0, crl.byteLength - 1)), { code: 'ERR_COLLATERAL_MALFORMED' });
  const cert = file('go-sev-guest/vcek.testcer');
  assert.throws(() => certificateInfo(cert.subarray(0, 100)), { code: 'ERR_COLLATERAL_MALFORMED' });
});

test('certificateInfo() and crlInfo() let only CollateralError escape on mutated input', {
  skip: NEEDS_EVIDENCE,
}, () => {
  const seeds = [file('go-tdx-guest/rootcrl.der'), file('go-sev-guest/vcek.testcer')];
  const mutated = fc
    .tuple(fc.constantFrom(...seeds), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat())
    .map(([seed, at, byte, cut]) => {
      const b = seed.slice(0, seed.byteLength - (cut % 4));
      b[at % b.byteLength] = byte;
      return b;
    });
  fc.assert(
    fc.property(fc.oneof(mutated, fc.uint8Array({ maxLength: 64 })), (bytes) => {
      for (const f of [certificateInfo, crlInfo]) {
        try {
          f(bytes);
        } catch (e) {
          assert.ok(e instanceof CollateralError, String(e));
        }
      }
    }),
    { numRuns: 400 },
  );
});
