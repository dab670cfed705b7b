// The simulated secure processor's MSG_REPORT_REQ: a version 3 ATTESTATION_REPORT in the firmware's byte
// layout, signed with the simulated VCEK exactly as the AMD secure processor signs with the real one.
import { createHash, createPrivateKey, type KeyObject, sign } from 'node:crypto';
import { assembleSnpReport, encodeSnpReportBody } from '../snp/encode.ts';
import { snpTcb } from '../snp/tcb.ts';
import type { SimRootMaterial } from './root.ts';

/** What the guest (REPORT_DATA, VMPL) and the launch (measurement, host data, policy, ID block) supply. */
export interface SimReportInput {
  /** 64 bytes chosen by the guest; Donjon binds the Keep's key and the client's nonce here. */
  reportData: Uint8Array;
  /** 48-byte launch measurement (SHA-384). */
  measurement: Uint8Array;
  /** 32 bytes the host supplied at launch; zero by default. */
  hostData?: Uint8Array;
  /** Guest policy; default 0x30000 (SMT allowed, reserved bit 17, no debug, no migration agent). */
  policy?: bigint;
  guestSvn?: number;
  vmpl?: number;
  familyId?: Uint8Array;
  imageId?: Uint8Array;
  /** 32 bytes; by default derived from the chip, measurement and host data, so stable for one guest. */
  reportId?: Uint8Array;
}

/** CPUID the simulated processor reports: family 0x19, model 0x11 (Genoa-like: Milan/Genoa TCB layout). */
export const SIM_CPUID = Object.freeze({ family: 0x19, model: 0x11, stepping: 0x01 });
/** Firmware version the simulated processor reports. */
export const SIM_FIRMWARE_VERSION = '1.55.0';
/** PLATFORM_INFO the simulated processor reports: SMT enabled. */
export const SIM_PLATFORM_INFO = 0x1n;

function required(name: string, value: unknown, length: number): Uint8Array {
  if (!(value instanceof Uint8Array) || value.byteLength !== length) {
    throw new RangeError(`Cannot sign simulated report: ${name} must be ${length} bytes`);
  }
  return value;
}

function optional(name: string, value: Uint8Array | undefined, length: number): Uint8Array {
  return value === undefined ? new Uint8Array(length) : required(name, value, length);
}

/** Each root's VCEK key, imported once (about 0.5 ms an import, on every report's path). */
const vcekKeys = new WeakMap<SimRootMaterial, KeyObject>();

/**
 * A 1184-byte version 3 SEV-SNP report with these inputs, the root's chip id and TCB, signed with the
 * simulated VCEK (ECDSA P-384, SHA-384). Throws RangeError/TypeError on malformed inputs.
 */
export function signSimReport(root: SimRootMaterial, input: SimReportInput): Uint8Array {
  if (typeof input !== 'object' || input === null)
    throw new TypeError('Cannot sign simulated report: input is required');
  const reportData = required('reportData', input.reportData, 64);
  const measurement = required('measurement', input.measurement, 48);
  const hostData = optional('hostData', input.hostData, 32);
  const reportId =
    input.reportId === undefined
      ? new Uint8Array(
          createHash('sha256')
            .update('donjon/sim/report-id')
            .update(root.chipId)
            .update(measurement)
            .update(hostData)
            .digest(),
        )
      : required('reportId', input.reportId, 32);
  const tcb = snpTcb({
    bootloader: root.tcb.bootloader,
    tee: root.tcb.tee,
    snp: root.tcb.snp,
    microcode: root.tcb.microcode,
  });
  const body = encodeSnpReportBody({
    version: 3,
    guestSvn: input.guestSvn ?? 0,
    policy: input.policy ?? 0x30000n,
    familyId: optional('familyId', input.familyId, 16),
    imageId: optional('imageId', input.imageId, 16),
    vmpl: input.vmpl ?? 0,
    signatureAlgo: 1,
    currentTcb: tcb,
    platformInfo: SIM_PLATFORM_INFO,
    authorKeyEn: false,
    maskChipKey: false,
    signingKey: 'vcek',
    reportData,
    measurement,
    hostData,
    idKeyDigest: new Uint8Array(48),
    authorKeyDigest: new Uint8Array(48),
    reportId,
    reportIdMa: new Uint8Array(32).fill(0xff),
    reportedTcb: tcb,
    cpuid: { ...SIM_CPUID },
    chipId: root.chipId,
    committedTcb: tcb,
    currentVersion: SIM_FIRMWARE_VERSION,
    committedVersion: SIM_FIRMWARE_VERSION,
    launchTcb: tcb,
  });
  let key = vcekKeys.get(root);
  if (key === undefined) {
    key = createPrivateKey({ key: Buffer.from(root.vcekPrivateKeyPkcs8), format: 'der', type: 'pkcs8' });
    vcekKeys.set(root, key);
  }
  const signature = new Uint8Array(sign('sha384', body, { key, dsaEncoding: 'ieee-p1363' }));
  return assembleSnpReport(body, signature);
}
