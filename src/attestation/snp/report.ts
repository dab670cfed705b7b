// The AMD SEV-SNP ATTESTATION_REPORT (SEV-SNP Firmware ABI, "ATTESTATION_REPORT Structure"): 1184 bytes,
// little-endian, versions 2, 3, 4 (the layout of 3) and 5. Every reserved field must be zero and every
// enumerated field must hold a known value, so one report has exactly one reading.
import { AttestationError } from '../errors.ts';
import { decodeSnpTcb, type SnpTcb } from './tcb.ts';

export type { SnpTcb, SnpTcbParts } from './tcb.ts';

/** Size of a report in bytes. */
export const SNP_REPORT_SIZE = 0x4a0;
/** Size of the signed part (offsets 0x000..0x29F). */
export const SNP_SIGNED_SIZE = 0x2a0;
/** CPUID family of Turin: reports from this family on use the Turin TCB layout and 8-byte chip ids. */
export const TURIN_FAMILY = 0x1a;

/** POLICY bits (guest policy chosen at launch). */
export const SNP_POLICY = {
  /** Bit 17: reserved, the firmware requires it set. */
  RESERVED_ONE: 1n << 17n,
  /** Bit 18: the guest may be associated with a migration agent. */
  MIGRATE_MA: 1n << 18n,
  /** Bit 19: the hypervisor may debug the guest (read and write its memory). */
  DEBUG: 1n << 19n,
} as const;

/** A parsed SEV-SNP attestation report. Byte fields are fresh copies. */
export interface SnpReport {
  version: number;
  guestSvn: number;
  policy: bigint;
  familyId: Uint8Array;
  imageId: Uint8Array;
  vmpl: number;
  signatureAlgo: number;
  currentTcb: SnpTcb;
  platformInfo: bigint;
  authorKeyEn: boolean;
  maskChipKey: boolean;
  signingKey: 'vcek' | 'vlek' | 'none';
  reportData: Uint8Array;
  measurement: Uint8Array;
  hostData: Uint8Array;
  idKeyDigest: Uint8Array;
  authorKeyDigest: Uint8Array;
  reportId: Uint8Array;
  reportIdMa: Uint8Array;
  /** The TCB the VCEK was derived for: the one to compare with the VCEK's extensions. */
  reportedTcb: SnpTcb;
  /** Present from version 3. */
  cpuid?: { family: number; model: number; stepping: number };
  chipId: Uint8Array;
  committedTcb: SnpTcb;
  /** Firmware version "major.minor.build". */
  currentVersion: string;
  committedVersion: string;
  launchTcb: SnpTcb;
  /** Present from version 5. */
  launchMitVector?: bigint;
  /** Present from version 5. */
  currentMitVector?: bigint;
  /** Bytes 0x000..0x29F: what the signature covers. */
  signedBytes: Uint8Array;
  /** ECDSA P-384 signature as 96 bytes big-endian r || s (the report stores them little-endian). */
  signature: Uint8Array;
  /** POLICY.DEBUG (bit 19). */
  debug: boolean;
  /** POLICY.MIGRATE_MA (bit 18). */
  migrateMa: boolean;
}

function malformed(state: string): never {
  throw new AttestationError('ERR_EVIDENCE_MALFORMED', `Cannot parse SEV-SNP report: ${state}`);
}

// Bounds-checked little-endian reads: every read goes through `at`, which refuses to leave the buffer.
class View {
  readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }
  at(offset: number, length: number): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > this.bytes.byteLength) {
      malformed(`read of ${length} bytes at 0x${offset.toString(16)} is out of bounds`);
    }
    return this.bytes.subarray(offset, offset + length);
  }
  copy(offset: number, length: number): Uint8Array {
    return this.at(offset, length).slice();
  }
  u8(offset: number): number {
    return this.at(offset, 1)[0]!;
  }
  u32(offset: number): number {
    const b = this.at(offset, 4);
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  }
  u64(offset: number): bigint {
    const b = this.at(offset, 8);
    let n = 0n;
    for (let i = 7; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
    return n;
  }
  mbz(offset: number, end: number, what: string): void {
    const b = this.at(offset, end - offset);
    for (let i = 0; i < b.byteLength; i++) {
      if (b[i] !== 0) malformed(`${what} at 0x${(offset + i).toString(16)} is not zero`);
    }
  }
}

function signingKeyOf(code: number): SnpReport['signingKey'] {
  switch (code) {
    case 0:
      return 'vcek';
    case 1:
      return 'vlek';
    case 7:
      return 'none';
    default:
      return malformed(`SIGNING_KEY ${code} is not 0 (VCEK), 1 (VLEK) or 7 (none)`);
  }
}

/** Big-endian 48 bytes of a little-endian, zero-padded 72-byte signature component. */
function signatureComponent(view: View, offset: number, name: string): Uint8Array {
  view.mbz(offset + 48, offset + 72, `signature ${name} padding`);
  const le = view.at(offset, 48);
  const be = new Uint8Array(48);
  for (let i = 0; i < 48; i++) be[i] = le[47 - i]!;
  return be;
}

