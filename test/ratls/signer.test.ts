// Signer pinning: the signers a service binding names (report_data, the CMW decoder's strictness, the CDDL),
// signerDigest() over PEM and KeyObject, and the relying party's decisions under signerKeys.
import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { type SimRootMaterial, signSimReport } from '../../src/attestation/sim/index.ts';
import { loadOrCreateSimRoot } from '../../src/host/simroot.ts';
import { encode } from '../../src/protocol/cbor.ts';
import { decodeCmw, encodeCmw, MEDIA_TYPES } from '../../src/ratls/cmw.ts';
import {
  MAX_SIGNERS,
  makeServiceCertificate,
  RatlsError,
  reportDataFor,
  SERVICE_BINDING_DOMAIN,
  type ServiceBinding,
  SIGNERS_DOMAIN,
  signerDigest,
  spkiOf,
  verifyServiceCertificate,
} from '../../src/ratls/index.ts';
import { encryptPrivateKey, generateSigningKey, publicKeyPem } from '../../src/registry/index.ts';
import { testHome } from '../helpers.ts';
import { parseCddl, validate } from '../protocol/support/cddl.ts';

const spec = parseCddl(readFileSync(new URL('../../docs/protocol.cddl', import.meta.url), 'utf8'));
const fill = (n: number): Uint8Array => new Uint8Array(32).fill(n);
const sha = (s: string): Uint8Array => new Uint8Array(createHash('sha256').update(s).digest());
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const code = (c: string) => (e: unknown) => (e as { code?: string }).code === c;

/** A P-256 SPKI (DER header, then the point), fixed so that the vectors below stay fixed. */
const fixedSpki = Uint8Array.from(
  Buffer.from(`3059301306072a8648ce3d020106082a8648ce3d03010703420004${'11'.repeat(64)}`, 'hex'),
);

