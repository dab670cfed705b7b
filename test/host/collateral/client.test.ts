import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CollateralClient,
  type CollateralClientOptions,
  pemCertificates,
} from '../../../src/host/collateral/index.ts';
import { NEEDS_EVIDENCE } from '../../attestation/evidence.ts';
import {
  dcapQvlCollateral,
  dcapQvlPcsRoutes,
  expectedVcekPath,
  FakeServices,
  file,
  firstDer,
  GO_TDX_GUEST_TIME,
  goTdxGuestPcsRoutes,
  kdsRoutes,
  routeKey,
  text,
} from './fake-services.ts';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'donjon-collateral-'));
  dirs.push(d);
  return d;
}
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function client(fake: FakeServices, options: CollateralClientOptions = {}): CollateralClient {
  return new CollateralClient({
    kdsUrl: fake.url,
    pcsUrl: fake.url,
    intelRootCaCrlUrl: `${fake.url}/IntelSGXRootCA.der`,
    timeoutMs: 2_000,
    retryDelayMs: 10,
    ...options,
  });
}

describe('CollateralClient against a fake AMD KDS', { skip: NEEDS_EVIDENCE }, () => {
  let fake: FakeServices;
  before(async () => {
    fake = await FakeServices.start(NEEDS_EVIDENCE ? {} : kdsRoutes());
  });
  after(() => fake.close());

  test('snpCertificates() fetches the VCEK of a v2 Milan report, then its chain, and caches both', async () => {
    const cacheDir = await tempDir();
    const now = new Date('2025-01-01T00:00:00Z');
    const first = await client(fake, { cacheDir, now: () => now }).snpCertificates(
      file('go-sev-guest/attestation.bin'),
    );
    assert.deepEqual(first[0], file('go-sev-guest/vcek.testcer'));
    assert.deepEqual(first.slice(1), pemCertificates(text('roots/AMD_KDS_vcek_cert_chain_Milan.pem')));
    const vcekKey = expectedVcekPath('Milan', 'go-sev-guest/attestation.bin');
    assert.equal(fake.count('/vcek/v1/Milan/3ac3fe21'), 1);
    assert.equal(fake.requests.at(-2), routeKey(vcekKey));
    assert.equal(fake.count('/vcek/v1/Milan/cert_chain'), 1);

    // The same client, and a new one on the same directory, answer from the cache.
    const before = fake.requests.length;
    const again = await client(fake, { cacheDir, now: () => now }).snpCertificates(
      file('go-sev-guest/attestation.bin'),
    );
    assert.deepEqual(again, first);
    assert.equal(fake.requests.length, before);

    // After the VCEK's notAfter (2029-09-24) it is fetched again; the chain (to 2045) is not.
    const later = new Date('2029-10-01T00:00:00Z');
    await client(fake, { cacheDir, now: () => later }).snpCertificates(file('go-sev-guest/attestation.bin'));
    assert.equal(fake.count('/vcek/v1/Milan/3ac3fe21'), 2);
    assert.equal(fake.count('/vcek/v1/Milan/cert_chain'), 1);
  });

  test('snpCertificates() asks for the Turin VCEK by 8-byte hwid with fmcSPL', async () => {
    const certs = await client(fake).snpCertificates(file('routex-client-lua/report-turin.bin'));
    assert.deepEqual(certs[0], firstDer('routex-client-lua/vcek-turin.pem'));
    assert.equal(certs.length, 3);
    assert.ok(
      fake.requests.some((r) => r.startsWith('/vcek/v1/Turin/3b42092f69c656d3?') && r.includes('fmcSPL=0')),
    );
  });

  test('snpCertificates() takes the product of a v3 report from its CPUID', async () => {
    const n = fake.count('/vcek/v1/Milan/');
    const certs = await client(fake).snpCertificates(file('routex-client-lua/report-genoa-v3.bin'));
    assert.deepEqual(certs[0], firstDer('routex-client-lua/vcek-genoa.pem'));
    assert.equal(fake.count('/vcek/v1/Milan/'), n);
  });

  test('snpCertificates() refuses a VLEK-signed report without asking KDS', async () => {
    const n = fake.requests.length;
    await assert.rejects(client(fake).snpCertificates(file('trustee/snp__test-vlek-report.bin')), {
      code: 'ERR_COLLATERAL_UNSUPPORTED',
    });
    assert.equal(fake.requests.length, n);
  });

  test('amdCrl() fetches the product CRL and caches it until its nextUpdate', async () => {
    const cacheDir = await tempDir();
    const crl = await client(fake, { cacheDir, now: () => new Date('2023-01-01T00:00:00Z') }).amdCrl('Milan');
    assert.deepEqual(crl, file('enarx-steward/milan.signed.crl.crl1.der'));
    await client(fake, { cacheDir, now: () => new Date('2023-05-01T00:00:00Z') }).amdCrl('Milan');
    assert.equal(fake.count('/vcek/v1/Milan/crl'), 1);
    await client(fake, { cacheDir, now: () => new Date('2023-06-01T00:00:00Z') }).amdCrl('Milan');
    assert.equal(fake.count('/vcek/v1/Milan/crl'), 2);
  });
});