/**
 * Parses a SEV-SNP ATTESTATION_REPORT (versions 2 to 5, exactly 1184 bytes). It checks the structure
 * only: the signature, the chain and the policy are {@link verifySnpReport}'s job.
 *
 * Fails with ERR_EVIDENCE_MALFORMED (wrong size, non-zero reserved bytes, unknown signing key, POLICY
 * bit 17 clear) or ERR_EVIDENCE_UNSUPPORTED (version or signature algorithm this code does not know).
 * The TCB layout is Turin's when the CPUID family (v3+) is 0x1A or above; version 2 reports carry no
 * CPUID and come from Milan or Genoa.
 */
export function parseSnpReport(bytes: Uint8Array): SnpReport {
  if (!(bytes instanceof Uint8Array))
    throw new TypeError('Cannot parse SEV-SNP report: expected a Uint8Array');
  if (bytes.byteLength !== SNP_REPORT_SIZE) {
    malformed(`expected ${SNP_REPORT_SIZE} bytes, got ${bytes.byteLength}`);
  }
  const v = new View(bytes);
  const version = v.u32(0x000);
  if (version < 2 || version > 5) {
    throw new AttestationError(
      'ERR_EVIDENCE_UNSUPPORTED',
      `Cannot parse SEV-SNP report: version ${version} is not supported (2 to 5 are)`,
    );
  }
  const signatureAlgo = v.u32(0x034);
  if (signatureAlgo !== 1) {
    throw new AttestationError(
      'ERR_EVIDENCE_UNSUPPORTED',
      `Cannot parse SEV-SNP report: signature algorithm ${signatureAlgo} is not ECDSA P-384 with SHA-384`,
    );
  }
  const policy = v.u64(0x008);
  if ((policy & SNP_POLICY.RESERVED_ONE) === 0n)
    malformed('POLICY bit 17 is clear, the firmware requires it set');

  const signerInfo = v.u32(0x048);
  if (signerInfo >>> 5 !== 0) malformed(`reserved signer-info bits are set (0x${signerInfo.toString(16)})`);
  const signingKey = signingKeyOf((signerInfo >>> 2) & 0x7);
  v.mbz(0x04c, 0x050, 'reserved field');

  let cpuid: SnpReport['cpuid'];
  if (version >= 3) {
    cpuid = { family: v.u8(0x188), model: v.u8(0x189), stepping: v.u8(0x18a) };
    v.mbz(0x18b, 0x1a0, 'reserved field');
  } else {
    v.mbz(0x188, 0x1a0, 'reserved field');
  }
  const turin = cpuid !== undefined && cpuid.family >= TURIN_FAMILY;
  const tcb = (offset: number) => decodeSnpTcb(v.at(offset, 8), turin);

  // Turin identifies a chip by 8 bytes; the rest of the field is defined as zero.
  if (turin) v.mbz(0x1a8, 0x1e0, 'CHIP_ID beyond its 8 Turin bytes');
  v.mbz(0x1eb, 0x1ec, 'reserved field');
  v.mbz(0x1ef, 0x1f0, 'reserved field');
  if (version < 5) v.mbz(0x1f8, 0x208, 'reserved field');
  v.mbz(0x208, SNP_SIGNED_SIZE, 'reserved field');
  const r = signatureComponent(v, 0x2a0, 'R');
  const s = signatureComponent(v, 0x2e8, 'S');
  v.mbz(0x330, SNP_REPORT_SIZE, 'reserved signature field');

  const version3 = (offset: number) => `${v.u8(offset + 2)}.${v.u8(offset + 1)}.${v.u8(offset)}`;
  const signature = new Uint8Array(96);
  signature.set(r, 0);
  signature.set(s, 48);

  const report: SnpReport = {
    version,
    guestSvn: v.u32(0x004),
    policy,
    familyId: v.copy(0x010, 16),
    imageId: v.copy(0x020, 16),
    vmpl: v.u32(0x030),
    signatureAlgo,
    currentTcb: tcb(0x038),
    platformInfo: v.u64(0x040),
    authorKeyEn: (signerInfo & 1) !== 0,
    maskChipKey: (signerInfo & 2) !== 0,
    signingKey,
    reportData: v.copy(0x050, 64),
    measurement: v.copy(0x090, 48),
    hostData: v.copy(0x0c0, 32),
    idKeyDigest: v.copy(0x0e0, 48),
    authorKeyDigest: v.copy(0x110, 48),
    reportId: v.copy(0x140, 32),
    reportIdMa: v.copy(0x160, 32),
    reportedTcb: tcb(0x180),
    chipId: v.copy(0x1a0, 64),
    committedTcb: tcb(0x1e0),
    currentVersion: version3(0x1e8),
    committedVersion: version3(0x1ec),
    launchTcb: tcb(0x1f0),
    signedBytes: v.copy(0x000, SNP_SIGNED_SIZE),
    signature,
    debug: (policy & SNP_POLICY.DEBUG) !== 0n,
    migrateMa: (policy & SNP_POLICY.MIGRATE_MA) !== 0n,
  };
  if (cpuid !== undefined) report.cpuid = cpuid;
  if (version >= 5) {
    report.launchMitVector = v.u64(0x1f8);
    report.currentMitVector = v.u64(0x200);
  }
  return report;
}
