// Writes SEV-SNP reports in the firmware's byte layout: used by the simulated secure processor, and by
// tests that check the layout against real reports (encode(parse(x)) must give back x's signed bytes).
import { SNP_REPORT_SIZE, SNP_SIGNED_SIZE, type SnpReport, TURIN_FAMILY } from './report.ts';
import { encodeSnpTcb, type SnpTcb } from './tcb.ts';

/** The report fields that go into the signed bytes (everything {@link parseSnpReport} returns but the
 * signature and the values derived from other fields). */
export type SnpReportFields = Omit<SnpReport, 'signedBytes' | 'signature' | 'debug' | 'migrateMa'>;

function bytesField(name: string, value: Uint8Array, length: number): Uint8Array {
  if (!(value instanceof Uint8Array) || value.byteLength !== length) {
    throw new RangeError(`Cannot encode SEV-SNP report: ${name} must be ${length} bytes`);
  }
  return value;
}

function u32Field(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`Cannot encode SEV-SNP report: ${name} must be a 32-bit unsigned integer`);
  }
  return value;
}

function u8Field(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xff) {
    throw new RangeError(`Cannot encode SEV-SNP report: ${name} must be an integer in 0..255`);
  }
  return value;
}

function u64Field(name: string, value: bigint): bigint {
  if (typeof value !== 'bigint' || value < 0n || value >= 1n << 64n) {
    throw new RangeError(`Cannot encode SEV-SNP report: ${name} must be a 64-bit unsigned bigint`);
  }
  return value;
}

function parseVersion(name: string, text: string): [number, number, number] {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  const parts = m === null ? [] : [Number(m[1]), Number(m[2]), Number(m[3])];
  if (parts.length !== 3 || parts.some((p) => p > 255)) {
    throw new RangeError(
      `Cannot encode SEV-SNP report: ${name} must be "major.minor.build" with parts in 0..255`,
    );
  }
  return parts as [number, number, number];
}

const SIGNING_KEY_CODE = { vcek: 0, vlek: 1, none: 7 } as const;

/**
 * The 0x2A0 signed bytes of a report with these fields, byte for byte in the firmware's layout
 * (versions 2 to 5). Reserved bytes are zero and POLICY bit 17 must be set, as {@link parseSnpReport}
 * requires. Throws RangeError on a field of the wrong size or range, on CPUID given for version 2 or
 * missing from 3+, on MIT vectors before version 5, and on TCBs whose layout (with or without `fmc`)
 * does not match the CPUID family or whose `raw` disagrees with their components.
 */
