import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { parseSnpReport, verify } from '../../../src/attestation/index.ts';
import { createSimRoot, type SimRootMaterial, signSimReport } from '../../../src/attestation/sim/index.ts';
import { cvmBackend, cvmEvidence } from '../../../src/host/backends/cvm.ts';
import { encodeSnpCertTable, SNP_CERT_GUID } from '../../../src/host/backends/tsm/certs.ts';
import { TsmError, type TsmErrorCode } from '../../../src/host/backends/tsm/errors.ts';
import { readTdxQuote } from '../../../src/host/backends/tsm/tdx.ts';
import { CollateralClient } from '../../../src/host/collateral/index.ts';
import { cvmCollateralOptions } from '../../../src/host/keepldr/keepldr.ts';
import { decodeDcapCollateral, encodeDcapCollateral } from '../../../src/ratls/index.ts';
import {
  NEEDS_EVIDENCE,
  reportBytes,
  SNP_SAMPLES,
  sampleCerts,
  snpResults,
  timeInside,
} from '../../attestation/evidence.ts';
import { dcapQvlPcsRoutes, FakeServices, file } from '../collateral/fake-services.ts';
import { type FakeBlobs, type FakeRequest, FakeTsm, fakeTdxQuote } from './tsm/fake-tsm.ts';

const NOW = new Date('2026-03-01T12:00:00Z');
const MEASUREMENT = new Uint8Array(48).fill(0x3c);
const REPORT_DATA = Uint8Array.from({ length: 64 }, (_, i) => (i * 5) & 0xff);
let root: SimRootMaterial;

before(async () => {
  root = await createSimRoot({ now: NOW });
});

/** The simulated secure processor behind the fake sev_guest provider, with the host's certificate table. */
function simChip(request: FakeRequest): FakeBlobs {
  return {
    outblob: signSimReport(root, {
      reportData: request.inblob,
      measurement: MEASUREMENT,
      vmpl: request.privlevel,
    }),
    auxblob: encodeSnpCertTable([
      { guid: SNP_CERT_GUID.ARK, data: root.arkDer },
      { guid: SNP_CERT_GUID.VCEK, data: root.vcekDer },
      { guid: SNP_CERT_GUID.ASK, data: root.askDer },
    ]),
  };
}

async function rejects(promise: Promise<unknown>, code: TsmErrorCode, pattern?: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof TsmError, String(e));
    assert.equal(e.code, code, e.message);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

