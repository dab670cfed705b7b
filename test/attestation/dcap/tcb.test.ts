import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  parseQeIdentity,
  parseTcbInfo,
  splitPcsResponse,
  type TcbLevel,
  type TcbStatus,
} from '../../../src/attestation/dcap/collateral.ts';
import { readPckExtension } from '../../../src/attestation/dcap/pck.ts';
import { parseDcapQuote, type TdxQuote } from '../../../src/attestation/dcap/quote.ts';
import { converge, evaluateTcb, selectTcbLevels } from '../../../src/attestation/dcap/tcb.ts';
import { AttestationError, type AttestationErrorCode } from '../../../src/attestation/errors.ts';
import { parseCertificate } from '../../../src/attestation/x509.ts';
import { collateralJson, dcapResults, evidenceText, NEEDS_EVIDENCE, quoteBytes } from '../evidence.ts';
import { buildQuote, chainPem, makePki, PLATFORM, qeBody, qeIdentity, tcbInfo, tdBody } from './forge.ts';

const results = NEEDS_EVIDENCE === false ? dcapResults() : {};

function rejects(fn: () => unknown, code: AttestationErrorCode, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AttestationError, String(e));
    assert.equal(e.code, code, e.message);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  });
}

function real(quotePath: string) {
  const quote = parseDcapQuote(quoteBytes(quotePath));
  return { quote, pck: readPckExtension(parseCertificate(quote.pckChain[0]!)) };
}

describe('converge()', () => {
  test("converge() follows QVL's table for QE and TDX module statuses", () => {
    const table: [TcbStatus, TcbStatus, TcbStatus][] = [
      ['UpToDate', 'UpToDate', 'UpToDate'],
      ['SWHardeningNeeded', 'UpToDate', 'SWHardeningNeeded'],
      ['UpToDate', 'OutOfDate', 'OutOfDate'],
      ['SWHardeningNeeded', 'OutOfDate', 'OutOfDate'],
      ['ConfigurationNeeded', 'OutOfDate', 'OutOfDateConfigurationNeeded'],
      ['ConfigurationAndSWHardeningNeeded', 'OutOfDate', 'OutOfDateConfigurationNeeded'],
      ['OutOfDate', 'OutOfDate', 'OutOfDate'],
      ['OutOfDateConfigurationNeeded', 'OutOfDate', 'OutOfDateConfigurationNeeded'],
      ['Revoked', 'OutOfDate', 'Revoked'],
      ['UpToDate', 'Revoked', 'Revoked'],
      ['ConfigurationNeeded', 'Revoked', 'Revoked'],
    ];
    for (const [platform, part, expected] of table)
      assert.equal(converge(platform, part), expected, `${platform} + ${part}`);
  });
});

describe('selectTcbLevels()', () => {
  const level = (sgx: number[], pceSvn: number, tdx: number[] | undefined, status: TcbStatus): TcbLevel => ({
    sgxComponents: sgx.concat(new Array(16 - sgx.length).fill(0)),
    pceSvn,
    ...(tdx === undefined ? {} : { tdxComponents: tdx.concat(new Array(16 - tdx.length).fill(0)) }),
    tcbDate: new Date(0),
    tcbStatus: status,
    advisoryIds: [],
  });

  test('selectTcbLevels() takes the first level every SGX component and the PCE SVN meet', () => {
    const levels = [
      level([5, 5], 13, undefined, 'UpToDate'),
      level([4, 5], 13, undefined, 'SWHardeningNeeded'),
      level([1, 1], 5, undefined, 'OutOfDate'),
    ];
    const pck = (c: number[], pceSvn: number) => ({
      cpuSvnComponents: c.concat(new Array(16 - c.length).fill(0)),
      pceSvn,
    });
    assert.equal(selectTcbLevels(levels, pck([5, 5], 13)).sgx?.tcbStatus, 'UpToDate');
    assert.equal(selectTcbLevels(levels, pck([9, 9], 20)).sgx?.tcbStatus, 'UpToDate');
    assert.equal(selectTcbLevels(levels, pck([4, 9], 13)).sgx?.tcbStatus, 'SWHardeningNeeded');
    // One component lower than a level is enough to fall below it, however high the others are.
    assert.equal(selectTcbLevels(levels, pck([5, 4], 13)).sgx?.tcbStatus, 'OutOfDate');
    assert.equal(selectTcbLevels(levels, pck([5, 5], 12)).sgx?.tcbStatus, 'OutOfDate');
    assert.equal(selectTcbLevels(levels, pck([0, 9], 20)).sgx, undefined);
  });

  test('selectTcbLevels() skips TEE_TCB_SVN bytes 0 and 1 when the TD reports a module version', () => {
    const levels = [level([1], 1, [9, 9, 3], 'UpToDate'), level([1], 1, [0, 0, 2], 'OutOfDate')];
    const pck = { cpuSvnComponents: new Array(16).fill(1), pceSvn: 1 };
    const svn = (...b: number[]) => Uint8Array.from(b.concat(new Array(16 - b.length).fill(0)));
    // Module version 1: bytes 0/1 belong to the module identity, so only byte 2 is compared.
    assert.equal(selectTcbLevels(levels, pck, svn(1, 1, 3)).tdx?.tcbStatus, 'UpToDate');
    // Module version 0: every byte is compared, and 1 < 9 drops to the second level.
    assert.equal(selectTcbLevels(levels, pck, svn(1, 0, 3)).tdx?.tcbStatus, 'OutOfDate');
    const none = selectTcbLevels(levels, pck, svn(1, 1, 1));
    assert.equal(none.tdx, undefined);
    assert.equal(none.sgx?.tcbStatus, 'UpToDate');
  });
});

