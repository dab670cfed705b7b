import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  assembleSnpReport,
  encodeSnpReportBody,
  type SnpReportFields,
} from '../../../src/attestation/snp/encode.ts';
import { parseSnpReport, SNP_REPORT_SIZE, SNP_SIGNED_SIZE } from '../../../src/attestation/snp/report.ts';
import { snpTcb } from '../../../src/attestation/snp/tcb.ts';
import { NEEDS_EVIDENCE, reportBytes, SNP_SAMPLES } from '../evidence.ts';

const TCB = snpTcb({ bootloader: 1, tee: 2, snp: 3, microcode: 4 });

function fields(overrides: Partial<SnpReportFields> = {}): SnpReportFields {
  return {
    version: 3,
    guestSvn: 7,
    policy: 0x30000n,
    familyId: new Uint8Array(16).fill(0x11),
    imageId: new Uint8Array(16).fill(0x22),
    vmpl: 1,
    signatureAlgo: 1,
    currentTcb: TCB,
    platformInfo: 0x25n,
    authorKeyEn: true,
    maskChipKey: false,
    signingKey: 'vlek',
    reportData: new Uint8Array(64).fill(0x33),
    measurement: new Uint8Array(48).fill(0x44),
    hostData: new Uint8Array(32).fill(0x55),
    idKeyDigest: new Uint8Array(48).fill(0x66),
    authorKeyDigest: new Uint8Array(48).fill(0x77),
    reportId: new Uint8Array(32).fill(0x88),
    reportIdMa: new Uint8Array(32).fill(0x99),
    reportedTcb: TCB,
    cpuid: { family: 0x19, model: 0x11, stepping: 1 },
    chipId: new Uint8Array(64).fill(0xaa),
    committedTcb: TCB,
    currentVersion: '1.55.49',
    committedVersion: '1.54.3',
    launchTcb: TCB,
    ...overrides,
  };
}

describe('encodeSnpReportBody() against real reports', () => {
  for (const sample of SNP_SAMPLES) {
    test(`encodeSnpReportBody() re-encodes ${sample.report} byte for byte`, { skip: NEEDS_EVIDENCE }, () => {
      const bytes = reportBytes(sample.report);
      const parsed = parseSnpReport(bytes);
      assert.deepEqual(encodeSnpReportBody(parsed), bytes.subarray(0, SNP_SIGNED_SIZE));
      assert.deepEqual(assembleSnpReport(parsed.signedBytes, parsed.signature), bytes);
    });
  }
});

