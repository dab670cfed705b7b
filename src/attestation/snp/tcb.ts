// TCB_VERSION: the 8-byte security patch levels of an AMD secure processor's firmware components.
// Milan and Genoa (family 0x19) and Turin (family 0x1A) lay the bytes out differently.
import { AttestationError } from '../errors.ts';

/**
 * A decoded TCB_VERSION. `fmc` is present exactly when the Turin layout applies; `raw` is the 8 bytes
 * read as a little-endian integer, so two TCBs are the same iff their `raw` values are.
 */
export interface SnpTcb {
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  fmc?: number;
  raw: bigint;
}

/** The components of a TCB_VERSION, without the raw form (for building one). */
export interface SnpTcbParts {
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  fmc?: number;
}

/** The component names in the order policies and messages list them. */
export const TCB_COMPONENTS = ['bootloader', 'tee', 'snp', 'microcode', 'fmc'] as const;

function readU64(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = 7; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}

/**
 * Decodes 8 TCB bytes in the Turin layout (`[0]=FMC [1]=BL [2]=TEE [3]=SNP [7]=UCODE`) or the
 * Milan/Genoa layout (`[0]=BL [1]=TEE [6]=SNP [7]=UCODE`). Reserved bytes must be zero: a TCB with
 * bits we do not understand could rank higher or lower than its components say.
 */
export function decodeSnpTcb(bytes: Uint8Array, turin: boolean): SnpTcb {
  if (bytes.byteLength !== 8) throw new RangeError('Cannot decode TCB: expected 8 bytes');
  const reserved = turin ? [4, 5, 6] : [2, 3, 4, 5];
  for (const i of reserved) {
    if (bytes[i] !== 0) {
      throw new AttestationError(
        'ERR_EVIDENCE_MALFORMED',
        `Cannot parse TCB version: reserved byte ${i} is 0x${bytes[i]!.toString(16)}, expected zero`,
      );
    }
  }
  const raw = readU64(bytes);
  if (turin) {
    return {
      bootloader: bytes[1]!,
      tee: bytes[2]!,
      snp: bytes[3]!,
      microcode: bytes[7]!,
      fmc: bytes[0]!,
      raw,
    };
  }
  return { bootloader: bytes[0]!, tee: bytes[1]!, snp: bytes[6]!, microcode: bytes[7]!, raw };
}

function checkComponent(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 255) {
    throw new RangeError(`Cannot encode TCB: ${name} must be an integer in 0..255`);
  }
  return value;
}

/** The 8 bytes of a TCB_VERSION; the Turin layout is used exactly when `fmc` is given. */
export function encodeSnpTcb(parts: SnpTcbParts): Uint8Array {
  const out = new Uint8Array(8);
  const bl = checkComponent('bootloader', parts.bootloader);
  const tee = checkComponent('tee', parts.tee);
  const snp = checkComponent('snp', parts.snp);
  const ucode = checkComponent('microcode', parts.microcode);
  if (parts.fmc !== undefined) {
    out.set([checkComponent('fmc', parts.fmc), bl, tee, snp, 0, 0, 0, ucode]);
  } else {
    out.set([bl, tee, 0, 0, 0, 0, snp, ucode]);
  }
  return out;
}

/** A complete {@link SnpTcb} (with `raw`) from its components. */
export function snpTcb(parts: SnpTcbParts): SnpTcb {
  const bytes = encodeSnpTcb(parts);
  const tcb: SnpTcb = {
    bootloader: parts.bootloader,
    tee: parts.tee,
    snp: parts.snp,
    microcode: parts.microcode,
    raw: readU64(bytes),
  };
  if (parts.fmc !== undefined) tcb.fmc = parts.fmc;
  return tcb;
}