describe('cvmBackend()', () => {
  test('cvmBackend() hands over an SEV-SNP report and its VCEK chain that verify for the requested report_data', async () => {
    const fake = new FakeTsm({ generate: simChip });
    const backend = cvmBackend({ fs: fake });
    assert.equal(backend.name, 'cvm');
    const evidence = await backend.evidence(REPORT_DATA);
    assert.equal(evidence.kind, 'sev-snp');
    if (evidence.kind !== 'sev-snp') return;
    // VCEK first, then ASK and ARK, whatever the table's order.
    assert.deepEqual(evidence.certs, [root.vcekDer, root.askDer, root.arkDer]);
    const claims = verify(
      evidence,
      { trustSimulatedRoots: [root.fingerprint], reportData: REPORT_DATA },
      { now: NOW },
    );
    assert.equal(claims.measurement, Buffer.from(MEASUREMENT).toString('hex'));
    assert.equal(fake.guestRequests, 1);
    assert.equal(fake.dirs.size, 0);
  });

  test('cvmBackend() leaves certs empty when the host supplied no certificate table', async () => {
    for (const auxblob of [new Uint8Array(0), undefined]) {
      const fake = new FakeTsm({
        generate: (r) => {
          const blobs: FakeBlobs = { outblob: simChip(r).outblob };
          if (auxblob) blobs.auxblob = auxblob;
          return blobs;
        },
      });
      const evidence = await cvmBackend({ fs: fake }).evidence(REPORT_DATA);
      assert.deepEqual(evidence, {
        kind: 'sev-snp',
        report: evidence.kind === 'sev-snp' ? evidence.report : 0,
        certs: [],
      });
    }
  });

  test('cvmBackend() fetches the VCEK chain from the host cache when the hypervisor supplied no table', async () => {
    const fake = new FakeTsm({ generate: (r) => ({ outblob: simChip(r).outblob }) });
    const asked: Uint8Array[] = [];
    const evidence = await cvmBackend({
      fs: fake,
      snpCertificates: async (report) => {
        asked.push(report);
        return [root.vcekDer, root.askDer, root.arkDer];
      },
    }).evidence(REPORT_DATA);
    assert.equal(evidence.kind, 'sev-snp');
    if (evidence.kind !== 'sev-snp') return;
    assert.deepEqual(asked, [evidence.report]);
    const claims = verify(
      { kind: 'sev-snp', report: evidence.report, certs: evidence.certs },
      { trustSimulatedRoots: [root.fingerprint], reportData: REPORT_DATA },
      { now: NOW },
    );
    assert.equal(claims.kind, 'sev-snp');
  });

  test('cvmBackend() refuses a report made for other report_data', async () => {
    const other = new Uint8Array(64).fill(0xee);
    const fake = new FakeTsm({ generate: (r) => simChip({ ...r, inblob: other }) });
    await rejects(
      cvmBackend({ fs: fake }).evidence(REPORT_DATA),
      'ERR_TSM_REPORT_DATA_MISMATCH',
      /other report_data/,
    );
  });

  test('cvmBackend() refuses a truncated or padded report', async () => {
    for (const cut of [
      (b: Uint8Array) => b.subarray(0, 1183),
      (b: Uint8Array) => Uint8Array.from([...b, 0]),
    ]) {
      const fake = new FakeTsm({ generate: (r) => ({ outblob: cut(simChip(r).outblob) }) });
      await rejects(
        cvmBackend({ fs: fake }).evidence(REPORT_DATA),
        'ERR_TSM_OUTBLOB_MALFORMED',
        /SEV-SNP report/,
      );
    }
  });

  test('cvmBackend() refuses a stale generation', async () => {
    const fake = new FakeTsm({ generate: simChip });
    fake.after = (op, dir) => {
      if (op.op === 'read' && op.attr === 'auxblob' && dir) dir.writeGeneration++;
    };
    await rejects(cvmBackend({ fs: fake }).evidence(REPORT_DATA), 'ERR_TSM_INTERFERENCE');
  });

  test('cvmBackend() refuses a malformed certificate table', async () => {
    const fake = new FakeTsm({ generate: (r) => ({ ...simChip(r), auxblob: new Uint8Array(30).fill(1) }) });
    await rejects(cvmBackend({ fs: fake }).evidence(REPORT_DATA), 'ERR_TSM_AUXBLOB_MALFORMED');
  });

  test('cvmBackend() requests a privilege level and refuses a report made at another VMPL', async () => {
    const honest = new FakeTsm({ generate: simChip, privlevelFloor: 1 });
    const evidence = await cvmBackend({ fs: honest, privlevel: 2 }).evidence(REPORT_DATA);
    assert.equal(evidence.kind === 'sev-snp' && parseSnpReport(evidence.report).vmpl, 2);
    const deaf = new FakeTsm({ generate: (r) => simChip({ ...r, privlevel: 0 }) });
    await rejects(
      cvmBackend({ fs: deaf, privlevel: 1 }).evidence(REPORT_DATA),
      'ERR_TSM_REPORT_DATA_MISMATCH',
      /VMPL 0, not 1/,
    );
  });

  test('cvmBackend() sends the VLEK, not the VCEK, with a VLEK-signed report', async () => {
    const vlek = new Uint8Array([0x30, 3, 1, 2, 3]);
    const fake = new FakeTsm({
      generate: (r) => {
        const outblob = simChip(r).outblob;
        outblob[0x48] = 1 << 2; // signer info: SIGNING_KEY = VLEK
        return {
          outblob,
          auxblob: encodeSnpCertTable([
            { guid: SNP_CERT_GUID.VCEK, data: root.vcekDer },
            { guid: SNP_CERT_GUID.VLEK, data: vlek },
            { guid: SNP_CERT_GUID.ASK, data: root.askDer },
          ]),
        };
      },
    });
    const evidence = await cvmBackend({ fs: fake }).evidence(REPORT_DATA);
    assert.deepEqual(evidence.kind === 'sev-snp' && evidence.certs, [vlek, root.askDer]);
  });

  test('cvmBackend() hands over a TDX quote that binds the report_data', async () => {
    const fake = new FakeTsm({
      provider: 'tdx_guest',
      generate: (r) => ({ outblob: fakeTdxQuote({ version: 5, bodyType: 3, reportData: r.inblob }) }),
    });
    const evidence = await cvmBackend({ fs: fake }).evidence(REPORT_DATA);
    assert.equal(evidence.kind, 'tdx');
    if (evidence.kind !== 'tdx') return;
    assert.deepEqual(readTdxQuote(evidence.quote).reportData, REPORT_DATA);
    assert.deepEqual(
      fake.log.map((o) => o.attr).filter((a) => a === 'auxblob'),
      [],
    );

    const lying = new FakeTsm({ provider: 'tdx_guest', generate: () => ({ outblob: fakeTdxQuote() }) });
    await rejects(
      cvmBackend({ fs: lying }).evidence(REPORT_DATA),
      'ERR_TSM_REPORT_DATA_MISMATCH',
      /TDX quote/,
    );
    const cut = new FakeTsm({
      provider: 'tdx_guest',
      generate: (r) => ({ outblob: fakeTdxQuote({ reportData: r.inblob }).subarray(0, 700) }),
    });
    await rejects(cvmBackend({ fs: cut }).evidence(REPORT_DATA), 'ERR_TSM_OUTBLOB_MALFORMED');
  });

  test('cvmBackend() refuses another provider before making any request', async () => {
    const fake = new FakeTsm({ provider: 'arm_cca_guest', generate: simChip });
    await rejects(cvmBackend({ fs: fake }).evidence(REPORT_DATA), 'ERR_TSM_PROVIDER_UNSUPPORTED');
    assert.equal(fake.guestRequests, 0);
  });

  test('cvmBackend() makes concurrent requests one after the other, each in its own directory', async () => {
    const fake = new FakeTsm({ generate: simChip });
    const backend = cvmBackend({ fs: fake });
    const data = [1, 2, 3].map((n) => new Uint8Array(64).fill(n));
    fake.before = (op) => {
      if (op.op === 'mkdir') assert.equal(fake.dirs.size, 0, 'a request started while another was open');
    };
    const [bad, ...good] = await Promise.allSettled([
      backend.evidence(new Uint8Array(3)),
      ...data.map((d) => backend.evidence(d)),
    ]);
    assert.equal(bad!.status, 'rejected');
    good.forEach((r, i) => {
      assert.equal(r.status, 'fulfilled');
      if (r.status === 'fulfilled' && r.value.kind === 'sev-snp') {
        assert.deepEqual(parseSnpReport(r.value.report).reportData, data[i]);
      }
    });
    assert.equal(new Set(fake.log.filter((o) => o.op === 'mkdir').map((o) => o.dir)).size, 3);
  });

  test('cvmBackend() passes real SEV-SNP reports through and they verify', {
    skip: NEEDS_EVIDENCE,
  }, async () => {
    const results = snpResults();
    for (const sample of SNP_SAMPLES) {
      const report = reportBytes(sample.report);
      const parsed = parseSnpReport(report);
      const { vek, ask, ark } = sampleCerts(sample);
      const fake = new FakeTsm({
        generate: () => ({
          outblob: report,
          auxblob: encodeSnpCertTable([
            { guid: parsed.signingKey === 'vlek' ? SNP_CERT_GUID.VLEK : SNP_CERT_GUID.VCEK, data: vek },
            { guid: SNP_CERT_GUID.ASK, data: ask },
            { guid: SNP_CERT_GUID.ARK, data: ark },
          ]),
        }),
      });
      const evidence = await cvmBackend({ fs: fake }).evidence(parsed.reportData);
      assert.equal(evidence.kind, 'sev-snp', sample.report);
      if (evidence.kind !== 'sev-snp') continue;
      assert.deepEqual(evidence.report, report, sample.report);
      assert.deepEqual(evidence.certs, [vek, ask, ark], sample.report);
      const now = timeInside(results[sample.report]!);
      const claims = verify(
        evidence,
        { allowDebug: true, allowMigrationAgent: true, reportData: parsed.reportData },
        { now },
      );
      assert.equal(claims.reportData, Buffer.from(parsed.reportData).toString('hex'), sample.report);

      const wrong = Uint8Array.from(parsed.reportData);
      wrong[0]! ^= 1;
      await rejects(cvmBackend({ fs: fake }).evidence(wrong), 'ERR_TSM_REPORT_DATA_MISMATCH');
    }
  });
});

