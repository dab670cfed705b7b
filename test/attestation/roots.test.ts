import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { sha256Hex } from '../../src/attestation/bytes.ts';
import {
  amdCertificates,
  amdIntermediates,
  defaultRoots,
  intelRootCertificate,
} from '../../src/attestation/roots.ts';
import {
  isCa,
  isSelfIssued,
  nameAttribute,
  OID,
  parseCertificate,
  verifyIssuedBy,
} from '../../src/attestation/x509.ts';
import { readPem } from '../../src/lib/pem.ts';
import { certDers, EVIDENCE, NEEDS_EVIDENCE } from './evidence.ts';

const FILES = { ark: 'AMD_ARK-', ask: 'AMD_ASK-SEV-', asvk: 'AMD_ASVK-SEV-VLEK-' } as const;

describe('built-in AMD roots', () => {
  test('amdCertificates holds the ARK, ASK and ASVK of Milan, Genoa and Turin with their fingerprints', () => {
    assert.equal(amdCertificates.length, 9);
    for (const c of amdCertificates) {
      const ders = pemCertificates(c.pem);
      assert.equal(ders.length, 1);
      assert.equal(sha256Hex(ders[0]!), c.fingerprint, `${c.product} ${c.role}`);
    }
  });

  test('each built-in ASK and ASVK is signed by the ARK of its product, and each ARK by itself', () => {
    for (const product of ['Milan', 'Genoa', 'Turin'] as const) {
      const get = (role: string) =>
        parseCertificate(
          pemCertificates(amdCertificates.find((c) => c.product === product && c.role === role)!.pem)[0]!,
        );
      const ark = get('ark');
      assert.equal(nameAttribute(ark.subject, OID.commonName), `ARK-${product}`);
      assert.ok(isSelfIssued(ark) && isCa(ark));
      verifyIssuedBy(ark, ark, 'ARK');
      verifyIssuedBy(get('ask'), ark, 'ASK');
      verifyIssuedBy(get('asvk'), ark, 'ASVK');
      assert.equal(nameAttribute(get('asvk').subject, OID.commonName), `SEV-VLEK-${product}`);
    }
  });

  test('defaultRoots pins the three ARKs and no simulated root', () => {
    assert.equal(defaultRoots.amdArks.length, 3);
    assert.deepEqual(
      defaultRoots.amdArks.map((d) => nameAttribute(parseCertificate(d).subject, OID.commonName)),
      ['ARK-Milan', 'ARK-Genoa', 'ARK-Turin'],
    );
    assert.deepEqual(defaultRoots.simulatedArkFingerprints, []);
    assert.ok(Object.isFrozen(defaultRoots) && Object.isFrozen(defaultRoots.amdArks));
    assert.equal(amdIntermediates.length, 6);
  });

  test('the built-in certificates are byte for byte the ones in shared/evidence/roots', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    for (const c of amdCertificates) {
      const [der] = certDers(`roots/${FILES[c.role]}${c.product}.pem`);
      assert.deepEqual(pemCertificates(c.pem)[0], der, `${c.product} ${c.role}`);
    }
  });

  test('the built-in fingerprints are the ones FINGERPRINTS.md lists', { skip: NEEDS_EVIDENCE }, () => {
    const table = readFileSync(new URL('roots/FINGERPRINTS.md', EVIDENCE), 'utf8');
    for (const c of amdCertificates) {
      const row = table.split('\n').find((l) => l.startsWith(`| ${FILES[c.role]}${c.product} |`));
      assert.ok(row, `${c.product} ${c.role} row`);
      assert.ok(row.includes(`| ${c.fingerprint} |`), `${c.product} ${c.role} fingerprint`);
    }
  });

  test('the KDS cert_chain files are the built-in intermediates and ARKs', { skip: NEEDS_EVIDENCE }, () => {
    for (const product of ['Milan', 'Genoa', 'Turin']) {
      for (const [kind, role] of [
        ['vcek', 'ask'],
        ['vlek', 'asvk'],
      ] as const) {
        const [ask, ark] = certDers(`roots/AMD_KDS_${kind}_cert_chain_${product}.pem`);
        const builtIn = (r: string) =>
          pemCertificates(amdCertificates.find((c) => c.product === product && c.role === r)!.pem)[0];
        assert.deepEqual(ask, builtIn(role));
        assert.deepEqual(ark, builtIn('ark'));
      }
    }
  });
});

describe('built-in Intel root', () => {
  test('intelRootCertificate is the self-signed Intel SGX Root CA with its fingerprint, pinned by default', () => {
    const [der] = pemCertificates(intelRootCertificate.pem);
    assert.equal(sha256Hex(der!), intelRootCertificate.fingerprint);
    const root = parseCertificate(der!);
    assert.equal(nameAttribute(root.subject, OID.commonName), 'Intel SGX Root CA');
    assert.ok(isSelfIssued(root) && isCa(root));
    verifyIssuedBy(root, root, 'Intel root', 'intel-ecdsa');
    assert.deepEqual(defaultRoots.intelRoots, [der]);
    assert.ok(Object.isFrozen(defaultRoots.intelRoots));
  });

  test('the built-in Intel root is byte for byte the one in shared/evidence and FINGERPRINTS.md', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    assert.deepEqual(
      pemCertificates(intelRootCertificate.pem)[0],
      certDers('roots/Intel_SGX_Root_CA.pem')[0],
    );
    const table = readFileSync(new URL('roots/FINGERPRINTS.md', EVIDENCE), 'utf8');
    const row = table.split('\n').find((l) => l.startsWith('| Intel_SGX_Root_CA |'));
    assert.ok(row?.includes(`| ${intelRootCertificate.fingerprint} |`));
  });
});

/** DER of every CERTIFICATE block of a PEM text. */
function pemCertificates(text: string): Uint8Array[] {
  return readPem(text, { label: 'CERTIFICATE' }).map((b) => b.der);
}
