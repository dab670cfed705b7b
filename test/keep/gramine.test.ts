import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AttestationError } from '../../src/attestation/errors.ts';
import {
  createSimIntelPlatform,
  makeSimSgxQuote,
  simSgxCollateral,
} from '../../src/attestation/sim/index.ts';
import { type AttestationFs, GramineEvidence } from '../../src/keep/gramine.ts';
import { decodeDcapCollateral, encodeDcapCollateral } from '../../src/ratls/cmw.ts';

const platform = createSimIntelPlatform();
const MRENCLAVE = new Uint8Array(32).fill(0x3e);
const COLLATERAL = encodeDcapCollateral(simSgxCollateral(platform));

/**
 * A fake /dev/attestation: `attestation_type` as given, `user_report_data` remembered, `quote` made by the
 * simulated QE over what was written (or over what `quoteFor` says).
 */
class FakeTree implements AttestationFs {
  readonly written: string[] = [];
  #userReportData = new Uint8Array(64);
  constructor(
    readonly type = 'dcap\n',
    readonly quoteFor: (reportData: Uint8Array) => Uint8Array = (reportData) =>
      makeSimSgxQuote(platform, { reportData, mrEnclave: MRENCLAVE }),
  ) {}
  async readFile(path: string): Promise<Uint8Array> {
    if (path === '/dev/attestation/attestation_type') return new TextEncoder().encode(this.type);
    if (path === '/dev/attestation/quote') return this.quoteFor(this.#userReportData);
    throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
  }
  async writeFile(path: string, data: Uint8Array): Promise<void> {
    this.written.push(path);
    if (path !== '/dev/attestation/user_report_data') throw new Error(`EACCES: ${path}`);
    this.#userReportData = Uint8Array.from(data);
  }
}

function source(fs: AttestationFs, asked: Uint8Array[] = []): GramineEvidence {
  return new GramineEvidence({
    fs,
    collateral: async (quote) => {
      asked.push(quote);
      return COLLATERAL;
    },
  });
}

describe('the gramine evidence source', () => {
  test('writes report_data to user_report_data, reads the quote, and takes its collateral from the host', async () => {
    const fs = new FakeTree();
    const asked: Uint8Array[] = [];
    const reportData = new Uint8Array(64).fill(0x5a);
    const e = await source(fs, asked).evidence(reportData);
    assert.equal(e.kind, 'sgx');
    assert.deepEqual(e.certs, []);
    assert.deepEqual(fs.written, ['/dev/attestation/user_report_data']);
    assert.deepEqual(asked, [e.report]);
    assert.deepEqual(decodeDcapCollateral(e.collateral!), decodeDcapCollateral(COLLATERAL));
    // The quote binds what was written.
    assert.deepEqual(e.report.subarray(48 + 320, 48 + 384), reportData);
  });

  test('requests one at a time, each with its own report_data', async () => {
    const s = source(new FakeTree());
    const datas = [1, 2, 3].map((n) => new Uint8Array(64).fill(n));
    const out = await Promise.all(datas.map((d) => s.evidence(d)));
    for (const [i, e] of out.entries()) {
      assert.deepEqual(e.report.subarray(48 + 320, 48 + 384), datas[i]);
    }
  });

  test('an attestation_type other than dcap is a clear error, and nothing is written', async () => {
    for (const type of ['epid\n', 'none', '']) {
      const fs = new FakeTree(type);
      await assert.rejects(source(fs).evidence(new Uint8Array(64)), (e: unknown) => {
        assert.ok(e instanceof AttestationError);
        assert.equal(e.code, 'ERR_EVIDENCE_UNSUPPORTED');
        assert.match(e.message, /attestation_type is '.*', not dcap/);
        return true;
      });
      assert.deepEqual(fs.written, []);
    }
  });

  test('a quote whose REPORTDATA is not what was written is refused, and no collateral is asked for', async () => {
    const fs = new FakeTree('dcap', () =>
      makeSimSgxQuote(platform, { reportData: new Uint8Array(64).fill(0xee), mrEnclave: MRENCLAVE }),
    );
    const asked: Uint8Array[] = [];
    await assert.rejects(source(fs, asked).evidence(new Uint8Array(64).fill(1)), (e: unknown) => {
      assert.ok(e instanceof AttestationError);
      assert.equal(e.code, 'ERR_REPORT_DATA_MISMATCH');
      return true;
    });
    assert.deepEqual(asked, []);
  });

  test('a quote file that is no SGX quote is refused as malformed', async () => {
    const fs = new FakeTree('dcap', () => new Uint8Array(100));
    await assert.rejects(source(fs).evidence(new Uint8Array(64)), { code: 'ERR_EVIDENCE_MALFORMED' });
  });

  test('a missing attestation interface (not in an enclave) says which file could not be read', async () => {
    const s = new GramineEvidence({ root: '/nonexistent/attestation', collateral: async () => undefined });
    await assert.rejects(
      s.evidence(new Uint8Array(64)),
      /reading \/nonexistent\/attestation\/attestation_type failed/,
    );
  });

  test('report_data must be 64 bytes', async () => {
    await assert.rejects(source(new FakeTree()).evidence(new Uint8Array(32)), RangeError);
  });
});