describe("cvmBackend() with the host's collateral cache", { skip: NEEDS_EVIDENCE }, () => {
  test("a real TDX quote goes with its collateral from the host's PCS cache, and verifies with it", async () => {
    // dcap-qvl's TDX sample: a 5006-byte buffer, the quote then zero padding, as the kernel hands it over.
    const quote = file('dcap-qvl/tdx_quote');
    const at = new Date('2025-07-01T00:00:00Z');
    const pcs = await FakeServices.start(dcapQvlPcsRoutes('tdx_quote', 'tdx', 'b0c06f000000', 'platform'));
    const warnings: string[] = [];
    try {
      const client = new CollateralClient({
        pcsUrl: pcs.url,
        intelRootCaCrlUrl: `${pcs.url}/IntelSGXRootCA.der`,
        timeoutMs: 2_000,
        retryDelayMs: 10,
        now: () => at,
      });
      const fake = new FakeTsm({ provider: 'tdx_guest', generate: () => ({ outblob: quote }) });
      const backend = cvmBackend({
        fs: fake,
        ...cvmCollateralOptions(
          () => client,
          (m) => warnings.push(m),
        ),
      });
      const evidence = await backend.evidence(readTdxQuote(quote).reportData);
      assert.ok(evidence.kind === 'tdx' && evidence.collateral !== undefined);
      assert.equal(warnings.length, 0);
      // As the Keep's certificate carries it and the client reads it back.
      const carried = decodeDcapCollateral(encodeDcapCollateral(evidence.collateral));
      const claims = verify({ kind: 'tdx', quote: evidence.quote, collateral: carried }, {}, { now: at });
      assert.ok(claims.kind === 'tdx');
      assert.equal(claims.collateralChecked, true);
      assert.equal(claims.tcbStatus, 'UpToDate');
      assert.equal(pcs.requests.length, 4);

      // PCS gone: the quote still goes, without collateral, and the operator hears why.
      await pcs.close();
      const offline = new CollateralClient({
        pcsUrl: pcs.url,
        intelRootCaCrlUrl: `${pcs.url}/x`,
        timeoutMs: 500,
        retryDelayMs: 1,
      });
      const alone = await cvmBackend({
        fs: fake,
        ...cvmCollateralOptions(
          () => offline,
          (m) => warnings.push(m),
        ),
      }).evidence(readTdxQuote(quote).reportData);
      assert.ok(alone.kind === 'tdx' && alone.collateral === undefined);
      assert.match(warnings[0] ?? '', /goes without collateral/);
    } finally {
      await pcs.close().catch(() => {});
    }
  });
});

describe('cvmEvidence()', () => {
  test('cvmEvidence() refuses a report from a provider it does not know', () => {
    assert.throws(
      () => cvmEvidence({ provider: 'x', outblob: new Uint8Array(0), generation: 1 }, REPORT_DATA),
      (e: unknown) => e instanceof TsmError && e.code === 'ERR_TSM_PROVIDER_UNSUPPORTED',
    );
  });

  test('cvmEvidence() copies the outblob it hands over', () => {
    const outblob = fakeTdxQuote({ reportData: REPORT_DATA });
    const evidence = cvmEvidence({ provider: 'tdx_guest', outblob, generation: 1 }, REPORT_DATA);
    outblob[0] = 9;
    assert.equal(evidence.kind === 'tdx' && evidence.quote[0], 4);
  });
});
