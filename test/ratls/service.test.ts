import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { type SimRootMaterial, signSimReport } from '../../src/attestation/sim/index.ts';
import { loadOrCreateSimRoot } from '../../src/host/simroot.ts';
import { encode } from '../../src/protocol/cbor.ts';
import { decodeCmw, encodeCmw, MEDIA_TYPES } from '../../src/ratls/cmw.ts';
import {
  BINDING_DOMAIN,
  makeKeepCertificate,
  makeServiceCertificate,
  RatlsError,
  readKeepCertificate,
  reportDataFor,
  SERVICE_BINDING_DOMAIN,
  spkiOf,
  verifyKeepCertificate,
  verifyServiceCertificate,
} from '../../src/ratls/index.ts';
import { testHome } from '../helpers.ts';

let root: SimRootMaterial;
const measurement = new Uint8Array(48).fill(0x6b);
const measurementHex = Buffer.from(measurement).toString('hex');
const now = new Date();
const sha = (s: string): Uint8Array => new Uint8Array(createHash('sha256').update(s).digest());
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const workload = sha('app.wasm');
const config = sha('config');

before(async () => {
  root = (await loadOrCreateSimRoot(testHome)).material;
});

function service(
  options: {
    bind?: { workload: Uint8Array; config: Uint8Array; artifact?: Uint8Array };
    claim?: { workload: Uint8Array; config: Uint8Array; artifact?: Uint8Array };
    evidence?: boolean;
  } = {},
) {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const bound = options.bind ?? { workload, config };
  const report = signSimReport(root, {
    reportData: reportDataFor({ domain: SERVICE_BINDING_DOMAIN, spki: spkiOf(privateKey), ...bound }),
    measurement,
  });
  const claim = options.claim ?? bound;
  return makeServiceCertificate({
    privateKey,
    now,
    ...claim,
    ...(options.evidence === false
      ? {}
      : { evidence: { kind: 'sev-snp', report, certs: [root.vcekDer, root.askDer, root.arkDer] } }),
  });
}

function expect(extra: Record<string, unknown> = {}) {
  return {
    now,
    policy: { measurements: [measurementHex], trustSimulatedRoots: [root.fingerprint] },
    ...extra,
  };
}

const code = (c: string) => (e: unknown) => (e as { code?: string }).code === c;

