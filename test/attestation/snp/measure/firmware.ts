// Small synthetic OVMF images for the launch-digest tests: deterministic page contents, a GUIDed footer
// table 32 bytes before the end, an "ASEV" SEV metadata list, the SEV-ES reset block and the kernel-hashes
// table entry, laid out as EDK2's OvmfPkg ResetVector lays them out. Options let a test break one thing.
import { efiGuidBytes } from '../../../../src/attestation/snp/measure/guid.ts';
import { OVMF_GUID, SECTION_TYPE } from '../../../../src/attestation/snp/measure/ovmf.ts';

export interface FakeSection {
  gpa: number;
  size: number;
  type: number;
}

export interface FakeEntry {
  guid: string;
  data: Uint8Array;
  /** Overrides the entry's size field (data + 18). */
  size?: number;
}

export interface FakeOvmfOptions {
  pages?: number;
  /** Seeds the page contents. */
  seed?: number;
  resetEip?: number;
  sections?: FakeSection[];
  hashTable?: { gpa: number; size: number } | null;
  /** Footer entries; default: hash table, unknown, metadata, reset block (in that order, lowest first). */
  entries?: FakeEntry[];
  /** Offset of the metadata from the end of the image. */
  metadataOffset?: number;
  metadataSignature?: string;
  metadataVersion?: number;
  /** Overrides the metadata's size field. */
  metadataSize?: number;
  /** Overrides the footer entry's size field. */
  footerSize?: number;
  footerGuid?: string;
}

export const DEFAULT_SECTIONS: readonly FakeSection[] = [
  { gpa: 0x800000, size: 0x3000, type: SECTION_TYPE.SNP_SEC_MEM },
  { gpa: 0x803000, size: 0x1000, type: SECTION_TYPE.SNP_SECRETS },
  { gpa: 0x804000, size: 0x1000, type: SECTION_TYPE.CPUID },
  { gpa: 0x805000, size: 0x1000, type: SECTION_TYPE.SVSM_CAA },
  { gpa: 0x806000, size: 0x1000, type: SECTION_TYPE.SNP_KERNEL_HASHES },
  { gpa: 0x807000, size: 0x2000, type: SECTION_TYPE.SNP_SEC_MEM },
];

export const DEFAULT_HASH_TABLE = { gpa: 0x806c00, size: 0x400 };
export const DEFAULT_RESET_EIP = 0x0080b004;
/** An EFI GUID no parser knows: entries like it must be carried, not interpreted. */
export const UNKNOWN_GUID = '4c2eb361-7d9b-4cc3-8081-127c90d3d294';

export function u32le(...values: number[]): Uint8Array {
  const out = new Uint8Array(4 * values.length);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    view.setUint32(4 * i, v, true);
  });
  return out;
}

/** A synthetic OVMF image; by default a valid SNP-capable one with measured direct boot. */
export function fakeOvmf(options: FakeOvmfOptions = {}): Uint8Array {
  const pages = options.pages ?? 4;
  const seed = options.seed ?? 1;
  const image = new Uint8Array(pages * 0x1000);
  for (let i = 0; i < image.length; i++) image[i] = (i * 7 + (i >> 12) * 31 + seed * 13) & 0xff;

  const sections = options.sections ?? DEFAULT_SECTIONS;
  const metadataOffset = options.metadataOffset ?? 0x800;
  const metadataAt = image.length - metadataOffset;
  const metadata = new Uint8Array(16 + 12 * sections.length);
  const mv = new DataView(metadata.buffer);
  metadata.set(Buffer.from(options.metadataSignature ?? 'ASEV', 'latin1').subarray(0, 4), 0);
  mv.setUint32(4, options.metadataSize ?? metadata.length, true);
  mv.setUint32(8, options.metadataVersion ?? 1, true);
  mv.setUint32(12, sections.length, true);
  sections.forEach((s, i) => {
    mv.setUint32(16 + 12 * i, s.gpa, true);
    mv.setUint32(20 + 12 * i, s.size, true);
    mv.setUint32(24 + 12 * i, s.type, true);
  });
  if (metadataAt >= 0 && metadataAt + metadata.length <= image.length) image.set(metadata, metadataAt);

  const hashTable = options.hashTable === undefined ? DEFAULT_HASH_TABLE : options.hashTable;
  const entries: FakeEntry[] = options.entries ?? [
    ...(hashTable === null
      ? []
      : [{ guid: OVMF_GUID.SEV_HASH_TABLE, data: u32le(hashTable.gpa, hashTable.size) }]),
    { guid: UNKNOWN_GUID, data: u32le(0x810000, 0xc00) },
    { guid: OVMF_GUID.SEV_METADATA, data: u32le(metadataOffset) },
    { guid: OVMF_GUID.SEV_ES_RESET_BLOCK, data: u32le(options.resetEip ?? DEFAULT_RESET_EIP) },
  ];
  const encoded = entries.map((e) => {
    const out = new Uint8Array(e.data.length + 18);
    out.set(e.data, 0);
    new DataView(out.buffer).setUint16(e.data.length, e.size ?? out.length, true);
    out.set(efiGuidBytes(e.guid), e.data.length + 2);
    return out;
  });
  const tableLength = encoded.reduce((n, e) => n + e.length, 0);
  const footerAt = image.length - 32 - 18;
  let at = footerAt - tableLength;
  for (const e of encoded) {
    image.set(e, at);
    at += e.length;
  }
  const footer = new Uint8Array(18);
  new DataView(footer.buffer).setUint16(0, options.footerSize ?? tableLength + 18, true);
  footer.set(efiGuidBytes(options.footerGuid ?? OVMF_GUID.TABLE_FOOTER), 2);
  image.set(footer, footerAt);
  return image;
}