describe('CollateralClient product fallback for v2 reports', { skip: NEEDS_EVIDENCE }, () => {
  test('snpCertificates() tries Milan, then Genoa, when a v2 report does not say', async () => {
    const milanPath = NEEDS_EVIDENCE ? '/' : expectedVcekPath('Milan', 'go-sev-guest/attestation.bin');
    const genoaPath = milanPath.replace('/Milan/', '/Genoa/');
    const fake = await FakeServices.start(
      NEEDS_EVIDENCE
        ? {}
        : {
            [genoaPath]: { body: file('go-sev-guest/vcek.testcer') },
            '/vcek/v1/Genoa/cert_chain': { body: text('roots/AMD_KDS_vcek_cert_chain_Genoa.pem') },
          },
    );
    try {
      const certs = await client(fake).snpCertificates(file('go-sev-guest/attestation.bin'));
      assert.equal(certs.length, 3);
      assert.deepEqual(
        fake.requests.map((r) => r.split('/').slice(0, 4).join('/')),
        ['/vcek/v1/Milan', '/vcek/v1/Genoa', '/vcek/v1/Genoa'],
      );
    } finally {
      await fake.close();
    }
  });
});

describe('CollateralClient against a fake Intel PCS', { skip: NEEDS_EVIDENCE }, () => {
  let fake: FakeServices;
  before(async () => {
    fake = await FakeServices.start(NEEDS_EVIDENCE ? {} : goTdxGuestPcsRoutes());
  });
  after(() => fake.close());

  test('dcapCollateral() fetches the four pieces for a TDX quote, with the exact signed texts', async () => {
    const c = await client(fake, { now: () => GO_TDX_GUEST_TIME }).dcapCollateral(
      file('go-tdx-guest/tdx_prod_quote_SPR_E4.dat'),
    );
    assert.ok(
      text('go-tdx-guest/sample_tcbInfo_response').startsWith(`{"tcbInfo":${c.tcb_info},"signature":`),
    );
    assert.ok(
      text('go-tdx-guest/sample_qeIdentity_response').startsWith(`{"enclaveIdentity":${c.qe_identity},`),
    );
    assert.equal(c.pck_crl, Buffer.from(file('go-tdx-guest/pckcrl')).toString('hex'));
    assert.equal(c.root_ca_crl, Buffer.from(file('go-tdx-guest/rootcrl.der')).toString('hex'));
    assert.equal(c.pck_crl_issuer_chain, text('go-tdx-guest/pckCrlIssuerChain.pem'));
    assert.equal(c.tcb_info_issuer_chain, text('go-tdx-guest/tcbInfoIssuerChain.pem'));
    assert.equal(c.qe_identity_issuer_chain, text('go-tdx-guest/qeIdentityIssuerChain.pem'));
    assert.match(c.tcb_info_signature, /^[0-9a-f]{128}$/);
    assert.deepEqual([...fake.requests].sort(), [
      '/IntelSGXRootCA.der',
      '/sgx/certification/v4/pckcrl?ca=platform&encoding=der',
      '/tdx/certification/v4/qe/identity',
      '/tdx/certification/v4/tcb?fmspc=50806f000000',
    ]);
  });

  test('dcapCollateral() serves each piece from the cache until its own nextUpdate', async () => {
    const cacheDir = await tempDir();
    const quote = file('go-tdx-guest/tdx_prod_quote_SPR_E4.dat');
    const start = fake.requests.length;
    const first = await client(fake, { cacheDir, now: () => GO_TDX_GUEST_TIME }).dcapCollateral(quote);
    assert.equal(fake.requests.length - start, 4);
    const second = await client(fake, { cacheDir, now: () => GO_TDX_GUEST_TIME }).dcapCollateral(quote);
    assert.deepEqual(second, first);
    assert.equal(fake.requests.length - start, 4);
    // 2023-07-20: TCB info (to 07-18), QE identity and PCK CRL (to 07-08) are stale; the Root CA CRL
    // (to 2024-04-02) is not.
    const mark = fake.requests.length;
    await client(fake, { cacheDir, now: () => new Date('2023-07-20T00:00:00Z') }).dcapCollateral(quote);
    assert.deepEqual(fake.requests.slice(mark).sort(), [
      '/sgx/certification/v4/pckcrl?ca=platform&encoding=der',
      '/tdx/certification/v4/qe/identity',
      '/tdx/certification/v4/tcb?fmspc=50806f000000',
    ]);
  });

  test('tcbInfo() shares one request between concurrent callers', async () => {
    const c = client(fake, { now: () => GO_TDX_GUEST_TIME });
    const key = '/tdx/certification/v4/tcb?fmspc=50806f000000';
    const n = fake.count(key);
    const [a, b] = await Promise.all([c.tcbInfo('tdx', '50806f000000'), c.tcbInfo('tdx', '50806F000000')]);
    assert.deepEqual(a, b);
    assert.equal(fake.count(key), n + 1);
  });

  test('tcbInfo() does not cache an answer that is already past its nextUpdate', async () => {
    const cacheDir = await tempDir();
    const key = '/tdx/certification/v4/tcb?fmspc=50806f000000';
    const n = fake.count(key);
    const late = { cacheDir, now: () => new Date('2024-01-01T00:00:00Z') };
    const stale = await client(fake, late).tcbInfo('tdx', '50806f000000');
    assert.equal(stale.nextUpdate.toISOString(), '2023-07-18T08:42:58.000Z');
    await client(fake, late).tcbInfo('tdx', '50806f000000');
    assert.equal(fake.count(key), n + 2);
  });

  test('maxAgeMs bounds how long an answer is served from the cache', async () => {
    const cacheDir = await tempDir();
    const key = '/tdx/certification/v4/qe/identity';
    const n = fake.count(key);
    let now = GO_TDX_GUEST_TIME;
    const c = client(fake, { cacheDir, maxAgeMs: 60_000, now: () => now });
    await c.qeIdentity('tdx');
    now = new Date(now.getTime() + 30_000);
    await c.qeIdentity('tdx');
    assert.equal(fake.count(key), n + 1);
    now = new Date(now.getTime() + 60_000);
    await c.qeIdentity('tdx');
    assert.equal(fake.count(key), n + 2);
  });

  test('a cache directory that cannot be written costs a refetch, not the answer', async () => {
    const blocker = join(await tempDir(), 'a-file');
    await writeFile(blocker, 'not a directory');
    const c = client(fake, { cacheDir: join(blocker, 'cache'), now: () => GO_TDX_GUEST_TIME });
    const crl = await c.intelRootCaCrl();
    assert.deepEqual(crl, file('go-tdx-guest/rootcrl.der'));
  });
});