describe('service certificates', () => {
  test('reportDataFor() a service binding is SHA-512(domain ‖ spki ‖ workload ‖ config)', () => {
    const spki = Uint8Array.of(1, 2, 3);
    const expected = createHash('sha512')
      .update(SERVICE_BINDING_DOMAIN)
      .update(spki)
      .update(workload)
      .update(config)
      .digest();
    assert.deepEqual(
      Buffer.from(reportDataFor({ domain: SERVICE_BINDING_DOMAIN, spki, workload, config })),
      expected,
    );
  });

  test('verifyServiceCertificate() accepts evidence binding the key, the workload and its configuration', () => {
    const id = verifyServiceCertificate(
      service(),
      expect({ workloadDigests: [hex(workload)], configDigests: [hex(config).toUpperCase()] }),
    );
    assert.equal(id.workloadDigest, hex(workload));
    assert.equal(id.configDigest, hex(config));
    assert.ok(id.claims?.kind === 'sev-snp' && id.claims.measurement === measurementHex);
  });

  test('a service deployed from a registry binds the manifest digest too, and a claim without it fails', () => {
    const artifact = sha('manifest');
    const id = verifyServiceCertificate(
      service({ bind: { workload, config, artifact } }),
      expect({ workloadDigests: [hex(workload)] }),
    );
    assert.equal(id.artifactDigest, `sha256:${hex(artifact)}`);
    assert.equal(verifyServiceCertificate(service(), expect()).artifactDigest, undefined);
    // Evidence bound to the manifest, in a certificate that leaves it out (or names another): refused.
    for (const claim of [
      { workload, config },
      { workload, config, artifact: sha('other') },
    ]) {
      assert.throws(
        () => verifyServiceCertificate(service({ bind: { workload, config, artifact }, claim }), expect()),
        (e: unknown) => (e as { code?: string }).code !== undefined,
      );
    }
  });

  test('the certificate names the workload digest in its common name', () => {
    const cert = readKeepCertificate(service());
    assert.match(
      Buffer.from(cert.der).toString('latin1'),
      new RegExp(`Donjon service ${hex(workload).slice(0, 16)}`),
    );
  });

  test('verifyServiceCertificate() refuses another workload, and another configuration', () => {
    const der = service();
    assert.throws(
      () => verifyServiceCertificate(der, expect({ workloadDigests: [hex(sha('other'))] })),
      code('ERR_SERVICE_WORKLOAD_MISMATCH'),
    );
    assert.throws(
      () => verifyServiceCertificate(der, expect({ configDigests: [hex(sha('other'))] })),
      code('ERR_SERVICE_CONFIG_MISMATCH'),
    );
  });

  test('verifyServiceCertificate() refuses digests the evidence does not bind (a relabelled certificate)', () => {
    const der = service({ claim: { workload: sha('wanted'), config } });
    assert.throws(
      () => verifyServiceCertificate(der, expect({ workloadDigests: [hex(sha('wanted'))] })),
      code('ERR_REPORT_DATA_MISMATCH'),
    );
  });

  test('verifyServiceCertificate() refuses simulated evidence unless the policy opts into its root', () => {
    assert.throws(
      () => verifyServiceCertificate(service(), { now, policy: { measurements: [measurementHex] } }),
      code('ERR_SIMULATED_ROOT_NOT_TRUSTED'),
    );
  });

  test('a service certificate is no channel certificate, and a channel certificate no service certificate', () => {
    assert.throws(
      () => verifyKeepCertificate(service(), { ...expect(), nonce: new Uint8Array(32) }),
      code('ERR_KEEP_BINDING_MISMATCH'),
    );
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const nonce = new Uint8Array(randomBytes(32));
    const report = signSimReport(root, {
      reportData: reportDataFor({ domain: BINDING_DOMAIN, spki: spkiOf(privateKey), nonce }),
      measurement,
    });
    const channel = makeKeepCertificate({
      privateKey,
      nonce,
      now,
      evidence: { kind: 'sev-snp', report, certs: [root.vcekDer, root.askDer, root.arkDer] },
    });
    assert.throws(() => verifyServiceCertificate(channel, expect()), code('ERR_KEEP_BINDING_MISMATCH'));
  });

  test('a service without evidence is refused, and accepted as insecure only when no digest is required', () => {
    const der = service({ evidence: false });
    assert.throws(() => verifyServiceCertificate(der, expect()), code('ERR_KEEP_NOT_ATTESTED'));
    const id = verifyServiceCertificate(der, expect({ insecure: true }));
    assert.equal(id.claims, null);
    assert.throws(
      () => verifyServiceCertificate(der, expect({ insecure: true, workloadDigests: [hex(workload)] })),
      code('ERR_KEEP_NOT_ATTESTED'),
    );
  });

  test('verifyServiceCertificate() refuses an expired certificate', () => {
    assert.throws(
      () => verifyServiceCertificate(service(), expect({ now: new Date(now.getTime() + 25 * 3600_000) })),
      code('ERR_KEEP_CERT_EXPIRED'),
    );
  });

  test('verifyServiceCertificate() refuses malformed digest requirements with TypeError', () => {
    assert.throws(() => verifyServiceCertificate(service(), expect({ workloadDigests: ['xyz'] })), TypeError);
  });

  test('makeServiceCertificate() refuses digests that are not 32 bytes', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    assert.throws(
      () => makeServiceCertificate({ privateKey, now, workload: new Uint8Array(31), config }),
      RangeError,
    );
  });

  test('decodeCmw() round-trips a service binding and refuses one with short digests', () => {
    const contents = {
      evidence: { kind: 'sev-snp' as const, report: Uint8Array.of(1), certs: [] },
      binding: { domain: SERVICE_BINDING_DOMAIN, spki: Uint8Array.of(2), workload, config },
    };
    assert.deepEqual(decodeCmw(encodeCmw(contents)), contents);
    const bad = encode({
      evidence: [MEDIA_TYPES['sev-snp'], Uint8Array.of(1)],
      certs: [MEDIA_TYPES.certs, encode([])],
      binding: [
        MEDIA_TYPES.binding,
        encode({ domain: 'x', spki: Uint8Array.of(1), workload: new Uint8Array(31), config }),
      ],
    });
    assert.throws(() => decodeCmw(bad), code('ERR_KEEP_CERT_MALFORMED'));
  });

  test('decodeCmw() lets only RatlsError escape for any binding map', () => {
    const value = fc.oneof(fc.string(), fc.uint8Array({ maxLength: 40 }), fc.integer());
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom('domain', 'spki', 'nonce', 'workload', 'config', 'x'), value),
        (binding) => {
          const bytes = encode({
            evidence: [MEDIA_TYPES['sev-snp'], Uint8Array.of(1)],
            certs: [MEDIA_TYPES.certs, encode([])],
            binding: [MEDIA_TYPES.binding, encode(binding)],
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