describe('evaluateTcb() on real collateral', () => {
  test('evaluateTcb() gives trustee tdx_quote_6 OutOfDate, module TDX_03 and QE up to date', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const { quote, pck } = real('trustee/tdx_quote_6.dat');
    const info = parseTcbInfo(splitPcsResponse(evidenceText('trustee/tcbInfo.json'), 'tcbInfo').body);
    const qe = parseQeIdentity(
      splitPcsResponse(evidenceText('trustee/enclaveIdentity.json'), 'enclaveIdentity').body,
    );
    const e = evaluateTcb(quote, pck, info, qe);
    const checks = results['trustee/tdx_quote_6.dat']!.checks as Record<string, Record<string, unknown>>;
    assert.equal(e.status, 'OutOfDate');
    assert.equal(e.platform.status, checks.tcb_level!.status);
    assert.equal(e.platform.tcbDate.toISOString().replace('.000', ''), checks.tcb_level!.tcbDate);
    assert.deepEqual(
      { id: e.module?.id, isvsvn: e.module?.isvSvn, status: e.module?.status },
      checks.tdx_module_identity,
    );
    assert.equal(e.qe.status, 'UpToDate');
  });

  for (const name of ['multi.xeon', 'single.i5']) {
    const path = `enarx-steward/icelake.signed.tcb.crl.${name}.quote.bin`;
    test(`selectTcbLevels() gives ${path} the level RESULTS.json names`, { skip: NEEDS_EVIDENCE }, () => {
      const { pck } = real(path);
      const info = parseTcbInfo(
        splitPcsResponse(evidenceText(`enarx-steward/icelake.signed.tcb.crl.${name}.tcbinfo.json`), 'tcbInfo')
          .body,
      );
      const level = selectTcbLevels(info.tcbLevels, pck).sgx!;
      const expected = (results[path]!.checks as Record<string, Record<string, unknown>>).tcb_level!;
      assert.equal(level.tcbStatus, expected.status);
      assert.deepEqual(level.advisoryIds, expected.advisoryIDs);
    });
  }

  test('evaluateTcb() gives the dcap-qvl SGX quote ConfigurationAndSWHardeningNeeded with two advisories', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const { quote, pck } = real('dcap-qvl/sgx_quote');
    const json = collateralJson('dcap-qvl/sgx_quote_collateral.json');
    const e = evaluateTcb(quote, pck, parseTcbInfo(json.tcb_info!), parseQeIdentity(json.qe_identity!));
    assert.equal(e.status, 'ConfigurationAndSWHardeningNeeded');
    assert.deepEqual(e.advisoryIds, ['INTEL-SA-00289', 'INTEL-SA-00615']);
    assert.equal(e.module, undefined);
  });

  test('evaluateTcb() finds no level for tdx_quote_outdated: its SEAMLDR SVN is below every level', {
    skip: NEEDS_EVIDENCE,
  }, () => {
    const { quote, pck } = real('dcap-qvl/tdx_quote_outdated');
    const json = collateralJson('dcap-qvl/tdx_quote_outdated_collateral.json');
    rejects(
      () => evaluateTcb(quote, pck, parseTcbInfo(json.tcb_info!), parseQeIdentity(json.qe_identity!)),
      'ERR_TCB_NOT_SUPPORTED',
    );
  });

  test('evaluateTcb() refuses collateral of another platform or TEE', { skip: NEEDS_EVIDENCE }, () => {
    const tdx = real('dcap-qvl/tdx_quote');
    const near = collateralJson('dcap-qvl/near_quote_collateral.json');
    rejects(
      () => evaluateTcb(tdx.quote, tdx.pck, parseTcbInfo(near.tcb_info!), parseQeIdentity(near.qe_identity!)),
      'ERR_FMSPC_MISMATCH',
      /20a06f000000/,
    );
    const sgx = collateralJson('dcap-qvl/sgx_quote_collateral.json');
    rejects(
      () => evaluateTcb(tdx.quote, tdx.pck, parseTcbInfo(sgx.tcb_info!), parseQeIdentity(near.qe_identity!)),
      'ERR_COLLATERAL_INVALID',
      /TCB info is for SGX/,
    );
    rejects(
      () => evaluateTcb(tdx.quote, tdx.pck, parseTcbInfo(near.tcb_info!), parseQeIdentity(sgx.qe_identity!)),
      'ERR_COLLATERAL_INVALID',
      /QE identity is for QE/,
    );
  });
});