export function encodeSnpReportBody(fields: SnpReportFields): Uint8Array {
  const out = new Uint8Array(SNP_SIGNED_SIZE);
  const dv = new DataView(out.buffer);
  const version = u32Field('version', fields.version);
  if (version < 2 || version > 5)
    throw new RangeError('Cannot encode SEV-SNP report: version must be 2 to 5');
  if (version >= 3 !== (fields.cpuid !== undefined)) {
    throw new RangeError('Cannot encode SEV-SNP report: cpuid is present exactly from version 3');
  }
  const hasMit = fields.launchMitVector !== undefined || fields.currentMitVector !== undefined;
  if (hasMit && version < 5) {
    throw new RangeError('Cannot encode SEV-SNP report: MIT vectors exist only from version 5');
  }
  const turin = fields.cpuid !== undefined && fields.cpuid.family >= TURIN_FAMILY;
  const tcb = (name: string, t: SnpTcb, offset: number) => {
    if ((t.fmc !== undefined) !== turin) {
      throw new RangeError(
        `Cannot encode SEV-SNP report: ${name} must ${turin ? '' : 'not '}have fmc for this CPU family`,
      );
    }
    const bytes = encodeSnpTcb(t);
    if (new DataView(bytes.buffer).getBigUint64(0, true) !== t.raw) {
      throw new RangeError(`Cannot encode SEV-SNP report: ${name}.raw disagrees with its components`);
    }
    out.set(bytes, offset);
  };
  if ((u64Field('policy', fields.policy) & (1n << 17n)) === 0n) {
    throw new RangeError('Cannot encode SEV-SNP report: POLICY bit 17 must be set');
  }
  if (u32Field('signatureAlgo', fields.signatureAlgo) !== 1) {
    throw new RangeError('Cannot encode SEV-SNP report: signatureAlgo must be 1 (ECDSA P-384 with SHA-384)');
  }
  const signingKey = SIGNING_KEY_CODE[fields.signingKey];
  if (signingKey === undefined) throw new RangeError('Cannot encode SEV-SNP report: unknown signingKey');

  dv.setUint32(0x000, version, true);
  dv.setUint32(0x004, u32Field('guestSvn', fields.guestSvn), true);
  dv.setBigUint64(0x008, fields.policy, true);
  out.set(bytesField('familyId', fields.familyId, 16), 0x010);
  out.set(bytesField('imageId', fields.imageId, 16), 0x020);
  dv.setUint32(0x030, u32Field('vmpl', fields.vmpl), true);
  dv.setUint32(0x034, fields.signatureAlgo, true);
  tcb('currentTcb', fields.currentTcb, 0x038);
  dv.setBigUint64(0x040, u64Field('platformInfo', fields.platformInfo), true);
  dv.setUint32(0x048, (fields.authorKeyEn ? 1 : 0) | (fields.maskChipKey ? 2 : 0) | (signingKey << 2), true);
  out.set(bytesField('reportData', fields.reportData, 64), 0x050);
  out.set(bytesField('measurement', fields.measurement, 48), 0x090);
  out.set(bytesField('hostData', fields.hostData, 32), 0x0c0);
  out.set(bytesField('idKeyDigest', fields.idKeyDigest, 48), 0x0e0);
  out.set(bytesField('authorKeyDigest', fields.authorKeyDigest, 48), 0x110);
  out.set(bytesField('reportId', fields.reportId, 32), 0x140);
  out.set(bytesField('reportIdMa', fields.reportIdMa, 32), 0x160);
  tcb('reportedTcb', fields.reportedTcb, 0x180);
  if (fields.cpuid !== undefined) {
    out[0x188] = u8Field('cpuid.family', fields.cpuid.family);
    out[0x189] = u8Field('cpuid.model', fields.cpuid.model);
    out[0x18a] = u8Field('cpuid.stepping', fields.cpuid.stepping);
  }
  const chipId = bytesField('chipId', fields.chipId, 64);
  if (turin && chipId.subarray(8).some((b) => b !== 0)) {
    throw new RangeError('Cannot encode SEV-SNP report: a Turin chipId has only 8 non-zero bytes');
  }
  out.set(chipId, 0x1a0);
  tcb('committedTcb', fields.committedTcb, 0x1e0);
  const [curMajor, curMinor, curBuild] = parseVersion('currentVersion', fields.currentVersion);
  out.set([curBuild, curMinor, curMajor], 0x1e8);
  const [comMajor, comMinor, comBuild] = parseVersion('committedVersion', fields.committedVersion);
  out.set([comBuild, comMinor, comMajor], 0x1ec);
  tcb('launchTcb', fields.launchTcb, 0x1f0);
  if (version >= 5) {
    dv.setBigUint64(0x1f8, u64Field('launchMitVector', fields.launchMitVector ?? 0n), true);
    dv.setBigUint64(0x200, u64Field('currentMitVector', fields.currentMitVector ?? 0n), true);
  }
  return out;
}

/**
 * A complete 1184-byte report from its signed bytes and a 96-byte big-endian r || s signature: the
 * components are stored little-endian, zero-padded to 72 bytes each, and the rest is zero.
 */
export function assembleSnpReport(signedBytes: Uint8Array, signature: Uint8Array): Uint8Array {
  bytesField('signedBytes', signedBytes, SNP_SIGNED_SIZE);
  bytesField('signature', signature, 96);
  const out = new Uint8Array(SNP_REPORT_SIZE);
  out.set(signedBytes, 0);
  for (let i = 0; i < 48; i++) {
    out[0x2a0 + i] = signature[47 - i]!;
    out[0x2e8 + i] = signature[95 - i]!;
  }
  return out;
}
