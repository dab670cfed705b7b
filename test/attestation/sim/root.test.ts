import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { sha256Hex, toHex } from '../../../src/attestation/bytes.ts';
import { AttestationError } from '../../../src/attestation/errors.ts';
import {
  createSimRoot,
  parseSimRoot,
  SIM_ORGANIZATION,
  type SimRootMaterial,
  serializeSimRoot,
} from '../../../src/attestation/sim/root.ts';
import { readVekExtensions } from '../../../src/attestation/snp/vek.ts';
import {
  isCa,
  nameAttribute,
  OID,
  parseCertificate,
  publicKeyOf,
  verifyIssuedBy,
} from '../../../src/attestation/x509.ts';

const NOW = new Date('2026-03-01T12:00:00Z');
let root: SimRootMaterial;
let createMs = 0;

before(async () => {
  const t = performance.now();
  root = await createSimRoot({ now: NOW });
  createMs = performance.now() - t;
});

function json(m: SimRootMaterial): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(serializeSimRoot(m)));
}

function encode(doc: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(doc));
}

function rejectsInvalid(bytes: Uint8Array): void {
  assert.throws(
    () => parseSimRoot(bytes),
    (e: unknown) => e instanceof AttestationError && e.code === 'ERR_SIM_ROOT_INVALID',
  );
}

describe('createSimRoot()', () => {
  test('createSimRoot() makes an RSA-4096 ARK and ASK in the shape of AMD', (t) => {
    t.diagnostic(`createSimRoot(): ${createMs.toFixed(0)} ms`);
    const ark = parseCertificate(root.arkDer);
    const ask = parseCertificate(root.askDer);
    for (const [cert, cn] of [
      [ark, 'ARK-Simulated'],
      [ask, 'SEV-Simulated'],
    ] as const) {
      const key = publicKeyOf(cert);
      assert.equal(key.asymmetricKeyType, 'rsa');
      assert.equal(key.asymmetricKeyDetails?.modulusLength, 4096);
      assert.equal(nameAttribute(cert.subject, OID.commonName), cn);
      assert.equal(nameAttribute(cert.subject, OID.organization), SIM_ORGANIZATION);
      assert.ok(SIM_ORGANIZATION.includes('SIMULATED'));
      assert.ok(isCa(cert));
      assert.ok(cert.notBefore <= NOW);
      assert.ok(cert.notAfter.getUTCFullYear() - NOW.getUTCFullYear() >= 24);
    }
    // RSA-PSS SHA-384 / salt 48 is all verifyIssuedBy accepts.
    verifyIssuedBy(ark, ark, 'ARK');
    verifyIssuedBy(ask, ark, 'ASK');
  });

  test('createSimRoot() makes a P-384 VCEK with the AMD extensions', () => {
    const vcek = parseCertificate(root.vcekDer);
    const key = publicKeyOf(vcek);
    assert.equal(key.asymmetricKeyType, 'ec');
    assert.equal(key.asymmetricKeyDetails?.namedCurve, 'secp384r1');
    assert.equal(vcek.serial, 0n);
    assert.equal(nameAttribute(vcek.subject, OID.commonName), 'SEV-VCEK');
    verifyIssuedBy(vcek, parseCertificate(root.askDer), 'VCEK');
    const info = readVekExtensions(vcek);
    assert.equal(info.kind, 'vcek');
    assert.equal(info.productName, 'Simulated');
    assert.equal(info.structVersion, 0);
    assert.deepEqual(info.hwId, root.chipId);
    assert.deepEqual(info.tcb, {
      bootloader: root.tcb.bootloader,
      tee: root.tcb.tee,
      snp: root.tcb.snp,
      microcode: root.tcb.microcode,
    });
    assert.equal(vcek.notAfter.getUTCFullYear() - vcek.notBefore.getUTCFullYear(), 7);
    assert.equal(root.chipId.byteLength, 64);
    assert.equal(root.tcb.fmc, undefined);
  });

  test('createSimRoot() fingerprints the ARK DER', () => {
    assert.equal(root.fingerprint, sha256Hex(root.arkDer));
    assert.match(root.fingerprint, /^[0-9a-f]{64}$/);
  });

  test('createSimRoot() certificates are read and verified by node:crypto too', () => {
    const ark = new X509Certificate(root.arkDer);
    const ask = new X509Certificate(root.askDer);
    const vcek = new X509Certificate(root.vcekDer);
    assert.ok(ark.verify(ark.publicKey));
    assert.ok(ask.verify(ark.publicKey));
    assert.ok(vcek.verify(ask.publicKey));
    assert.ok(vcek.checkIssued(ask));
  });

  test('createSimRoot() rejects an invalid tcb or now before generating keys', async () => {
    await assert.rejects(
      createSimRoot({ tcb: { bootloader: 256, tee: 0, snp: 0, microcode: 0 } }),
      RangeError,
    );
    await assert.rejects(createSimRoot({ now: new Date(Number.NaN) }), TypeError);
  });
});

