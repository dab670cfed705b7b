// The parts of an OVMF image an SEV-SNP launch depends on, read from the image itself: the GUIDed footer
// table at its end (EDK2 OvmfPkg ResetVector), the SEV metadata it points to (the pages the hypervisor must
// hand to the secure processor besides the image), the SEV-ES reset block (where application processors
// start) and the kernel-hashes table location (measured direct boot). Each structure has one reading: sizes
// must add up exactly, GUIDs may not repeat, sections must be page-aligned and may not overlap.

import { SnpMeasureError } from './errors.ts';
import { efiGuidText } from './guid.ts';

/** GUIDs of the footer table entries read here (EDK2 OvmfPkg, text form). */
export const OVMF_GUID = {
  /** Marks the footer table itself, 32 bytes before the end of the image. */
  TABLE_FOOTER: '96b582de-1fb2-45f7-baea-a366c55a082d',
  /** SEV-ES reset block: the real-mode entry point of application processors. */
  SEV_ES_RESET_BLOCK: '00f771de-1a7e-4fcb-890e-68c77e2fb44e',
  /** SEV metadata: offset, from the end of the image, of the "ASEV" section list. */
  SEV_METADATA: 'dc886566-984a-4798-a75e-5585a7bf67cc',
  /** Where the firmware expects the hypervisor to place the kernel/initrd/cmdline hashes table. */
  SEV_HASH_TABLE: '7255371f-3a3b-4b04-927b-1da6efa8d454',
} as const;

/** SEV metadata section types (OvmfPkg/ResetVector OvmfSevMetadata.asm). */
export const SECTION_TYPE = {
  SNP_SEC_MEM: 1,
  SNP_SECRETS: 2,
  CPUID: 3,
  SVSM_CAA: 4,
  SNP_KERNEL_HASHES: 0x10,
} as const;

/** Name of a section type. */
export type SectionKind = keyof typeof SECTION_TYPE;

/** One SEV metadata section: guest-physical pages the launch prepares besides the image. */
export interface OvmfSection {
  kind: SectionKind;
  gpa: number;
  size: number;
}

/** What an SNP launch needs of an OVMF image. */
export interface OvmfImage {
  /** The image bytes (not copied). */
  bytes: Uint8Array;
  /** Guest-physical address of the first byte: the image ends at 4 GiB. */
  gpa: number;
  /** Footer table entries by GUID (text form) to their data. */
  table: ReadonlyMap<string, Uint8Array>;
  /** The SEV-ES reset EIP of application processors. */
  resetEip: number;
  /** SEV metadata sections, in the order the image lists them (the order they are measured in). */
  sections: readonly OvmfSection[];
  /** The kernel-hashes table location, when the image supports measured direct boot. */
  hashTable?: { gpa: number; size: number };
}

const PAGE = 0x1000;
const FOUR_GIB = 0x1_0000_0000;
/** The footer table's last entry header ends this many bytes before the end of the image. */
const FOOTER_TAIL = 32;
/** Entry header: u16 size (data + header), then the GUID. */
const ENTRY_HEADER = 18;
const METADATA_HEADER = 16;
const METADATA_ITEM = 12;

function malformed(state: string): never {
  throw new SnpMeasureError('ERR_OVMF_MALFORMED', `Cannot parse OVMF image: ${state}`);
}

function unsupported(state: string): never {
  throw new SnpMeasureError('ERR_OVMF_UNSUPPORTED', `Cannot measure OVMF image: ${state}`);
}

// Bounds-checked little-endian reads: a structure that points outside the image is malformed, not a crash.
function u16(b: Uint8Array, at: number, what: string): number {
  if (at < 0 || at + 2 > b.byteLength) malformed(`${what} lies outside the image`);
  return b[at]! | (b[at + 1]! << 8);
}

