import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parse as parseToml } from 'smol-toml';
import { verifyDcapQuote } from '../../src/attestation/dcap/verify.ts';
import { AttestationError, type AttestationErrorCode } from '../../src/attestation/errors.ts';
import { checkDcapPolicy, checkSnpPolicy, parsePolicy } from '../../src/attestation/policy.ts';
import {
  assembleSnpReport,
  encodeSnpReportBody,
  type SnpReportFields,
} from '../../src/attestation/snp/encode.ts';
import { parseSnpReport } from '../../src/attestation/snp/report.ts';
import { snpTcb } from '../../src/attestation/snp/tcb.ts';
import type { SnpVerified } from '../../src/attestation/snp/verify.ts';
import {
  collateral,
  PLATFORM,
  qeIdentity,
  SCENARIO_NOW,
  scenario,
  sgxBody,
  tcbInfo,
  tdBody,
} from './dcap/forge.ts';

const M1 = 'ab'.repeat(48);
const M2 = 'cd'.repeat(48);

function rejects(fn: () => unknown, code: AttestationErrorCode, field?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AttestationError, String(e));
    assert.equal(e.code, code, e.message);
    if (field !== undefined)
      assert.ok(
        e.field === field ||
          (e.field?.startsWith(field) === true && /^[[.]/.test(e.field.slice(field.length))),
        `field ${e.field}`,
      );
    return true;
  });
}

/** A verified-looking SEV-SNP result for exercising the policy alone (the chain is tested elsewhere). */
function verified(overrides: Partial<SnpReportFields> = {}): SnpVerified {
  const tcb = snpTcb({ bootloader: 4, tee: 0, snp: 24, microcode: 219 });
  const fields: SnpReportFields = {
    version: 3,
    guestSvn: 5,
    policy: 0x30000n,
    familyId: new Uint8Array(16),
    imageId: new Uint8Array(16),
    vmpl: 0,
    signatureAlgo: 1,
    currentTcb: tcb,
    platformInfo: 1n,
    authorKeyEn: false,
    maskChipKey: false,
    signingKey: 'vcek',
    reportData: new Uint8Array(64).fill(7),
    measurement: new Uint8Array(48).fill(0xab),
    hostData: new Uint8Array(32).fill(0x11),
    idKeyDigest: new Uint8Array(48).fill(0x22),
    authorKeyDigest: new Uint8Array(48),
    reportId: new Uint8Array(32),
    reportIdMa: new Uint8Array(32).fill(0xff),
    reportedTcb: tcb,
    cpuid: { family: 0x19, model: 1, stepping: 1 },
    chipId: new Uint8Array(64).fill(1),
    committedTcb: tcb,
    currentVersion: '1.55.29',
    committedVersion: '1.55.29',
    launchTcb: tcb,
    ...overrides,
  };
  const report = parseSnpReport(assembleSnpReport(encodeSnpReportBody(fields), new Uint8Array(96)));
  return {
    report,
    product: 'Milan',
    simulated: false,
    rootFingerprint: '00'.repeat(32),
    vek: { kind: 'vcek', structVersion: 0, productName: 'Milan-B0', tcb: { ...tcb } },
    crlChecked: false,
  };
}

