import assert from 'node:assert/strict';
import { verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { CollateralError, rawJsonMembers, splitSignedJson } from '../../../src/host/collateral/index.ts';
import { NEEDS_EVIDENCE } from '../../attestation/evidence.ts';
import { dcapQvlCollateral, text } from './fake-services.ts';

/** Whether `signature` (hex r‖s) is Intel's ECDSA P-256 signature over `body` by the chain's first cert. */
function signedBy(chainPem: string, body: string, signature: string): boolean {
  const key = new X509Certificate(chainPem.slice(0, chainPem.indexOf('-----END CERTIFICATE-----') + 25))
    .publicKey;
  return cryptoVerify(
    'sha256',
    Buffer.from(body, 'utf8'),
    { key, dsaEncoding: 'ieee-p1363' },
    Buffer.from(signature, 'hex'),
  );
}

test('splitSignedJson() cuts out the exact signed tcbInfo text of a real PCS response', {
  skip: NEEDS_EVIDENCE,
}, () => {
  const response = text('go-tdx-guest/sample_tcbInfo_response');
  const s = splitSignedJson(response, ['tcbInfo']);
  assert.equal(s.member, 'tcbInfo');
  assert.ok(response.includes(s.body));
  assert.equal(s.nextUpdate.toISOString(), '2023-07-18T08:42:58.000Z');
  assert.ok(signedBy(text('go-tdx-guest/tcbInfoIssuerChain.pem'), s.body, s.signature));
});

test('splitSignedJson() cuts out the exact signed enclaveIdentity text of a real PCS response', {
  skip: NEEDS_EVIDENCE,
}, () => {
  const s = splitSignedJson(text('go-tdx-guest/sample_qeIdentity_response'), [
    'enclaveIdentity',
    'qeIdentity',
  ]);
  assert.equal(s.member, 'enclaveIdentity');
  assert.ok(signedBy(text('go-tdx-guest/qeIdentityIssuerChain.pem'), s.body, s.signature));
});

test('splitSignedJson() keeps the body byte for byte, whitespace included', { skip: NEEDS_EVIDENCE }, () => {
  const c = dcapQvlCollateral('sgx_quote');
  const response = `{ "signature" : "${c['tcb_info_signature']}",\n  "tcbInfo":${c['tcb_info']} }`;
  const s = splitSignedJson(response, ['tcbInfo']);
  assert.equal(s.body, c['tcb_info']);
  assert.ok(signedBy(c['tcb_info_issuer_chain']!, s.body, s.signature));
  // The same object re-serialised is different text, whose signature would fail: proof that cutting
  // matters.
  const reserialised = JSON.stringify(JSON.parse(c['tcb_info']!), null, 1);
  assert.ok(!signedBy(c['tcb_info_issuer_chain']!, reserialised, s.signature));
});

test('splitSignedJson() returns the signature as lower-case hex and the body as served', () => {
  const body = '{"id":"QE",  "nextUpdate":"2030-01-01T00:00:00Z"}';
  const s = splitSignedJson(`{"enclaveIdentity":${body},"signature":"${'AB'.repeat(64)}"}`, [
    'enclaveIdentity',
  ]);
  assert.equal(s.body, body);
  assert.equal(s.signature, 'ab'.repeat(64));
});

test('splitSignedJson() rejects duplicate members, extra members, bad signatures and a missing nextUpdate', () => {
  const sig = `"signature":"${'00'.repeat(64)}"`;
  const body = '{"nextUpdate":"2030-01-01T00:00:00Z"}';
  const cases = [
    `{"tcbInfo":${body},"tcbInfo":${body},${sig}}`,
    `{"tcbInfo":${body},${sig},"extra":1}`,
    `{"tcbInfo":${body},"signature":"abc"}`,
    `{"tcbInfo":${body}}`,
    `{"tcbInfo":{"nextUpdate":"tomorrow"},${sig}}`,
    `{"tcbInfo":[1],${sig}}`,
    `{"other":${body},${sig}}`,
    `[${body}]`,
    '{"tcbInfo":',
  ];
  for (const c of cases)
    assert.throws(() => splitSignedJson(c, ['tcbInfo']), { code: 'ERR_COLLATERAL_MALFORMED' }, c);
});

test('rawJsonMembers() gives each member the exact source text of its value', () => {
  const json = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      fc.string(),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.array(tie('value'), { maxLength: 3 }),
      fc.dictionary(fc.string(), tie('value'), { maxKeys: 3 }),
    ),
  })).value;
  fc.assert(
    fc.property(fc.dictionary(fc.string(), json, { maxKeys: 5 }), fc.boolean(), (object, pretty) => {
      const source = JSON.stringify(object, null, pretty ? 2 : undefined);
      const members = rawJsonMembers(source);
      const parsed = JSON.parse(source) as Record<string, unknown>;
      assert.deepEqual([...members.keys()], Object.keys(parsed));
      for (const [key, raw] of members) {
        assert.deepEqual(JSON.parse(raw), parsed[key]);
        assert.ok(source.includes(raw));
      }
    }),
    { numRuns: 300 },
  );
});

test('splitSignedJson() lets only CollateralError escape on arbitrary text', () => {
  const near = fc
    .tuple(fc.string(), fc.string())
    .map(([a, b]) => `{"tcbInfo":{"nextUpdate":${JSON.stringify(a)}},"signature":${JSON.stringify(b)}}`);
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.json(), near), (t) => {
      try {
        splitSignedJson(t, ['tcbInfo']);
      } catch (e) {
        assert.ok(e instanceof CollateralError, String(e));
      }
    }),
    { numRuns: 500 },
  );
});