function u32(b: Uint8Array, at: number, what: string): number {
  if (at < 0 || at + 4 > b.byteLength) malformed(`${what} lies outside the image`);
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

function slice(b: Uint8Array, at: number, length: number, what: string): Uint8Array {
  if (at < 0 || length < 0 || at + length > b.byteLength) malformed(`${what} lies outside the image`);
  return b.subarray(at, at + length);
}

/** Reads the GUIDed footer table; entries are laid out backwards from the footer, data before each header. */
function readFooterTable(bytes: Uint8Array): Map<string, Uint8Array> {
  const footerAt = bytes.byteLength - FOOTER_TAIL - ENTRY_HEADER;
  const footerSize = u16(bytes, footerAt, 'footer table');
  const footerGuid = efiGuidText(slice(bytes, footerAt + 2, 16, 'footer table'));
  if (footerGuid !== OVMF_GUID.TABLE_FOOTER) unsupported('no OVMF footer table (not an SEV-capable build)');
  if (footerSize < ENTRY_HEADER) malformed(`footer table size ${footerSize} is smaller than its header`);
  const start = footerAt - (footerSize - ENTRY_HEADER);
  if (start < 0) malformed('footer table starts before the image');

  const table = new Map<string, Uint8Array>();
  let end = footerAt;
  while (end > start) {
    if (end - start < ENTRY_HEADER) malformed('footer table ends inside an entry header');
    const size = u16(bytes, end - ENTRY_HEADER, 'footer table entry');
    if (size < ENTRY_HEADER || size > end - start)
      malformed(`footer table entry size ${size} is out of range`);
    const guid = efiGuidText(slice(bytes, end - 16, 16, 'footer table entry'));
    if (table.has(guid)) malformed(`footer table lists ${guid} twice`);
    table.set(guid, bytes.subarray(end - size, end - ENTRY_HEADER));
    end -= size;
  }
  return table;
}

function entryU32s(
  table: Map<string, Uint8Array>,
  guid: string,
  name: string,
  count: number,
): number[] | undefined {
  const data = table.get(guid);
  if (data === undefined) return undefined;
  if (data.byteLength !== 4 * count)
    malformed(`${name} entry holds ${data.byteLength} bytes, expected ${4 * count}`);
  return Array.from({ length: count }, (_, i) => u32(data, 4 * i, name));
}

function kindOf(type: number): SectionKind {
  for (const [kind, value] of Object.entries(SECTION_TYPE)) if (value === type) return kind as SectionKind;
  return unsupported(`SEV metadata section type 0x${type.toString(16)} is unknown`);
}

function readSections(bytes: Uint8Array, offsetFromEnd: number): OvmfSection[] {
  const at = bytes.byteLength - offsetFromEnd;
  if (offsetFromEnd === 0 || at < 0) malformed(`SEV metadata offset ${offsetFromEnd} lies outside the image`);
  const signature = slice(bytes, at, 4, 'SEV metadata');
  if (Buffer.from(signature).toString('latin1') !== 'ASEV') malformed('SEV metadata signature is not ASEV');
  const size = u32(bytes, at + 4, 'SEV metadata');
  const version = u32(bytes, at + 8, 'SEV metadata');
  const count = u32(bytes, at + 12, 'SEV metadata');
  if (version !== 1) unsupported(`SEV metadata version ${version} is not 1`);
  if (count === 0) malformed('SEV metadata lists no sections');
  if (size !== METADATA_HEADER + METADATA_ITEM * count) {
    malformed(`SEV metadata size ${size} does not match its ${count} sections`);
  }
  slice(bytes, at, size, 'SEV metadata');
  const sections: OvmfSection[] = [];
  for (let i = 0; i < count; i++) {
    const item = at + METADATA_HEADER + METADATA_ITEM * i;
    const gpa = u32(bytes, item, 'SEV metadata section');
    const length = u32(bytes, item + 4, 'SEV metadata section');
    const kind = kindOf(u32(bytes, item + 8, 'SEV metadata section'));
    if (gpa % PAGE !== 0)
      malformed(`SEV metadata section ${i} address 0x${gpa.toString(16)} is not page-aligned`);
    if (length === 0 || length % PAGE !== 0) {
      malformed(`SEV metadata section ${i} size 0x${length.toString(16)} is not a whole number of pages`);
    }
    if (gpa + length > FOUR_GIB) malformed(`SEV metadata section ${i} ends above 4 GiB`);
    // The secure processor takes secrets and CPUID as single pages; a longer section has no one meaning.
    if ((kind === 'SNP_SECRETS' || kind === 'CPUID') && length !== PAGE) {
      malformed(`SEV metadata ${kind} section is 0x${length.toString(16)} bytes, not one page`);
    }
    sections.push({ kind, gpa, size: length });
  }
  return sections;
}

/** Fails when two page ranges overlap: the secure processor refuses to prepare a page twice. */
function checkDisjoint(ranges: readonly { gpa: number; size: number; name: string }[]): void {
  const sorted = [...ranges].sort((a, b) => a.gpa - b.gpa);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const next = sorted[i]!;
    if (prev.gpa + prev.size > next.gpa) malformed(`${prev.name} overlaps ${next.name}`);
  }
}

/**
 * Parses an OVMF image for an SNP launch: the footer table, the SEV-ES reset block, the SEV metadata
 * sections and (when present) the kernel-hashes table location. The image must be a whole number of pages,
 * no larger than 4 GiB, since it is mapped to end at 4 GiB.
 *
 * Throws {@link SnpMeasureError} `ERR_OVMF_MALFORMED` or `ERR_OVMF_UNSUPPORTED`; nothing else escapes for
 * any input bytes.
 */
export function parseOvmf(bytes: Uint8Array): OvmfImage {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('Cannot parse OVMF image: expected a Uint8Array');
  const length = bytes.byteLength;
  if (length === 0 || length % PAGE !== 0) malformed(`size ${length} is not a whole number of 4 KiB pages`);
  if (length > FOUR_GIB) malformed('image is larger than 4 GiB');
  const gpa = FOUR_GIB - length;
  const table = readFooterTable(bytes);

  const reset = entryU32s(table, OVMF_GUID.SEV_ES_RESET_BLOCK, 'SEV-ES reset block', 1);
  if (reset === undefined) unsupported('no SEV-ES reset block in the footer table');
  const metadata = entryU32s(table, OVMF_GUID.SEV_METADATA, 'SEV metadata', 1);
  if (metadata === undefined) unsupported('no SEV metadata in the footer table (not an SNP-capable build)');
  const sections = readSections(bytes, metadata[0]!);
  checkDisjoint([
    { gpa, size: length, name: 'the image' },
    ...sections.map((s, i) => ({ gpa: s.gpa, size: s.size, name: `SEV metadata section ${i} (${s.kind})` })),
  ]);

  const image: OvmfImage = { bytes, gpa, table, resetEip: reset[0]!, sections };
  const hashes = entryU32s(table, OVMF_GUID.SEV_HASH_TABLE, 'SEV hash table', 2);
  // A zero address is how builds without measured direct boot fill the entry.
  if (hashes !== undefined && hashes[0] !== 0) image.hashTable = { gpa: hashes[0]!, size: hashes[1]! };
  return image;
}