describe('parsePolicy()', () => {
  test('parsePolicy() normalises hex and turns reportData into bytes', () => {
    const p = parsePolicy({
      measurements: [M1.toUpperCase()],
      reportData: '0A'.repeat(64),
      hostData: 'FF'.repeat(32),
      trustSimulatedRoots: ['AA'.repeat(32)],
    });
    assert.deepEqual(p.measurements, [M1]);
    assert.deepEqual(p.reportData, new Uint8Array(64).fill(10));
    assert.equal(p.hostData, 'ff'.repeat(32));
    assert.deepEqual(p.trustSimulatedRoots, ['aa'.repeat(32)]);
    assert.ok(Object.isFrozen(p));
  });

  test('parsePolicy() is idempotent on its own output', () => {
    const p = parsePolicy({ measurements: [M1], reportData: '01'.repeat(64), minTcb: { snp: 3 }, vmpl: 0 });
    assert.deepEqual(parsePolicy(p), p);
  });

  test('parsePolicy() reads a TOML policy', () => {
    const toml = parseToml(`
measurements = ["${M1}", "${M2}"]
allowDebug = false
minGuestSvn = 2
[minTcb]
bootloader = 4
microcode = 219
`);
    const p = parsePolicy(toml);
    assert.deepEqual(p.measurements, [M1, M2]);
    assert.deepEqual(p.minTcb, { bootloader: 4, microcode: 219 });
    assert.equal(p.minGuestSvn, 2);
  });

  test('parsePolicy() accepts integers given as bigint', () => {
    assert.deepEqual(parsePolicy({ minTcb: { snp: 24n }, vmpl: 1n }), { minTcb: { snp: 24 }, vmpl: 1 });
  });

  test('parsePolicy() rejects an unknown field with ERR_POLICY_UNSUPPORTED', () => {
    rejects(() => parsePolicy({ measurement: [M1] }), 'ERR_POLICY_UNSUPPORTED', 'measurement');
    rejects(() => parsePolicy({ minTcb: { ucode: 1 } }), 'ERR_POLICY_UNSUPPORTED', 'minTcb.ucode');
  });

  test('parsePolicy() rejects malformed values with ERR_POLICY_INVALID', () => {
    const bad: Record<string, unknown>[] = [
      { measurements: [M1.slice(2)] },
      { measurements: ['zz'.repeat(48)] },
      { measurements: [] },
      { measurements: M1 },
      { reportData: '00'.repeat(63) },
      { reportData: new Uint8Array(65) },
      { allowDebug: 'no' },
      { allowMigrationAgent: 1 },
      { minTcb: { snp: 256 } },
      { minTcb: { snp: -1 } },
      { minTcb: [1] },
      { minGuestSvn: 1.5 },
      { vmpl: 4 },
      { hostData: '00'.repeat(31) },
      { idKeyDigests: ['00'] },
      { authorKeyDigests: [null] },
      { trustSimulatedRoots: ['00'.repeat(48)] },
    ];
    for (const b of bad) rejects(() => parsePolicy(b), 'ERR_POLICY_INVALID', Object.keys(b)[0]);
    for (const b of [null, [], 'policy', 1, new Uint8Array(1), new Map()])
      rejects(() => parsePolicy(b), 'ERR_POLICY_INVALID');
  });

  test('parsePolicy() on arbitrary values throws only AttestationError', () => {
    const onlyOurs = (value: unknown) => {
      try {
        parsePolicy(value);
      } catch (e) {
        if (!(e instanceof AttestationError)) throw e;
      }
    };
    fc.assert(fc.property(fc.anything({ withBigInt: true, withTypedArray: true, withMap: true }), onlyOurs), {
      numRuns: 500,
    });
    const field = fc.constantFrom(
      'measurements',
      'reportData',
      'allowDebug',
      'allowMigrationAgent',
      'minTcb',
      'minGuestSvn',
      'vmpl',
      'hostData',
      'idKeyDigests',
      'authorKeyDigests',
      'trustSimulatedRoots',
      'mrEnclaves',
      'mrSigners',
      'minIsvSvn',
      'mrTds',
      'rtmrs',
      'acceptedTcbStatuses',
      'requireCollateral',
    );
    const hex = (minLength: number, maxLength: number) =>
      fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEFg'), minLength, maxLength });
    const value = fc.oneof(
      fc.anything(),
      hex(0, 130),
      fc.array(hex(94, 98)),
      fc.record({ snp: fc.integer({ min: -5, max: 300 }), fmc: fc.anything() }, { requiredKeys: [] }),
      fc.record({ '0': fc.array(hex(94, 98)), '3': fc.anything(), '4': fc.anything() }, { requiredKeys: [] }),
      fc.array(fc.constantFrom('UpToDate', 'OutOfDate', 'Revoked', 'Fine', 3)),
    );
    fc.assert(fc.property(fc.dictionary(field, value), onlyOurs), { numRuns: 500 });
  });
});

