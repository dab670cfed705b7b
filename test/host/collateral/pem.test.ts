import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  CollateralError,
  decodeIssuerChainHeader,
  pemBlocks,
  pemCertificates,
  toPem,
} from '../../../src/host/collateral/index.ts';
import { NEEDS_EVIDENCE } from '../../attestation/evidence.ts';
import { text } from './fake-services.ts';

test('pemBlocks() reads every block of a bundle in order, with its label', () => {
  const a = Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x05);
  const b = Uint8Array.of(0x30, 0x00);
  const bundle = `# comment\n${toPem(a)}between\n${toPem(b, 'X509 CRL')}`;
  const blocks = pemBlocks(bundle);
  assert.deepEqual(
    blocks.map((x) => x.label),
    ['CERTIFICATE', 'X509 CRL'],
  );
  assert.deepEqual(blocks[0]!.der, a);
  assert.deepEqual(blocks[1]!.der, b);
  assert.deepEqual(pemCertificates(bundle), [a]);
});

test('pemBlocks() rejects a block whose END label differs from its BEGIN label', () => {
  const pem = '-----BEGIN CERTIFICATE-----\nMAA=\n-----END X509 CRL-----\n';
  assert.throws(() => pemBlocks(pem), { code: 'ERR_COLLATERAL_MALFORMED' });
});

test('pemBlocks() rejects non-canonical base64 (non-zero padding bits)', () => {
  // "MAB=" decodes to the same bytes as "MAA=" in lenient decoders; only the second is canonical.
  assert.deepEqual(pemBlocks('-----BEGIN X-----\nMAA=\n-----END X-----').length, 1);
  assert.throws(() => pemBlocks('-----BEGIN X-----\nMAB=\n-----END X-----'), {
    code: 'ERR_COLLATERAL_MALFORMED',
  });
  assert.throws(() => pemBlocks('-----BEGIN X-----\nMA*=\n-----END X-----'), {
    code: 'ERR_COLLATERAL_MALFORMED',
  });
  assert.throws(() => pemBlocks('-----BEGIN X-----\n\n-----END X-----'), {
    code: 'ERR_COLLATERAL_MALFORMED',
  });
});

test('toPem() writes what pemBlocks() reads back', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), (der) => {
      const blocks = pemBlocks(toPem(der));
      assert.equal(blocks.length, 1);
      assert.deepEqual(blocks[0]!.der, der);
    }),
  );
});

test('pemBlocks() lets only CollateralError escape on arbitrary text', () => {
  const pemish = fc.oneof(
    fc.string(),
    fc
      .tuple(
        fc.constantFrom('CERTIFICATE', 'X509 CRL', 'X'),
        fc.string(),
        fc.constantFrom('CERTIFICATE', 'X'),
      )
      .map(([a, body, b]) => `-----BEGIN ${a}-----\n${body}\n-----END ${b}-----\n`),
  );
  fc.assert(
    fc.property(pemish, (t) => {
      try {
        pemBlocks(t);
      } catch (e) {
        assert.ok(e instanceof CollateralError, String(e));
      }
    }),
    { numRuns: 500 },
  );
});

test('decodeIssuerChainHeader() decodes a URL-encoded PCS header to its PEM chain', {
  skip: NEEDS_EVIDENCE,
}, () => {
  const pem = text('go-tdx-guest/tcbInfoIssuerChain.pem');
  const decoded = decodeIssuerChainHeader(encodeURIComponent(pem));
  assert.equal(decoded, pem);
  assert.equal(pemCertificates(decoded).length, 2);
  // The root CA certificate of the evidence folder is the chain's second certificate.
  assert.deepEqual(pemCertificates(decoded)[1], pemCertificates(text('roots/Intel_SGX_Root_CA.pem'))[0]);
});

test('decodeIssuerChainHeader() rejects a header with no certificate or broken escapes', () => {
  assert.throws(() => decodeIssuerChainHeader('hello'), { code: 'ERR_COLLATERAL_MALFORMED' });
  assert.throws(() => decodeIssuerChainHeader('%E0%A4%A'), { code: 'ERR_COLLATERAL_MALFORMED' });
});

test('decodeIssuerChainHeader() lets only CollateralError escape on arbitrary header values', () => {
  const escaped = fc
    .string()
    .map((t) => encodeURIComponent(t).replace(/%../g, (m) => (m === '%2D' ? '%2' : m)));
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string(),
        escaped,
        fc.string().map((t) => `%${t}`),
      ),
      (value) => {
        try {
          decodeIssuerChainHeader(value);
        } catch (e) {
          assert.ok(e instanceof CollateralError, String(e));
        }
      },
    ),
    { numRuns: 500 },
  );
});