describe('CollateralClient with a misbehaving PCS', { skip: NEEDS_EVIDENCE }, () => {
  test('an answer without its issuer-chain header is refused and not cached', async () => {
    const cacheDir = await tempDir();
    const fake = await FakeServices.start(
      NEEDS_EVIDENCE
        ? {}
        : { '/tdx/certification/v4/qe/identity': { body: text('go-tdx-guest/sample_qeIdentity_response') } },
    );
    try {
      const c = client(fake, { cacheDir, now: () => GO_TDX_GUEST_TIME });
      await assert.rejects(c.qeIdentity('tdx'), { code: 'ERR_COLLATERAL_MALFORMED' });
      await assert.rejects(c.qeIdentity('tdx'), { code: 'ERR_COLLATERAL_MALFORMED' });
      assert.equal(fake.count(), 2);
    } finally {
      await fake.close();
    }
  });

  test('a re-serialised (pretty-printed) TCB info is served as is, so its signature will fail later', async () => {
    const original = text('go-tdx-guest/sample_tcbInfo_response');
    const pretty = JSON.stringify(JSON.parse(original), null, 2);
    const fake = await FakeServices.start({
      '/tdx/certification/v4/tcb?fmspc=50806f000000': {
        headers: { 'TCB-Info-Issuer-Chain': encodeURIComponent(text('go-tdx-guest/tcbInfoIssuerChain.pem')) },
        body: pretty,
      },
    });
    try {
      const t = await client(fake).tcbInfo('tdx', '50806f000000');
      assert.ok(pretty.includes(t.body));
      assert.ok(!original.includes(t.body));
    } finally {
      await fake.close();
    }
  });
});

describe('CollateralClient for the dcap-qvl SGX sample', { skip: NEEDS_EVIDENCE }, () => {
  test('dcapCollateral() rebuilds dcap-qvl collateral JSON from PCS answers exactly', async () => {
    const fake = await FakeServices.start(
      NEEDS_EVIDENCE ? {} : dcapQvlPcsRoutes('sgx_quote', 'sgx', '00a067110000', 'processor'),
    );
    try {
      const c = await client(fake, { now: () => new Date('2025-07-01T00:00:00Z') }).dcapCollateral(
        file('dcap-qvl/sgx_quote'),
      );
      const expected = dcapQvlCollateral('sgx_quote');
      for (const [k, v] of Object.entries(expected)) {
        assert.equal(
          (c as unknown as Record<string, string>)[k],
          k.endsWith('crl') || k.endsWith('signature') ? v.toLowerCase() : v,
          k,
        );
      }
    } finally {
      await fake.close();
    }
  });
});