describe('checkSnpPolicy()', () => {
  test('checkSnpPolicy() accepts a report satisfying every field', () => {
    checkSnpPolicy(
      verified({ authorKeyEn: true, authorKeyDigest: new Uint8Array(48).fill(0x33) }),
      parsePolicy({
        measurements: [M2, M1],
        reportData: '07'.repeat(64),
        minTcb: { bootloader: 4, tee: 0, snp: 24, microcode: 219 },
        minGuestSvn: 5,
        vmpl: 0,
        hostData: '11'.repeat(32),
        idKeyDigests: ['22'.repeat(48)],
        authorKeyDigests: ['33'.repeat(48)],
      }),
    );
  });

  test('checkSnpPolicy() rejects a measurement not in the list', () => {
    rejects(
      () => checkSnpPolicy(verified(), parsePolicy({ measurements: [M2] })),
      'ERR_POLICY_VIOLATION',
      'measurements',
    );
  });

  test('checkSnpPolicy() rejects a REPORT_DATA mismatch with its own code', () => {
    rejects(
      () => checkSnpPolicy(verified(), parsePolicy({ reportData: '08'.repeat(64) })),
      'ERR_REPORT_DATA_MISMATCH',
      'reportData',
    );
  });

  test('checkSnpPolicy() rejects a debuggable guest unless allowDebug', () => {
    const debug = verified({ policy: 0x30000n | (1n << 19n) });
    rejects(() => checkSnpPolicy(debug, parsePolicy({})), 'ERR_POLICY_VIOLATION', 'allowDebug');
    rejects(
      () => checkSnpPolicy(debug, parsePolicy({ allowDebug: false })),
      'ERR_POLICY_VIOLATION',
      'allowDebug',
    );
    checkSnpPolicy(debug, parsePolicy({ allowDebug: true }));
  });

  test('checkSnpPolicy() rejects a migration agent unless allowMigrationAgent', () => {
    const ma = verified({ policy: 0x30000n | (1n << 18n) });
    rejects(() => checkSnpPolicy(ma, parsePolicy({})), 'ERR_POLICY_VIOLATION', 'allowMigrationAgent');
    checkSnpPolicy(ma, parsePolicy({ allowMigrationAgent: true }));
  });

  test('checkSnpPolicy() rejects each TCB component below its minimum', () => {
    for (const [c, min] of [
      ['bootloader', 5],
      ['tee', 1],
      ['snp', 25],
      ['microcode', 220],
    ] as const) {
      rejects(
        () => checkSnpPolicy(verified(), parsePolicy({ minTcb: { [c]: min } })),
        'ERR_POLICY_VIOLATION',
        `minTcb.${c}`,
      );
      checkSnpPolicy(verified(), parsePolicy({ minTcb: { [c]: min - 1 } }));
    }
  });

  test('checkSnpPolicy() cannot check minTcb.fmc on a pre-Turin TCB', () => {
    rejects(
      () => checkSnpPolicy(verified(), parsePolicy({ minTcb: { fmc: 0 } })),
      'ERR_POLICY_UNSUPPORTED',
      'minTcb.fmc',
    );
  });

  test('checkSnpPolicy() checks minTcb.fmc on a Turin TCB', () => {
    const tcb = snpTcb({ fmc: 2, bootloader: 1, tee: 0, snp: 2, microcode: 71 });
    const turin = verified({
      version: 5,
      cpuid: { family: 0x1a, model: 2, stepping: 1 },
      chipId: Uint8Array.from({ length: 64 }, (_, i) => (i < 8 ? 1 : 0)),
      currentTcb: tcb,
      reportedTcb: tcb,
      committedTcb: tcb,
      launchTcb: tcb,
    });
    checkSnpPolicy(turin, parsePolicy({ minTcb: { fmc: 2 } }));
    rejects(
      () => checkSnpPolicy(turin, parsePolicy({ minTcb: { fmc: 3 } })),
      'ERR_POLICY_VIOLATION',
      'minTcb.fmc',
    );
  });

  test('checkSnpPolicy() rejects guest SVN, VMPL and host data mismatches', () => {
    rejects(
      () => checkSnpPolicy(verified(), parsePolicy({ minGuestSvn: 6 })),
      'ERR_POLICY_VIOLATION',
      'minGuestSvn',
    );
    rejects(() => checkSnpPolicy(verified(), parsePolicy({ vmpl: 1 })), 'ERR_POLICY_VIOLATION', 'vmpl');
    rejects(
      () => checkSnpPolicy(verified(), parsePolicy({ hostData: '12'.repeat(32) })),
      'ERR_POLICY_VIOLATION',
      'hostData',
    );
  });

  test('checkSnpPolicy() rejects ID and author key digests not in the lists', () => {
    rejects(
      () => checkSnpPolicy(verified(), parsePolicy({ idKeyDigests: ['23'.repeat(48)] })),
      'ERR_POLICY_VIOLATION',
      'idKeyDigests',
    );
    // No author key at all: even a list holding the zero digest does not match.
    rejects(
      () => checkSnpPolicy(verified(), parsePolicy({ authorKeyDigests: ['00'.repeat(48)] })),
      'ERR_POLICY_VIOLATION',
      'authorKeyDigests',
    );
  });
});