describe('encodeSnpReportBody() layout', () => {
  test('encodeSnpReportBody() writes each field at its ABI offset', () => {
    const b = encodeSnpReportBody(fields());
    const dv = new DataView(b.buffer);
    assert.equal(b.byteLength, 0x2a0);
    assert.equal(dv.getUint32(0x000, true), 3);
    assert.equal(dv.getUint32(0x004, true), 7);
    assert.equal(dv.getBigUint64(0x008, true), 0x30000n);
    assert.ok(b.subarray(0x010, 0x020).every((x) => x === 0x11));
    assert.ok(b.subarray(0x020, 0x030).every((x) => x === 0x22));
    assert.equal(dv.getUint32(0x030, true), 1);
    assert.equal(dv.getUint32(0x034, true), 1);
    assert.deepEqual([...b.subarray(0x038, 0x040)], [1, 2, 0, 0, 0, 0, 3, 4]);
    assert.equal(dv.getBigUint64(0x040, true), 0x25n);
    assert.equal(dv.getUint32(0x048, true), 0b00101); // AUTHOR_KEY_EN, SIGNING_KEY = 1 (VLEK)
    assert.ok(b.subarray(0x050, 0x090).every((x) => x === 0x33));
    assert.ok(b.subarray(0x090, 0x0c0).every((x) => x === 0x44));
    assert.ok(b.subarray(0x0c0, 0x0e0).every((x) => x === 0x55));
    assert.ok(b.subarray(0x0e0, 0x110).every((x) => x === 0x66));
    assert.ok(b.subarray(0x110, 0x140).every((x) => x === 0x77));
    assert.ok(b.subarray(0x140, 0x160).every((x) => x === 0x88));
    assert.ok(b.subarray(0x160, 0x180).every((x) => x === 0x99));
    assert.deepEqual([...b.subarray(0x180, 0x188)], [1, 2, 0, 0, 0, 0, 3, 4]);
    assert.deepEqual([...b.subarray(0x188, 0x18b)], [0x19, 0x11, 1]);
    assert.ok(b.subarray(0x1a0, 0x1e0).every((x) => x === 0xaa));
    assert.deepEqual([...b.subarray(0x1e8, 0x1f0)], [49, 55, 1, 0, 3, 54, 1, 0]);
    assert.ok(b.subarray(0x1f8, 0x2a0).every((x) => x === 0));
    assert.deepEqual(parseSnpReport(assembleSnpReport(b, new Uint8Array(96))).committedVersion, '1.54.3');
  });

  test('encodeSnpReportBody() writes the Turin TCB layout and v5 MIT vectors', () => {
    const turin = snpTcb({ fmc: 5, bootloader: 1, tee: 2, snp: 3, microcode: 4 });
    const b = encodeSnpReportBody(
      fields({
        version: 5,
        cpuid: { family: 0x1a, model: 2, stepping: 1 },
        chipId: Uint8Array.from({ length: 64 }, (_, i) => (i < 8 ? i + 1 : 0)),
        currentTcb: turin,
        reportedTcb: turin,
        committedTcb: turin,
        launchTcb: turin,
        launchMitVector: 0xbn,
        currentMitVector: 0x1234n,
      }),
    );
    assert.deepEqual([...b.subarray(0x180, 0x188)], [5, 1, 2, 3, 0, 0, 0, 4]);
    assert.equal(new DataView(b.buffer).getBigUint64(0x1f8, true), 0xbn);
    assert.equal(new DataView(b.buffer).getBigUint64(0x200, true), 0x1234n);
    const parsed = parseSnpReport(assembleSnpReport(b, new Uint8Array(96)));
    assert.deepEqual(parsed.reportedTcb, turin);
    assert.equal(parsed.currentMitVector, 0x1234n);
  });

  test('encodeSnpReportBody() round-trips through parseSnpReport()', () => {
    const f = fields();
    const parsed = parseSnpReport(assembleSnpReport(encodeSnpReportBody(f), new Uint8Array(96).fill(1)));
    const { signedBytes, signature, debug, migrateMa, ...rest } = parsed;
    assert.deepEqual(rest, f);
    assert.equal(debug, false);
    assert.equal(migrateMa, false);
    assert.equal(signature.byteLength, 96);
    assert.equal(signedBytes.byteLength, SNP_SIGNED_SIZE);
  });

  test('encodeSnpReportBody() rejects inconsistent fields with RangeError', () => {
    const bad: Partial<SnpReportFields>[] = [
      { version: 1 },
      { version: 2 }, // cpuid given for v2
      { reportData: new Uint8Array(63) },
      { measurement: new Uint8Array(49) },
      { policy: 0x10000n }, // bit 17 clear
      { policy: 1n << 64n },
      { signatureAlgo: 2 },
      { launchMitVector: 1n }, // v3
      { reportedTcb: { ...TCB, raw: 0n } }, // raw disagrees
      { reportedTcb: snpTcb({ fmc: 1, bootloader: 1, tee: 0, snp: 0, microcode: 0 }) }, // Turin TCB on Genoa
      { currentVersion: '1.256.0' },
      { vmpl: -1 },
    ];
    for (const o of bad)
      assert.throws(() => encodeSnpReportBody(fields(o)), RangeError, JSON.stringify(Object.keys(o)));
  });

  test('assembleSnpReport() stores r and s little-endian and zero-padded', () => {
    const sig = Uint8Array.from({ length: 96 }, (_, i) => i + 1);
    const report = assembleSnpReport(new Uint8Array(SNP_SIGNED_SIZE), sig);
    assert.equal(report.byteLength, SNP_REPORT_SIZE);
    assert.equal(report[0x2a0], 48); // last byte of r first
    assert.equal(report[0x2a0 + 47], 1);
    assert.equal(report[0x2e8], 96);
    assert.equal(report[0x2e8 + 47], 49);
    assert.ok(report.subarray(0x2d0, 0x2e8).every((x) => x === 0));
    assert.ok(report.subarray(0x318, SNP_REPORT_SIZE).every((x) => x === 0));
    assert.throws(() => assembleSnpReport(new Uint8Array(10), sig), RangeError);
  });
});
