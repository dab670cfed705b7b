import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import { parseCertificate } from '../../src/attestation/x509.ts';
import {
  commonName,
  distinguishedName,
  makeCertificate,
  makeSelfSignedCertificate,
  randomSerial,
  SIGNATURE_ALGORITHMS,
  spkiOf,
} from '../../src/lib/certificate.ts';
import { sequence, tlv } from '../../src/lib/der.ts';

const notBefore = new Date('2026-01-01T00:00:00Z');
const notAfter = new Date('2027-01-01T00:00:00Z');
const p256 = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
const p384 = () => generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey;

test('makeSelfSignedCertificate() makes what OpenSSL reads as self-signed, with its name, times and SAN', () => {
  const key = p256();
  const names = sequence(
    tlv(0x82, new TextEncoder().encode('localhost')),
    tlv(0x87, Uint8Array.of(127, 0, 0, 1)),
  );
  const der = makeSelfSignedCertificate({
    privateKey: key,
    subject: 'Donjon test',
    notBefore,
    notAfter,
    extensions: [{ oid: '2.5.29.17', value: names }],
  });
  const x = new X509Certificate(der);
  assert.equal(x.subject, 'CN=Donjon test');
  assert.equal(x.issuer, 'CN=Donjon test');
  assert.equal(new Date(x.validFrom).getTime(), notBefore.getTime());
  assert.equal(new Date(x.validTo).getTime(), notAfter.getTime());
  assert.equal(x.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1');
  assert.ok(x.verify(x.publicKey), 'signed by its own key');
  assert.ok(x.checkIssued(x));
  const parsed = parseCertificate(der);
  assert.deepEqual(parsed.spki, spkiOf(key));
  assert.deepEqual(parsed.signatureAlgorithm, SIGNATURE_ALGORITHMS['ecdsa-sha256']);
  assert.equal(parsed.extensions.get('2.5.29.17')?.critical, false);
});

test('makeSelfSignedCertificate() picks ECDSA-SHA384 for a P-384 key and writes no extensions when given none', () => {
  const der = makeSelfSignedCertificate({
    privateKey: p384(),
    subject: commonName('k'),
    notBefore,
    notAfter,
  });
  const parsed = parseCertificate(der);
  assert.deepEqual(parsed.signatureAlgorithm, SIGNATURE_ALGORITHMS['ecdsa-sha384']);
  assert.equal(parsed.extensions.size, 0);
  assert.ok(new X509Certificate(der).verify(new X509Certificate(der).publicKey));
});

test('makeCertificate() signs for an issuer with RSA-PSS SHA-384 and writes critical extensions as critical', () => {
  const ca = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const leafKey = p384();
  const caName = distinguishedName([
    ['2.5.4.10', 'Donjon SIMULATED'],
    ['2.5.4.3', 'CA'],
  ]);
  const caDer = makeSelfSignedCertificate({
    privateKey: ca.privateKey,
    algorithm: 'rsa-pss-sha384',
    subject: caName,
    notBefore,
    notAfter,
    serial: 1n,
  });
  const basicConstraints = sequence(Uint8Array.of(0x01, 0x01, 0xff));
  const leafDer = makeCertificate({
    issuer: caName,
    subject: commonName('leaf'),
    spki: spkiOf(leafKey),
    signingKey: ca.privateKey,
    algorithm: 'rsa-pss-sha384',
    notBefore,
    notAfter,
    serial: 0n,
    extensions: [{ oid: '2.5.29.19', critical: true, value: basicConstraints }],
  });
  const caCert = new X509Certificate(caDer);
  const leaf = new X509Certificate(leafDer);
  assert.equal(leaf.issuer, 'O=Donjon SIMULATED\nCN=CA');
  assert.equal(leaf.serialNumber, '0');
  assert.ok(leaf.verify(caCert.publicKey));
  assert.ok(leaf.checkIssued(caCert));
  assert.equal(parseCertificate(leafDer).extensions.get('2.5.29.19')?.critical, true);
});

test('randomSerial() is positive and always 16 bytes long', () => {
  for (let i = 0; i < 200; i++) {
    const s = randomSerial();
    // A first byte in 0x01..0x7f: positive, and never shortened by a leading zero byte.
    assert.ok(s >= 2n ** 120n && s < 2n ** 127n, s.toString(16));
  }
});

test('makeCertificate() refuses a key that cannot sign with the algorithm, reversed dates and a negative serial', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const key = p256();
  assert.throws(
    () => makeSelfSignedCertificate({ privateKey: rsa, subject: 'x', notBefore, notAfter }),
    TypeError,
  );
  assert.throws(
    () =>
      makeSelfSignedCertificate({
        privateKey: key,
        subject: 'x',
        notBefore,
        notAfter,
        algorithm: 'rsa-pss-sha384',
      }),
    TypeError,
  );
  assert.throws(
    () =>
      makeSelfSignedCertificate({
        privateKey: rsa,
        subject: 'x',
        notBefore,
        notAfter,
        algorithm: 'ecdsa-sha256',
      }),
    TypeError,
  );
  assert.throws(
    () =>
      makeSelfSignedCertificate({ privateKey: key, subject: 'x', notBefore: notAfter, notAfter: notBefore }),
    RangeError,
  );
  assert.throws(
    () => makeSelfSignedCertificate({ privateKey: key, subject: 'x', notBefore, notAfter, serial: -1n }),
    RangeError,
  );
});