describe('parsePolicy() DCAP fields', () => {
  test('parsePolicy() normalises the SGX and TDX fields', () => {
    const p = parsePolicy({
      mrEnclaves: ['AB'.repeat(32)],
      mrSigners: ['cd'.repeat(32)],
      minIsvSvn: 3,
      mrTds: ['EF'.repeat(48)],
      rtmrs: { '0': ['01'.repeat(48)], '3': ['0A'.repeat(48), '0b'.repeat(48)] },
      acceptedTcbStatuses: ['UpToDate', 'SWHardeningNeeded'],
      requireCollateral: true,
    });
    assert.deepEqual(p.mrEnclaves, ['ab'.repeat(32)]);
    assert.deepEqual(p.mrTds, ['ef'.repeat(48)]);
    assert.deepEqual(p.rtmrs, { '0': ['01'.repeat(48)], '3': ['0a'.repeat(48), '0b'.repeat(48)] });
    assert.deepEqual(p.acceptedTcbStatuses, ['UpToDate', 'SWHardeningNeeded']);
    assert.equal(p.requireCollateral, true);
    assert.deepEqual(parsePolicy(p), p);
  });

  test('parsePolicy() reads DCAP fields from TOML', () => {
    const p = parsePolicy(
      parseToml(
        `mrTds = ["${'aa'.repeat(48)}"]\nacceptedTcbStatuses = ["UpToDate"]\n[rtmrs]\n1 = ["${'bb'.repeat(48)}"]\n`,
      ),
    );
    assert.deepEqual(p.rtmrs, { '1': ['bb'.repeat(48)] });
  });

  test('parsePolicy() rejects malformed DCAP fields', () => {
    rejects(() => parsePolicy({ mrEnclaves: ['ab'.repeat(48)] }), 'ERR_POLICY_INVALID', 'mrEnclaves');
    rejects(() => parsePolicy({ mrTds: ['ab'.repeat(32)] }), 'ERR_POLICY_INVALID', 'mrTds');
    rejects(() => parsePolicy({ minIsvSvn: 70000 }), 'ERR_POLICY_INVALID', 'minIsvSvn');
    rejects(() => parsePolicy({ rtmrs: { '4': ['ab'.repeat(48)] } }), 'ERR_POLICY_UNSUPPORTED', 'rtmrs.4');
    rejects(() => parsePolicy({ rtmrs: {} }), 'ERR_POLICY_INVALID', 'rtmrs');
    rejects(() => parsePolicy({ rtmrs: ['ab'.repeat(48)] }), 'ERR_POLICY_INVALID', 'rtmrs');
    rejects(() => parsePolicy({ rtmrs: { '0': [] } }), 'ERR_POLICY_INVALID', 'rtmrs.0');
    rejects(() => parsePolicy({ acceptedTcbStatuses: [] }), 'ERR_POLICY_INVALID', 'acceptedTcbStatuses');
    rejects(
      () => parsePolicy({ acceptedTcbStatuses: ['Fine'] }),
      'ERR_POLICY_INVALID',
      'acceptedTcbStatuses',
    );
    rejects(
      () => parsePolicy({ acceptedTcbStatuses: ['UpToDate', 'UpToDate'] }),
      'ERR_POLICY_INVALID',
      'acceptedTcbStatuses',
    );
    rejects(() => parsePolicy({ requireCollateral: 'yes' }), 'ERR_POLICY_INVALID', 'requireCollateral');
  });
});