describe('evaluateTcb() on factory quotes', () => {
  const pki = makePki();
  const pem = chainPem(pki.pck.der, pki.pckCa.der, pki.root.der);
  const pck = readPckExtension(parseCertificate(pki.pck.der));
  const tdxQuote = (body: Uint8Array, qeSvn = 8) =>
    parseDcapQuote(
      buildQuote({ version: 4, body, qeReport: qeBody('tdx', qeSvn), pck: pki.pck, chainPem: pem }),
    ) as TdxQuote;
  const svn16 = (...b: number[]) => b.concat(new Array(16 - b.length).fill(0));
  const module = (id: string, levels: [number, string, string[]?][], mrsigner = '00'.repeat(48)) => ({
    id,
    mrsigner,
    attributes: '00'.repeat(8),
    attributesMask: 'FF'.repeat(8),
    tcbLevels: levels.map(([isvsvn, tcbStatus, advisoryIDs]) => ({
      tcb: { isvsvn },
      tcbDate: '2024-01-01T00:00:00Z',
      tcbStatus,
      ...(advisoryIDs ? { advisoryIDs } : {}),
    })),
  });
  const info = (status: string, identities: object[], advisoryIDs?: string[]) =>
    parseTcbInfo(
      JSON.stringify(
        tcbInfo({
          id: 'TDX',
          levels: [
            {
              sgx: PLATFORM.components,
              pcesvn: 13,
              tdx: svn16(0, 0, 3),
              status,
              ...(advisoryIDs ? { advisoryIDs } : {}),
            },
          ],
          tdxModuleIdentities: identities,
        }),
      ),
    );
  const qe = (levels: { isvsvn: number; status: string; advisoryIDs?: string[] }[]) =>
    parseQeIdentity(JSON.stringify(qeIdentity({ id: 'TD_QE', levels })));
  const upToDateQe = qe([{ isvsvn: 8, status: 'UpToDate' }]);
  const body = (teeTcbSvn: number[], extra: Parameters<typeof tdBody>[0] = {}) =>
    tdBody({ teeTcbSvn: Uint8Array.from(svn16(...teeTcbSvn)), ...extra });

  test('evaluateTcb() converges platform, module and QE statuses and joins their advisories', () => {
    const identities = [
      module('TDX_01', [
        [6, 'UpToDate'],
        [2, 'OutOfDate', ['SA-M']],
      ]),
    ];
    const quote = tdxQuote(body([2, 1, 3]), 6);
    const e = evaluateTcb(
      quote,
      pck,
      info('ConfigurationNeeded', identities, ['SA-P']),
      qe([
        { isvsvn: 8, status: 'UpToDate' },
        { isvsvn: 5, status: 'OutOfDate', advisoryIDs: ['SA-Q', 'SA-P'] },
      ]),
    );
    assert.equal(e.platform.status, 'ConfigurationNeeded');
    assert.equal(e.module?.status, 'OutOfDate');
    assert.equal(e.qe.status, 'OutOfDate');
    assert.equal(e.status, 'OutOfDateConfigurationNeeded');
    assert.deepEqual(e.advisoryIds, ['SA-P', 'SA-M', 'SA-Q']);
    assert.equal(
      evaluateTcb(tdxQuote(body([6, 1, 3])), pck, info('UpToDate', identities), upToDateQe).status,
      'UpToDate',
    );
  });

  test('evaluateTcb() uses the base tdxModule when the TD reports module version 0', () => {
    const e = evaluateTcb(tdxQuote(body([0, 0, 3])), pck, info('UpToDate', []), upToDateQe);
    assert.equal(e.module, undefined);
    assert.equal(e.status, 'UpToDate');
  });

  test('evaluateTcb() refuses a TDX module the TCB info does not describe', () => {
    const identities = [module('TDX_01', [[6, 'UpToDate']])];
    rejects(
      () => evaluateTcb(tdxQuote(body([6, 3, 3])), pck, info('UpToDate', identities), upToDateQe),
      'ERR_TDX_MODULE_MISMATCH',
      /TDX_03/,
    );
    const signer = tdxQuote(body([6, 1, 3], { mrSignerSeam: new Uint8Array(48).fill(1) }));
    rejects(
      () => evaluateTcb(signer, pck, info('UpToDate', identities), upToDateQe),
      'ERR_TDX_MODULE_MISMATCH',
      /MRSIGNERSEAM/,
    );
    const attributes = tdxQuote(body([6, 1, 3], { seamAttributes: Uint8Array.of(1) }));
    rejects(
      () => evaluateTcb(attributes, pck, info('UpToDate', identities), upToDateQe),
      'ERR_TDX_MODULE_MISMATCH',
      /SEAMATTRIBUTES/,
    );
    rejects(
      () => evaluateTcb(tdxQuote(body([1, 1, 3])), pck, info('UpToDate', identities), upToDateQe),
      'ERR_TCB_NOT_SUPPORTED',
      /ISVSVN 1/,
    );
  });

  test('evaluateTcb() refuses a QE its identity does not describe', () => {
    const quote = tdxQuote(body([0, 0, 3]));
    const base = qeIdentity({ id: 'TD_QE' });
    const parse = (o: object) => parseQeIdentity(JSON.stringify({ ...base, ...o }));
    const i = info('UpToDate', []);
    rejects(
      () => evaluateTcb(quote, pck, i, parse({ mrsigner: 'AA'.repeat(32) })),
      'ERR_QE_IDENTITY_MISMATCH',
      /MRSIGNER/,
    );
    rejects(
      () => evaluateTcb(quote, pck, i, parse({ isvprodid: 1 })),
      'ERR_QE_IDENTITY_MISMATCH',
      /ISVPRODID/,
    );
    rejects(
      () => evaluateTcb(quote, pck, i, parse({ miscselect: '00000001' })),
      'ERR_QE_IDENTITY_MISMATCH',
      /MISCSELECT/,
    );
    // The QE report's FLAGS are 0x15 (INIT, MODE64BIT, PROVISIONKEY); asking for DEBUG (0x02) under the mask fails.
    rejects(
      () => evaluateTcb(quote, pck, i, parse({ attributes: '13000000000000000000000000000000' })),
      'ERR_QE_IDENTITY_MISMATCH',
      /ATTRIBUTES/,
    );
    rejects(
      () => evaluateTcb(quote, pck, i, qe([{ isvsvn: 9, status: 'UpToDate' }])),
      'ERR_TCB_NOT_SUPPORTED',
      /ISVSVN 8/,
    );
    assert.equal(evaluateTcb(quote, pck, i, qe([{ isvsvn: 2, status: 'Revoked' }])).status, 'Revoked');
  });

  test('evaluateTcb() refuses a PCE-ID the TCB info is not for', () => {
    const quote = tdxQuote(body([0, 0, 3]));
    const other = parseTcbInfo(
      JSON.stringify(
        tcbInfo({
          id: 'TDX',
          pceId: '0001',
          levels: [{ sgx: PLATFORM.components, pcesvn: 13, tdx: svn16(), status: 'UpToDate' }],
        }),
      ),
    );
    rejects(() => evaluateTcb(quote, pck, other, upToDateQe), 'ERR_FMSPC_MISMATCH', /PCE-ID/);
  });
});
