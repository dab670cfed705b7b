import assert from 'node:assert/strict';
import {
  constants,
  generateKeyPair,
  generateKeyPairSync,
  type KeyObject,
  sign,
  X509Certificate,
} from 'node:crypto';
import { readdirSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { sha256Hex } from '../../src/attestation/bytes.ts';
import { AttestationError, type AttestationErrorCode } from '../../src/attestation/errors.ts';
import { basicConstraintsCa, PSS_SHA384 } from '../../src/attestation/sim/cert.ts';
import {
  checkCriticalExtensions,
  checkSignedBy,
  checkValidity,
  isCa,
  nameAttribute,
  OID,
  parseCertificate,
  verifyIssuedBy,
} from '../../src/attestation/x509.ts';
import { distinguishedName } from '../../src/lib/certificate.ts';
import {
  bitString,
  boolean,
  explicit,
  integer,
  nullValue,
  octetString,
  oid,
  sequence,
  time,
} from '../../src/lib/der.ts';
import { ecCert, ecKey, intelName, makePki } from './dcap/forge.ts';
import { certDers, EVIDENCE, NEEDS_EVIDENCE } from './evidence.ts';

const generate = promisify(generateKeyPair);
let caKey: { publicKey: KeyObject; privateKey: KeyObject };
let smallKey: { publicKey: KeyObject; privateKey: KeyObject };

before(async () => {
  [caKey, smallKey] = await Promise.all([
    generate('rsa', { modulusLength: 4096 }),
    generate('rsa', { modulusLength: 2048 }),
  ]);
});

function rejects(fn: () => unknown, code: AttestationErrorCode): void {
  assert.throws(fn, (e: unknown) => e instanceof AttestationError && e.code === code);
}

const CA_NAME = distinguishedName([[OID.commonName, 'Test CA']]);
const LEAF_NAME = distinguishedName([[OID.commonName, 'Test leaf']]);

function pss(hash: string, salt: number): Uint8Array {
  return sequence(
    oid(OID.rsassaPss),
    sequence(
      explicit(0, sequence(oid(hash), nullValue())),
      explicit(1, sequence(oid(OID.mgf1), sequence(oid(hash), nullValue()))),
      explicit(2, integer(salt)),
    ),
  );
}

interface Build {
  subject?: Uint8Array;
  issuer?: Uint8Array;
  key?: KeyObject;
  signer?: KeyObject;
  alg?: Uint8Array;
  outerAlg?: Uint8Array;
  saltLength?: number;
  extensions?: Uint8Array[];
  version?: boolean;
  notBefore?: Date;
  notAfter?: Date;
}

/** A certificate built field by field, so each test can break exactly one thing. */
function build(o: Build = {}): Uint8Array {
  const key = o.key ?? caKey.publicKey;
  const alg = o.alg ?? PSS_SHA384;
  const exts = o.extensions ?? [
    sequence(oid(OID.basicConstraints), boolean(true), octetString(sequence(boolean(true)))),
  ];
  const tbs = sequence(
    ...(o.version === false ? [] : [explicit(0, integer(2))]),
    integer(5),
    alg,
    o.issuer ?? CA_NAME,
    sequence(
      time(o.notBefore ?? new Date('2025-01-01T00:00:00Z')),
      time(o.notAfter ?? new Date('2030-01-01T00:00:00Z')),
    ),
    o.subject ?? CA_NAME,
    new Uint8Array(key.export({ type: 'spki', format: 'der' })),
    ...(exts.length === 0 ? [] : [explicit(3, sequence(...exts))]),
  );
  const signature = sign('sha384', tbs, {
    key: o.signer ?? caKey.privateKey,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: o.saltLength ?? 48,
  });
  return sequence(tbs, o.outerAlg ?? alg, bitString(new Uint8Array(signature)));
}

describe('parseCertificate() on AMD certificates', () => {
  test('parseCertificate() reads every certificate in the evidence and agrees with node:crypto', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const dirs = ['roots', 'virtee-sev', 'go-sev-guest', 'trustee', 'routex-client-lua', 'enarx-steward'];
    let count = 0;
    for (const dir of dirs) {
      for (const name of readdirSync(fileURLToPath(new URL(dir, EVIDENCE)))) {
        // CRLs share the .der suffix; everything else with these names holds certificates.
        if (!/(\.pem|\.der|\.testcer|^cert_chain_.*)$/.test(name) || name.includes('.crl')) continue;
        for (const der of certDers(`${dir}/${name}`)) {
          const cert = parseCertificate(der);
          const node = new X509Certificate(der);
          assert.equal(cert.fingerprint, node.fingerprint256.replaceAll(':', '').toLowerCase());
          assert.equal(cert.notBefore.getTime(), new Date(node.validFrom).getTime());
          assert.equal(cert.notAfter.getTime(), new Date(node.validTo).getTime());
          assert.equal(cert.serial, BigInt(`0x${node.serialNumber}`));
          assert.equal(nameAttribute(cert.subject, OID.commonName), /CN=([^\n]+)/.exec(node.subject)?.[1]);
          count++;
        }
      }
    }
    assert.ok(count >= 40, `read ${count} certificates`);
  });

  test('parseCertificate() accepts the serial number 0 of KDS VCEKs', { skip: NEEDS_EVIDENCE }, () => {
    assert.equal(parseCertificate(certDers('routex-client-lua/vcek-turin.pem')[0]!).serial, 0n);
  });

  test('verifyIssuedBy() accepts the ARK trailer field written out and the VCEK one left default', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const [ask, ark] = certDers('roots/AMD_KDS_vcek_cert_chain_Turin.pem').map((d) => parseCertificate(d));
    const vcek = parseCertificate(certDers('routex-client-lua/vcek-turin.pem')[0]!);
    verifyIssuedBy(ark!, ark!, 'ARK');
    verifyIssuedBy(ask!, ark!, 'ASK');
    verifyIssuedBy(vcek, ask!, 'VCEK');
    assert.ok(isCa(ark!) && isCa(ask!) && !isCa(vcek));
  });

  test('parseCertificate() on mutated AMD certificates throws only AttestationError', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const base = certDers('routex-client-lua/vcek-turin.pem')[0]!;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.byteLength - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.nat(base.byteLength),
        (edits, cut) => {
          const b = base.slice(0, Math.max(cut, base.byteLength - 8));
          for (const [at, v] of edits) if (at < b.byteLength) b[at] = v;
          try {
            parseCertificate(b);
          } catch (e) {
            if (!(e instanceof AttestationError)) throw e;
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('parseCertificate() strictness', () => {
  test('parseCertificate() reads a certificate built here', () => {
    const der = build();
    const cert = parseCertificate(der);
    assert.equal(cert.serial, 5n);
    assert.equal(nameAttribute(cert.subject, OID.commonName), 'Test CA');
    assert.equal(cert.fingerprint, sha256Hex(der));
    assert.deepEqual(cert.der, der);
    assert.notEqual(cert.der, der, 'the parser keeps its own copy');
  });

  test('parseCertificate() rejects trailing and missing bytes', () => {
    const der = build();
    rejects(() => parseCertificate(new Uint8Array([...der, 0])), 'ERR_EVIDENCE_MALFORMED');
    rejects(() => parseCertificate(der.subarray(0, der.byteLength - 1)), 'ERR_EVIDENCE_MALFORMED');
  });

  test('parseCertificate() rejects a v1 certificate', () => {
    rejects(() => parseCertificate(build({ version: false, extensions: [] })), 'ERR_EVIDENCE_MALFORMED');
  });

  test('parseCertificate() rejects an explicit default criticality and duplicate extensions', () => {
    const explicitFalse = sequence(oid(OID.keyUsage), boolean(false), octetString(Uint8Array.of(3, 2, 1, 6)));
    rejects(() => parseCertificate(build({ extensions: [explicitFalse] })), 'ERR_EVIDENCE_MALFORMED');
    const bc = sequence(oid(OID.basicConstraints), boolean(true), octetString(sequence(boolean(true))));
    rejects(() => parseCertificate(build({ extensions: [bc, bc] })), 'ERR_EVIDENCE_MALFORMED');
  });

  test('parseCertificate() rejects different signature algorithms inside and outside the TBS', () => {
    rejects(() => parseCertificate(build({ outerAlg: pss(OID.sha384, 32) })), 'ERR_EVIDENCE_MALFORMED');
  });

  test('parseCertificate() on random bytes throws only AttestationError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          parseCertificate(bytes);
        } catch (e) {
          if (!(e instanceof AttestationError)) throw e;
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('verifyIssuedBy()', () => {
  test('verifyIssuedBy() accepts AMD-profile signatures by an RSA-4096 CA', () => {
    const ca = parseCertificate(build());
    verifyIssuedBy(ca, ca, 'CA');
    const leaf = parseCertificate(build({ subject: LEAF_NAME, key: smallKey.publicKey, extensions: [] }));
    verifyIssuedBy(leaf, ca, 'leaf');
  });

  test('verifyIssuedBy() rejects a salt other than 48 and a hash other than SHA-384', () => {
    const ca = parseCertificate(build());
    const salt32 = parseCertificate(build({ subject: LEAF_NAME, alg: pss(OID.sha384, 32), saltLength: 32 }));
    rejects(() => verifyIssuedBy(salt32, ca, 'leaf'), 'ERR_CHAIN_INVALID');
    const sha256 = parseCertificate(build({ subject: LEAF_NAME, alg: pss('2.16.840.1.101.3.4.2.1', 48) }));
    rejects(() => verifyIssuedBy(sha256, ca, 'leaf'), 'ERR_CHAIN_INVALID');
    const pkcs1 = parseCertificate(
      build({ subject: LEAF_NAME, alg: sequence(oid('1.2.840.113549.1.1.12'), nullValue()) }),
    );
    rejects(() => verifyIssuedBy(pkcs1, ca, 'leaf'), 'ERR_CHAIN_INVALID');
  });

  test('verifyIssuedBy() rejects a signature under another key', () => {
    const ca = parseCertificate(build());
    const forged = parseCertificate(build({ subject: LEAF_NAME, signer: smallKey.privateKey }));
    rejects(() => verifyIssuedBy(forged, ca, 'leaf'), 'ERR_CHAIN_INVALID');
  });

  test('verifyIssuedBy() rejects an issuer that is not a CA or not RSA-4096', () => {
    const notCa = parseCertificate(build({ extensions: [] }));
    const leaf = parseCertificate(build({ subject: LEAF_NAME }));
    rejects(() => verifyIssuedBy(leaf, notCa, 'leaf'), 'ERR_CHAIN_INVALID');
    const small = parseCertificate(
      build({
        key: smallKey.publicKey,
        signer: smallKey.privateKey,
        extensions: [
          sequence(oid(OID.basicConstraints), boolean(true), octetString(basicConstraintsCa().value)),
        ],
      }),
    );
    const underSmall = parseCertificate(build({ subject: LEAF_NAME, signer: smallKey.privateKey }));
    rejects(() => verifyIssuedBy(underSmall, small, 'leaf'), 'ERR_CHAIN_INVALID');
  });

  test('verifyIssuedBy() rejects an issuer name that does not match', () => {
    const ca = parseCertificate(build());
    const other = parseCertificate(build({ subject: LEAF_NAME, issuer: LEAF_NAME }));
    rejects(() => verifyIssuedBy(other, ca, 'leaf'), 'ERR_CHAIN_INVALID');
  });

  test('checkCriticalExtensions() rejects an unknown critical extension', () => {
    const unknown = sequence(oid('1.2.3.4'), boolean(true), octetString(nullValue()));
    const cert = parseCertificate(build({ extensions: [unknown] }));
    rejects(() => checkCriticalExtensions(cert, 'leaf'), 'ERR_CHAIN_INVALID');
    checkCriticalExtensions(parseCertificate(build()), 'CA');
  });

  test('checkValidity() includes both bounds and rejects outside them', () => {
    const cert = parseCertificate(build());
    checkValidity(cert, cert.notBefore, 'CA');
    checkValidity(cert, cert.notAfter, 'CA');
    rejects(() => checkValidity(cert, new Date(cert.notAfter.getTime() + 1), 'CA'), 'ERR_CERT_EXPIRED');
    rejects(() => checkValidity(cert, new Date(cert.notBefore.getTime() - 1), 'CA'), 'ERR_CERT_EXPIRED');
  });
});

describe('verifyIssuedBy() with the Intel ECDSA profile', () => {
  test("verifyIssuedBy() accepts Intel's PCK CAs and TCB signing certificates under the SGX Root CA", {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const root = parseCertificate(certDers('roots/Intel_SGX_Root_CA.pem')[0]!);
    verifyIssuedBy(root, root, 'root', 'intel-ecdsa');
    for (const file of [
      'Intel_SGX_PCK_Platform_CA.pem',
      'Intel_SGX_PCK_Processor_CA.pem',
      'Intel_SGX_TCB_Signing_chain_2018-2025.pem',
      'Intel_SGX_TCB_Signing_chain_2025-2032.pem',
    ]) {
      verifyIssuedBy(parseCertificate(certDers(`roots/${file}`)[0]!), root, file, 'intel-ecdsa');
    }
    // Intel's certificates under AMD's profile, and AMD's under Intel's, fail instead of passing unchecked.
    const ca = parseCertificate(certDers('roots/Intel_SGX_PCK_Platform_CA.pem')[0]!);
    rejects(() => checkSignedBy(ca, root, 'PCK CA', 'amd-rsa-pss'), 'ERR_CHAIN_INVALID');
    const ark = parseCertificate(certDers('roots/AMD_ARK-Milan.pem')[0]!);
    rejects(() => checkSignedBy(ark, ark, 'ARK', 'intel-ecdsa'), 'ERR_CHAIN_INVALID');
  });

  const pki = makePki();
  const root = parseCertificate(pki.root.der);
  const leaf = (o: Partial<Parameters<typeof ecCert>[0]> = {}) =>
    parseCertificate(
      ecCert({
        serial: 5n,
        issuer: pki.rootName,
        subject: intelName('leaf'),
        notBefore: new Date('2025-01-01T00:00:00Z'),
        notAfter: new Date('2026-01-01T00:00:00Z'),
        spki: ecKey().spki,
        extensions: [{ oid: OID.subjectKeyIdentifier, value: octetString(Uint8Array.of(1)) }],
        issuerKey: pki.root.key.privateKey,
        ...o,
      }),
    );

  test('verifyIssuedBy() accepts a factory ECDSA chain and refuses another signer', () => {
    verifyIssuedBy(leaf(), root, 'leaf', 'intel-ecdsa');
    rejects(
      () => verifyIssuedBy(leaf({ issuerKey: ecKey().privateKey }), root, 'leaf', 'intel-ecdsa'),
      'ERR_CHAIN_INVALID',
    );
  });

  test('checkSignedBy() refuses other ECDSA algorithm identifiers, curves and signature encodings', () => {
    const good = leaf();
    // ecdsa-with-SHA256 with an explicit NULL: a second encoding of the same algorithm.
    const withNull = sequence(oid(OID.ecdsaWithSha256), nullValue());
    assert.throws(
      () => checkSignedBy({ ...good, signatureAlgorithm: withNull }, root, 'leaf', 'intel-ecdsa'),
      (e: unknown) => e instanceof AttestationError && /not signed with ECDSA SHA-256/.test(e.message),
    );
    const sha384 = sequence(oid('1.2.840.10045.4.3.3'));
    rejects(
      () => checkSignedBy({ ...good, signatureAlgorithm: sha384 }, root, 'leaf', 'intel-ecdsa'),
      'ERR_CHAIN_INVALID',
    );
    // r with a superfluous leading zero: same value, non-canonical DER.
    const sig = good.signatureValue;
    const r = sig.subarray(2, 4 + sig[3]!);
    const padded = sequence(
      Uint8Array.of(0x02, r[1]! + 1, 0x00, ...r.subarray(2)),
      sig.subarray(4 + sig[3]!),
    );
    assert.throws(
      () => checkSignedBy({ ...good, signatureValue: padded }, root, 'leaf', 'intel-ecdsa'),
      (e: unknown) => e instanceof AttestationError && /canonical DER/.test(e.message),
    );
    rejects(
      () => checkSignedBy({ ...good, signatureValue: Uint8Array.of(1, 2, 3) }, root, 'leaf', 'intel-ecdsa'),
      'ERR_CHAIN_INVALID',
    );
    // A P-384 issuer key under the P-256 profile.
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const bigSpki = new Uint8Array(p384.publicKey.export({ type: 'spki', format: 'der' }));
    const bigRoot = parseCertificate(
      ecCert({
        serial: 7n,
        issuer: intelName('big'),
        subject: intelName('big'),
        notBefore: new Date('2025-01-01T00:00:00Z'),
        notAfter: new Date('2026-01-01T00:00:00Z'),
        spki: bigSpki,
        extensions: [basicConstraintsCa()],
        issuerKey: p384.privateKey,
      }),
    );
    assert.throws(
      () => checkSignedBy(bigRoot, bigRoot, 'big', 'intel-ecdsa'),
      (e: unknown) => e instanceof AttestationError && /not ECDSA P-256/.test(e.message),
    );
  });
});
