import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CollateralError, dcapFetchParameters } from '../../../src/host/collateral/index.ts';
import { NEEDS_EVIDENCE } from '../../attestation/evidence.ts';
import { file, text } from './fake-services.ts';

interface DcapResult {
  kind: string;
  checks: { pck_extensions: { fmspc: string }; pck_chain_subjects: string[] };
}

const SAMPLES = [
  'dcap-qvl/sgx_quote',
  'dcap-qvl/tdx_quote',
  'go-tdx-guest/tdx_prod_quote_SPR_E4.dat',
  'go-tdx-guest/quote_v5_sample.dat',
  'trustee/occlum_quote.dat',
  'enarx-steward/icelake.signed.tcb.crl.single.i5.quote.bin',
];

test('dcapFetchParameters() agrees with RESULTS.json on kind, FMSPC and PCK CA', {
  skip: NEEDS_EVIDENCE,
}, () => {
  const results = (JSON.parse(text('RESULTS.json')) as { dcap: Record<string, DcapResult> }).dcap;
  for (const name of SAMPLES) {
    const expected = results[name]!;
    const p = dcapFetchParameters(file(name));
    assert.equal(p.kind, expected.kind === 'SGX' ? 'sgx' : 'tdx', name);
    assert.equal(p.fmspc, expected.checks.pck_extensions.fmspc.toLowerCase(), name);
    const ca = expected.checks.pck_chain_subjects[1]!.includes('Platform CA') ? 'platform' : 'processor';
    assert.equal(p.ca, ca, name);
    assert.equal(p.pckChain.length, 3, name);
  }
});

test('dcapFetchParameters() refuses an SEV-SNP report and a quote without its PCK chain', {
  skip: NEEDS_EVIDENCE,
}, () => {
  assert.throws(() => dcapFetchParameters(file('go-sev-guest/attestation.bin')), {
    code: 'ERR_COLLATERAL_UNSUPPORTED',
  });
  const quote = file('dcap-qvl/sgx_quote');
  const headerOnly = quote.slice(0, 1000);
  assert.throws(() => dcapFetchParameters(headerOnly), { code: 'ERR_COLLATERAL_UNSUPPORTED' });
  assert.throws(() => dcapFetchParameters(new Uint8Array(10)), { code: 'ERR_COLLATERAL_UNSUPPORTED' });
});

test('dcapFetchParameters() lets only CollateralError escape on mutated quotes', {
  skip: NEEDS_EVIDENCE,
}, () => {
  const quote = file('dcap-qvl/tdx_quote');
  const pem = Buffer.from(quote).toString('latin1').indexOf('-----BEGIN CERTIFICATE-----');
  const mutated = fc
    .tuple(fc.integer({ min: 0, max: quote.byteLength - 1 }), fc.integer({ min: 0, max: 255 }), fc.boolean())
    .map(([at, byte, nearPem]) => {
      const b = quote.slice();
      // Half the mutations hit the PCK certificate, where the parsing happens.
      b[nearPem ? pem + 30 + (at % 1200) : at] = byte;
      return b;
    });
  fc.assert(
    fc.property(fc.oneof(mutated, fc.uint8Array({ maxLength: 100 })), (bytes) => {
      try {
        dcapFetchParameters(bytes);
      } catch (e) {
        assert.ok(e instanceof CollateralError, String(e));
      }
    }),
    { numRuns: 300 },
  );
});