describe('serializeSimRoot() and parseSimRoot()', () => {
  test('parseSimRoot() round-trips serializeSimRoot()', () => {
    assert.deepEqual(parseSimRoot(serializeSimRoot(root)), root);
  });

  test('parseSimRoot() rejects a fingerprint that is not the ARK', () => {
    rejectsInvalid(encode({ ...json(root), fingerprint: 'ab'.repeat(32) }));
  });

  test('parseSimRoot() rejects a chip id or TCB that is not the VCEK', () => {
    const other = root.chipId.slice();
    other[0] = other[0]! ^ 1;
    rejectsInvalid(encode({ ...json(root), chipId: toHex(other) }));
    rejectsInvalid(encode({ ...json(root), chipId: toHex(root.chipId).toUpperCase() }));
    rejectsInvalid(encode({ ...json(root), tcb: { ...(json(root).tcb as object), snp: root.tcb.snp + 1 } }));
  });

  test('parseSimRoot() rejects a private key that is not the VCEK key', () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({
      type: 'pkcs8',
      format: 'der',
    });
    rejectsInvalid(encode({ ...json(root), vcekPrivateKey: other.toString('base64') }));
  });

  test('parseSimRoot() rejects a swapped chain', () => {
    const doc = json(root);
    rejectsInvalid(encode({ ...doc, ark: doc.ask, ask: doc.ark }));
    rejectsInvalid(encode({ ...doc, vcek: doc.ask }));
  });

  test('parseSimRoot() rejects unknown, missing and mistyped fields', () => {
    const doc = json(root);
    rejectsInvalid(encode({ ...doc, extra: 1 }));
    const { chipId: _, ...missing } = doc;
    rejectsInvalid(encode(missing));
    rejectsInvalid(encode({ ...doc, format: 'donjon-sim-root/v0' }));
    rejectsInvalid(encode({ ...doc, ark: 'not base64!' }));
    rejectsInvalid(encode({ ...doc, tcb: { ...(doc.tcb as object), fmc: 1 } }));
    rejectsInvalid(encode([doc]));
    rejectsInvalid(new Uint8Array([0xff, 0xfe]));
  });

  test('parseSimRoot() refuses a private key in a non-canonical encoding that OpenSSL would still read', () => {
    const doc = JSON.parse(new TextDecoder().decode(serializeSimRoot(root))) as Record<string, unknown>;
    const der = Buffer.from(doc['vcekPrivateKey'] as string, 'base64');
    // ECPrivateKey ::= SEQUENCE { version INTEGER (1), ... }: the version byte follows `02 01`.
    const at = der.indexOf(Buffer.from([0x02, 0x01, 0x01, 0x04]));
    assert.ok(at > 0);
    der[at + 2] = 0x34;
    doc['vcekPrivateKey'] = der.toString('base64');
    rejectsInvalid(new TextEncoder().encode(JSON.stringify(doc)));
  });

  test('parseSimRoot() on random bytes throws only AttestationError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => rejectsInvalid(bytes)),
      { numRuns: 300 },
    );
  });

  test('parseSimRoot() on random JSON values throws only AttestationError', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => rejectsInvalid(encode(value))),
      { numRuns: 300 },
    );
  });

  test('parseSimRoot() on mutated serializations throws only AttestationError', () => {
    const text = new TextDecoder().decode(serializeSimRoot(root));
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: text.length - 1 }),
        fc.constantFrom('0', 'A', '"', '}', ' ', 'z', '+'),
        (at, ch) => {
          const mutated = text.slice(0, at) + ch + text.slice(at + 1);
          if (mutated === text) return;
          try {
            parseSimRoot(new TextEncoder().encode(mutated));
          } catch (e) {
            if (!(e instanceof AttestationError)) throw e;
            return;
          }
          // A change to insignificant whitespace still loads, and must load the same material.
          assert.deepEqual(parseSimRoot(new TextEncoder().encode(mutated)), root);
        },
      ),
      { numRuns: 300 },
    );
  });
});
