// The SEV kernel-hashes table of measured direct boot: the VMM writes the SHA-256 of the kernel, initrd and
// command line into a page the firmware reserves (OvmfPkg "SEV hash table"), that page is measured, and the
// firmware later refuses a kernel, initrd or command line whose hash differs. The layout must match QEMU's
// byte for byte: a GUID-tagged header, three GUID-tagged entries, zero padding to 16 bytes.
import { createHash } from 'node:crypto';
import { efiGuidBytes } from './guid.ts';

/** GUIDs of the table and its entries (QEMU target/i386/sev.c, OVMF BlobVerifierLibSevHashes). */
export const SEV_HASH_GUID = {
  TABLE: '9438d606-4f22-4cc9-b479-a793d411fd21',
  KERNEL: '4de79437-abd2-427f-b835-d5b172d2045b',
  INITRD: '44baf731-3a2f-4bd7-9af1-41e29169781d',
  CMDLINE: '97d02dd8-bd20-4c94-aa78-e7714d36ab2a',
} as const;

const ENTRY_SIZE = 16 + 2 + 32;
const TABLE_SIZE = 16 + 2 + 3 * ENTRY_SIZE;
/** The table as the VMM writes it: padded to a multiple of 16 bytes. */
export const SEV_HASH_TABLE_SIZE = (TABLE_SIZE + 15) & ~15;

/** What measured direct boot hashes. */
export interface DirectBoot {
  kernel: Uint8Array;
  /** Absent means an empty initrd. */
  initrd?: Uint8Array;
  /** The kernel command line; absent means empty. It is hashed with its terminating NUL. */
  cmdline?: string;
}

/** SHA-256 of each part exactly as the table records it (the command line with its trailing NUL). */
export function directBootHashes(boot: DirectBoot): {
  kernel: Uint8Array;
  initrd: Uint8Array;
  cmdline: Uint8Array;
} {
  const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());
  const cmdline = Buffer.concat([Buffer.from(boot.cmdline ?? '', 'utf8'), Buffer.from([0])]);
  return {
    kernel: sha256(boot.kernel),
    initrd: sha256(boot.initrd ?? new Uint8Array(0)),
    cmdline: sha256(cmdline),
  };
}

/** The padded SEV hash table for these boot inputs. */
export function sevHashTable(boot: DirectBoot): Uint8Array {
  const hashes = directBootHashes(boot);
  const out = new Uint8Array(SEV_HASH_TABLE_SIZE);
  const view = new DataView(out.buffer);
  out.set(efiGuidBytes(SEV_HASH_GUID.TABLE), 0);
  view.setUint16(16, TABLE_SIZE, true);
  let at = 18;
  for (const [guid, hash] of [
    [SEV_HASH_GUID.CMDLINE, hashes.cmdline],
    [SEV_HASH_GUID.INITRD, hashes.initrd],
    [SEV_HASH_GUID.KERNEL, hashes.kernel],
  ] as const) {
    out.set(efiGuidBytes(guid), at);
    view.setUint16(at + 16, ENTRY_SIZE, true);
    out.set(hash, at + 18);
    at += ENTRY_SIZE;
  }
  return out;
}