describe('the signers in a service binding', () => {
  test('a binding without signers hashes as before they existed (vectors made by the previous version)', () => {
    const base = {
      domain: SERVICE_BINDING_DOMAIN,
      spki: fixedSpki,
      workload: fill(0xa1),
      config: fill(0xc2),
    };
    assert.equal(
      hex(reportDataFor(base)),
      'f753815c5a0731c3d4b9ca9cefad720cb12c45236343d26e9d809a7fc7509abb6c0dc3f702758dbfbe8dba9fb5abbeb7978b1f4f1175ed3c8adcf0f2a0df9898',
    );
    assert.equal(
      hex(reportDataFor({ ...base, artifact: fill(0xe3) })),
      '4dfeb46b49d17bce638306d3a4ac286d855b11896fd6469e10bc9d32b38cddd62b9afea1d0a422cceade8d3add701d08cb727fd98fbdd92c3baaf9e33b3f3622',
    );
  });

  test('reportDataFor() with signers is SHA-512(… ‖ artifact ‖ "donjon/signers/v1" ‖ n ‖ signers)', () => {
    const signers = [fill(0x01), fill(0x02)];
    const binding = {
      domain: SERVICE_BINDING_DOMAIN,
      spki: fixedSpki,
      workload: fill(0xa1),
      config: fill(0xc2),
      artifact: fill(0xe3),
      signers,
    };
    const expected = createHash('sha512')
      .update('donjon/service/v1')
      .update(fixedSpki)
      .update(fill(0xa1))
      .update(fill(0xc2))
      .update(fill(0xe3))
      .update('donjon/signers/v1')
      .update(Uint8Array.of(2))
      .update(fill(0x01))
      .update(fill(0x02))
      .digest('hex');
    assert.equal(SIGNERS_DOMAIN, 'donjon/signers/v1');
    assert.equal(hex(reportDataFor(binding)), expected);
    assert.notEqual(hex(reportDataFor({ ...binding, signers: [fill(0x01)] })), expected);
  });

  test('reportDataFor() and encodeCmw() refuse signers without an artifact, out of order, repeated or empty', () => {
    const base = { domain: SERVICE_BINDING_DOMAIN, spki: fixedSpki, workload: fill(1), config: fill(2) };
    const bad: ServiceBinding[] = [
      { ...base, signers: [fill(1)] },
      { ...base, artifact: fill(3), signers: [] },
      { ...base, artifact: fill(3), signers: [fill(2), fill(1)] },
      { ...base, artifact: fill(3), signers: [fill(1), fill(1)] },
      { ...base, artifact: fill(3), signers: [new Uint8Array(31)] },
    ];
    for (const binding of bad) {
      assert.throws(() => reportDataFor(binding), RangeError);
      assert.throws(
        () => encodeCmw({ evidence: { kind: 'sev-snp', report: Uint8Array.of(1), certs: [] }, binding }),
        RangeError,
      );
    }
  });

  test('decodeCmw() round-trips signers, and the binding matches docs/protocol.cddl', () => {
    const binding = {
      domain: SERVICE_BINDING_DOMAIN,
      spki: fixedSpki,
      workload: fill(1),
      config: fill(2),
      artifact: fill(3),
      signers: [fill(4), fill(5)],
    };
    const contents = { evidence: { kind: 'sev-snp' as const, report: Uint8Array.of(1), certs: [] }, binding };
    assert.deepEqual(decodeCmw(encodeCmw(contents)), contents);
    assert.equal(validate(spec, 'service-binding', binding), undefined);
    const { signers: _, ...withoutSigners } = binding;
    assert.equal(validate(spec, 'service-binding', withoutSigners), undefined);
    assert.equal(
      validate(spec, 'channel-binding', { domain: 'donjon/keep/v1', spki: fixedSpki, nonce: fill(9) }),
      undefined,
    );
    assert.notEqual(validate(spec, 'service-binding', { ...binding, signers: [] }), undefined);
  });

  test('decodeCmw() refuses signers that are not a strict list of digests beside an artifact', () => {
    const wire = (binding: Record<string, unknown>): Uint8Array =>
      encode({
        evidence: [MEDIA_TYPES['sev-snp'], Uint8Array.of(1)],
        certs: [MEDIA_TYPES.certs, encode([])],
        binding: [MEDIA_TYPES.binding, encode(binding)],
      });
    const base = { domain: SERVICE_BINDING_DOMAIN, spki: fixedSpki, workload: fill(1), config: fill(2) };
    assert.doesNotThrow(() => decodeCmw(wire({ ...base, artifact: fill(3), signers: [fill(4)] })));
    const many = Array.from({ length: MAX_SIGNERS + 1 }, (_, i) => {
      const d = new Uint8Array(32);
      d[31] = i;
      return d;
    });
    for (const binding of [
      { ...base, signers: [fill(4)] },
      { ...base, artifact: fill(3), signers: [] },
      { ...base, artifact: fill(3), signers: fill(4) },
      { ...base, artifact: fill(3), signers: [new Uint8Array(31)] },
      { ...base, artifact: fill(3), signers: [new Uint8Array(33)] },
      { ...base, artifact: fill(3), signers: [fill(5), fill(4)] },
      { ...base, artifact: fill(3), signers: [fill(4), fill(4)] },
      { ...base, artifact: fill(3), signers: [hex(fill(4))] },
      { ...base, artifact: fill(3), signers: many },
      { ...base, artifact: new Uint8Array(31), signers: [fill(4)] },
      { ...base, artifact: fill(3), signers: [fill(4)], signer: [fill(4)] },
      { ...base, artifact: fill(3), x: 1 },
    ]) {
      assert.throws(() => decodeCmw(wire(binding)), code('ERR_KEEP_CERT_MALFORMED'), JSON.stringify(binding));
    }
  });

  test('decodeCmw() lets only RatlsError escape for any binding with signers', () => {
    const digestList = fc.array(fc.uint8Array({ minLength: 30, maxLength: 33 }), { maxLength: 4 });
    fc.assert(
      fc.property(
        fc.record(
          {
            artifact: fc.uint8Array({ minLength: 31, maxLength: 33 }),
            signers: fc.oneof(digestList, fc.string(), fc.integer()),
          },
          { requiredKeys: [] },
        ),
        (extra) => {
          const bytes = encode({
            evidence: [MEDIA_TYPES['sev-snp'], Uint8Array.of(1)],
            certs: [MEDIA_TYPES.certs, encode([])],
            binding: [
              MEDIA_TYPES.binding,
              encode({ domain: 'x', spki: Uint8Array.of(1), workload: fill(1), config: fill(2), ...extra }),
            ],
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
});

describe('signerDigest()', () => {
  const key = generateSigningKey();
  const expected = createHash('sha256')
    .update(key.publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');

  test('is the SHA-256 of the SPKI, from the PEM text or the KeyObject', () => {
    assert.equal(signerDigest(publicKeyPem(key.publicKey)), expected);
    assert.equal(signerDigest(`a comment\n${publicKeyPem(key.publicKey)}`), expected);
    assert.equal(signerDigest(key.publicKey), expected);
  });

  test('gives one digest for the compressed and the uncompressed writing of a key', () => {
    const jwk = key.publicKey.export({ format: 'jwk' });
    const x = Buffer.from(jwk.x!, 'base64url');
    const y = Buffer.from(jwk.y!, 'base64url');
    const point = Buffer.concat([Uint8Array.of(2 + (y[31]! & 1)), x]);
    // The DER header of a P-256 SPKI with a 33-byte (compressed) point.
    const header = Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex');
    const compressed = createPublicKey({ key: Buffer.concat([header, point]), format: 'der', type: 'spki' });
    assert.equal(compressed.export({ type: 'spki', format: 'der' }).length, 59);
    assert.equal(signerDigest(compressed), expected);
  });

  test('refuses a private key, PEM or KeyObject, encrypted or not, and text that is no public key', () => {
    const pkcs8 = key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    for (const text of [pkcs8, encryptPrivateKey(key.privateKey, 'pw')]) {
      assert.throws(() => signerDigest(text), /it is a private key/);
    }
    assert.throws(() => signerDigest(key.privateKey), TypeError);
    assert.throws(() => signerDigest('not a key'), /expected one PEM public key/);
    assert.throws(() => signerDigest(publicKeyPem(key.publicKey).repeat(2)), /expected one PEM public key/);
  });
});

describe('verifyServiceCertificate() under signerKeys', () => {
  let root: SimRootMaterial;
  const measurement = new Uint8Array(48).fill(0x6b);
  const now = new Date();
  const workload = sha('app.wasm');
  const config = sha('config');
  const artifact = sha('manifest');
  const alice = hex(sha('alice'));
  const bob = hex(sha('bob'));
  const carol = hex(sha('carol'));

  before(async () => {
    root = (await loadOrCreateSimRoot(testHome)).material;
  });

  type Bound = { artifact?: Uint8Array; signers?: Uint8Array[] };
  function service(bind: Bound, claim: Bound = bind): Uint8Array {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const report = signSimReport(root, {
      reportData: reportDataFor({
        domain: SERVICE_BINDING_DOMAIN,
        spki: spkiOf(privateKey),
        workload,
        config,
        ...bind,
      }),
      measurement,
    });
    return makeServiceCertificate({
      privateKey,
      now,
      workload,
      config,
      ...claim,
      evidence: { kind: 'sev-snp', report, certs: [root.vcekDer, root.askDer, root.arkDer] },
    });
  }
  const signed = (...signers: string[]): Bound => ({
    artifact,
    signers: signers.sort().map((s) => new Uint8Array(Buffer.from(s, 'hex'))),
  });
  const expect = (extra: Record<string, unknown> = {}) => ({
    now,
    policy: { measurements: [hex(measurement)], trustSimulatedRoots: [root.fingerprint] },
    ...extra,
  });

  test('accepts a service signed by a pinned key, and reports its signers', () => {
    const der = service(signed(alice, bob));
    const id = verifyServiceCertificate(der, expect({ signerKeys: [carol, bob.toUpperCase()] }));
    assert.deepEqual(id.signers, [alice, bob].sort());
    assert.equal(id.artifactDigest, `sha256:${hex(artifact)}`);
    assert.deepEqual(verifyServiceCertificate(der, expect()).signers, [alice, bob].sort());
  });

  test('refuses a service signed by none of the pinned keys', () => {
    assert.throws(
      () => verifyServiceCertificate(service(signed(alice)), expect({ signerKeys: [bob, carol] })),
      (e: unknown) =>
        code('ERR_SERVICE_SIGNER_MISMATCH')(e) &&
        (e as RatlsError).category === 'refused' &&
        (e as Error).message.includes(`signed by ${alice}`),
    );
  });

  test('refuses, under a signer pin, a workload not deployed from a signed artifact', () => {
    for (const bind of [{}, { artifact }]) {
      const der = service(bind);
      assert.equal(verifyServiceCertificate(der, expect()).signers, undefined);
      assert.throws(
        () => verifyServiceCertificate(der, expect({ signerKeys: [alice] })),
        (e: unknown) =>
          code('ERR_SERVICE_SIGNER_MISMATCH')(e) && /nothing proves who signed/.test((e as Error).message),
      );
    }
  });

  test('combined with digest pins, every pin must hold', () => {
    const der = service(signed(alice));
    const right = { workloadDigests: [hex(workload)], configDigests: [hex(config)], signerKeys: [alice] };
    assert.deepEqual(verifyServiceCertificate(der, expect(right)).signers, [alice]);
    assert.throws(
      () => verifyServiceCertificate(der, expect({ ...right, workloadDigests: [hex(sha('v2.wasm'))] })),
      code('ERR_SERVICE_WORKLOAD_MISMATCH'),
    );
    assert.throws(
      () => verifyServiceCertificate(der, expect({ ...right, configDigests: [hex(sha('other'))] })),
      code('ERR_SERVICE_CONFIG_MISMATCH'),
    );
    assert.throws(
      () => verifyServiceCertificate(der, expect({ ...right, signerKeys: [bob] })),
      code('ERR_SERVICE_SIGNER_MISMATCH'),
    );
  });

  test('refuses signers the evidence does not bind (a certificate relabelled with a pinned signer)', () => {
    for (const [bind, claim] of [
      [{ artifact }, signed(alice)],
      [signed(bob), signed(alice)],
      [signed(alice, bob), signed(alice)],
    ] as const) {
      assert.throws(
        () => verifyServiceCertificate(service(bind, claim), expect({ signerKeys: [alice] })),
        code('ERR_REPORT_DATA_MISMATCH'),
      );
    }
  });

  test('an unattested service is refused under a signer pin even with insecure, and a malformed pin is a TypeError', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const nil = makeServiceCertificate({ privateKey, now, workload, config });
    assert.throws(
      () => verifyServiceCertificate(nil, expect({ insecure: true, signerKeys: [alice] })),
      code('ERR_KEEP_NOT_ATTESTED'),
    );
    assert.throws(
      () => verifyServiceCertificate(service(signed(alice)), expect({ signerKeys: ['cosign.pub'] })),
      (e: unknown) => e instanceof TypeError && /signerDigest\(\) makes one from a PEM/.test(e.message),
    );
  });
});