describe('checkDcapPolicy()', () => {
  const sgx = scenario('sgx');
  const tdx = scenario('tdx');
  const withCollateral = (s: typeof sgx) =>
    verifyDcapQuote(s.quote, { now: s.now, roots: s.pki.roots, collateral: s.collateral });
  const without = (s: typeof sgx) => verifyDcapQuote(s.quote, { now: s.now, roots: s.pki.roots });
  const MRENCLAVE = 'e1'.repeat(32);
  const MRSIGNER = '51'.repeat(32);
  const MRTD = '7d'.repeat(48);

  test('checkDcapPolicy() accepts quotes satisfying every field', () => {
    checkDcapPolicy(
      withCollateral(sgx),
      parsePolicy({
        mrEnclaves: [MRENCLAVE],
        mrSigners: [MRSIGNER],
        minIsvSvn: 3,
        reportData: '42'.repeat(64),
        requireCollateral: true,
      }),
    );
    checkDcapPolicy(
      withCollateral(tdx),
      parsePolicy({
        mrTds: [MRTD],
        rtmrs: { '0': ['00'.repeat(48)] },
        reportData: '42'.repeat(64),
        trustSimulatedRoots: ['00'.repeat(32)],
      }),
    );
  });

  test('checkDcapPolicy() rejects measurements, signers and SVNs the policy does not allow', () => {
    const v = withCollateral(sgx);
    rejects(
      () => checkDcapPolicy(v, parsePolicy({ mrEnclaves: ['00'.repeat(32)] })),
      'ERR_POLICY_VIOLATION',
      'mrEnclaves',
    );
    rejects(
      () => checkDcapPolicy(v, parsePolicy({ mrSigners: ['00'.repeat(32)] })),
      'ERR_POLICY_VIOLATION',
      'mrSigners',
    );
    rejects(() => checkDcapPolicy(v, parsePolicy({ minIsvSvn: 4 })), 'ERR_POLICY_VIOLATION', 'minIsvSvn');
    rejects(
      () => checkDcapPolicy(v, parsePolicy({ reportData: '43'.repeat(64) })),
      'ERR_REPORT_DATA_MISMATCH',
      'reportData',
    );
    const t = withCollateral(tdx);
    rejects(
      () => checkDcapPolicy(t, parsePolicy({ mrTds: ['00'.repeat(48)] })),
      'ERR_POLICY_VIOLATION',
      'mrTds',
    );
    rejects(
      () => checkDcapPolicy(t, parsePolicy({ rtmrs: { '2': ['01'.repeat(48)] } })),
      'ERR_POLICY_VIOLATION',
      'rtmrs.2',
    );
  });

  test('checkDcapPolicy() refuses fields the quote kind cannot show', () => {
    const v = withCollateral(sgx);
    const t = withCollateral(tdx);
    rejects(() => checkDcapPolicy(v, parsePolicy({ mrTds: [MRTD] })), 'ERR_POLICY_UNSUPPORTED', 'mrTds');
    rejects(
      () => checkDcapPolicy(v, parsePolicy({ rtmrs: { '0': ['00'.repeat(48)] } })),
      'ERR_POLICY_UNSUPPORTED',
      'rtmrs',
    );
    rejects(
      () => checkDcapPolicy(t, parsePolicy({ mrEnclaves: [MRENCLAVE] })),
      'ERR_POLICY_UNSUPPORTED',
      'mrEnclaves',
    );
    rejects(() => checkDcapPolicy(t, parsePolicy({ minIsvSvn: 0 })), 'ERR_POLICY_UNSUPPORTED', 'minIsvSvn');
    for (const [field, value] of [
      ['measurements', [M1]],
      ['minTcb', { snp: 1 }],
      ['vmpl', 0],
      ['hostData', '00'.repeat(32)],
      ['allowMigrationAgent', false],
      ['minGuestSvn', 0],
      ['idKeyDigests', [M1]],
      ['authorKeyDigests', [M1]],
    ] as const) {
      rejects(() => checkDcapPolicy(t, parsePolicy({ [field]: value })), 'ERR_POLICY_UNSUPPORTED', field);
    }
  });

  test('checkSnpPolicy() refuses DCAP fields', () => {
    for (const [field, value] of [
      ['mrTds', ['00'.repeat(48)]],
      ['mrEnclaves', ['00'.repeat(32)]],
      ['acceptedTcbStatuses', ['UpToDate']],
      ['rtmrs', { '0': ['00'.repeat(48)] }],
    ] as const) {
      rejects(
        () => checkSnpPolicy(verified(), parsePolicy({ [field]: value })),
        'ERR_POLICY_UNSUPPORTED',
        field,
      );
    }
  });

  test('checkDcapPolicy() accepts only UpToDate by default, and what acceptedTcbStatuses lists', () => {
    const levels = [
      { sgx: PLATFORM.components, pcesvn: 13, status: 'SWHardeningNeeded', advisoryIDs: ['INTEL-SA-00615'] },
    ];
    const v = verifyDcapQuote(sgx.quote, {
      now: SCENARIO_NOW,
      roots: sgx.pki.roots,
      collateral: collateral(sgx.pki, tcbInfo({ id: 'SGX', levels }), qeIdentity({ id: 'QE' })),
    });
    assert.equal(v.tcb?.status, 'SWHardeningNeeded');
    assert.throws(
      () => checkDcapPolicy(v, parsePolicy({})),
      (e: unknown) =>
        e instanceof AttestationError &&
        e.code === 'ERR_TCB_STATUS' &&
        e.field === 'acceptedTcbStatuses' &&
        /INTEL-SA-00615/.test(e.message),
    );
    checkDcapPolicy(v, parsePolicy({ acceptedTcbStatuses: ['UpToDate', 'SWHardeningNeeded'] }));
    rejects(
      () => checkDcapPolicy(v, parsePolicy({ acceptedTcbStatuses: ['OutOfDate'] })),
      'ERR_TCB_STATUS',
      'acceptedTcbStatuses',
    );
  });

  test('checkDcapPolicy() without collateral checks no status but refuses when collateral is required', () => {
    const v = without(sgx);
    checkDcapPolicy(v, parsePolicy({ acceptedTcbStatuses: ['OutOfDate'] }));
    rejects(
      () => checkDcapPolicy(v, parsePolicy({ requireCollateral: true })),
      'ERR_POLICY_VIOLATION',
      'requireCollateral',
    );
    checkDcapPolicy(withCollateral(sgx), parsePolicy({ requireCollateral: true }));
  });

  test('checkDcapPolicy() refuses debug enclaves and TDs unless allowDebug', () => {
    const debugSgx = scenario('sgx', {
      body: sgxBody({ attributes: Uint8Array.of(0x07, ...new Array(15).fill(0)) }),
    });
    const v = withCollateral(debugSgx);
    assert.equal(v.quote.body.debug, true);
    rejects(() => checkDcapPolicy(v, parsePolicy({})), 'ERR_POLICY_VIOLATION', 'allowDebug');
    checkDcapPolicy(v, parsePolicy({ allowDebug: true }));
    const debugTd = scenario('tdx', {
      body: tdBody({ tdAttributes: Uint8Array.of(0x01, 0, 0, 0x10, 0, 0, 0, 0) }),
    });
    const t = withCollateral(debugTd);
    rejects(() => checkDcapPolicy(t, parsePolicy({})), 'ERR_POLICY_VIOLATION', 'allowDebug');
    checkDcapPolicy(t, parsePolicy({ allowDebug: true }));
  });
});

describe('checkSnpPolicy() requireCollateral', () => {
  test('checkSnpPolicy() refuses a report checked without its ARK CRL when collateral is required', () => {
    rejects(
      () => checkSnpPolicy(verified(), parsePolicy({ requireCollateral: true })),
      'ERR_POLICY_VIOLATION',
      'requireCollateral',
    );
    checkSnpPolicy({ ...verified(), crlChecked: true }, parsePolicy({ requireCollateral: true }));
  });
});
