// The SEV-SNP certificate table the host hands a guest with an extended report request (SEV-SNP GHCB
// specification, "SNP Extended Guest Request"; Linux exposes it as the configfs-tsm `auxblob` of the
// sev_guest provider): entries of { GUID (16 bytes, RFC 4122 byte order), offset u32, length u32 }, ended by
// an all-zero entry, followed by the DER blobs the entries point at (offsets from the start of the table).
// One reading only: entries may not repeat, overlap, point into the table or past the end, and every byte
// no entry covers must be zero.
import { TsmError } from './errors.ts';

/** GUIDs of the certificate table entries (SEV-SNP GHCB specification), in text form. */
export const SNP_CERT_GUID = {
  VCEK: '63da758d-e664-4564-adc5-f4b93be8accd',
  VLEK: 'a8074bc2-a25a-483e-aae6-39c045a0b8a1',
  ASK: '4ab7b379-bbac-4fe4-a02f-05aef327c782',
  ARK: 'c0b406a4-a803-4952-9743-3fb6014cd0ae',
  CRL: '92f81bc3-5811-4d3d-97ff-d19f88dc67ea',
} as const;

/** What a table entry holds. `other` is a GUID this code does not know: carried, not interpreted. */
export type SnpCertKind = 'vcek' | 'vlek' | 'ask' | 'ark' | 'crl' | 'other';

/** One entry of the certificate table. `data` is a copy. */
export interface SnpCertEntry {
  guid: string;
  kind: SnpCertKind;
  data: Uint8Array;
}

const ENTRY_SIZE = 24;
const GUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const KIND_BY_GUID: ReadonlyMap<string, SnpCertKind> = new Map([
  [SNP_CERT_GUID.VCEK, 'vcek'],
  [SNP_CERT_GUID.VLEK, 'vlek'],
  [SNP_CERT_GUID.ASK, 'ask'],
  [SNP_CERT_GUID.ARK, 'ark'],
  [SNP_CERT_GUID.CRL, 'crl'],
]);

function malformed(state: string): never {
  throw new TsmError('ERR_TSM_AUXBLOB_MALFORMED', `Cannot parse SEV-SNP certificate table: ${state}`);
}

function guidText(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Length of the DER TLV at the start of `bytes` (tag, length and contents), or undefined if not one. */
function derLength(bytes: Uint8Array): number | undefined {
  if (bytes.byteLength < 2 || bytes[0] !== 0x30) return undefined;
  const first = bytes[1]!;
  if (first < 0x80) return 2 + first;
  const count = first & 0x7f;
  if (count === 0 || count > 4 || bytes.byteLength < 2 + count) return undefined;
  let length = 0;
  for (let i = 0; i < count; i++) length = length * 256 + bytes[2 + i]!;
  // Minimal length encoding only: DER has one form per length.
  if (bytes[2] === 0 || length < 0x80) return undefined;
  return 2 + count + length;
}

/**
 * Parses an SEV-SNP certificate table. An empty blob is an empty table (the host supplied no certificates).
 * Certificates and the CRL must each be exactly one DER SEQUENCE filling their entry.
 *
 * Throws {@link TsmError} `ERR_TSM_AUXBLOB_MALFORMED`; nothing else escapes for any input bytes.
 */
export function parseSnpCertTable(blob: Uint8Array): SnpCertEntry[] {
  if (!(blob instanceof Uint8Array))
    throw new TypeError('Cannot parse SEV-SNP certificate table: expected bytes');
  if (blob.byteLength === 0) return [];
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const raw: { guid: string; offset: number; length: number }[] = [];
  let at = 0;
  for (;;) {
    if (at + ENTRY_SIZE > blob.byteLength) malformed('no terminating zero entry');
    const guidBytes = blob.subarray(at, at + 16);
    const offset = view.getUint32(at + 16, true);
    const length = view.getUint32(at + 20, true);
    at += ENTRY_SIZE;
    if (guidBytes.every((b) => b === 0)) {
      if (offset !== 0 || length !== 0) malformed('the zero GUID entry has an offset or length');
      break;
    }
    raw.push({ guid: guidText(guidBytes), offset, length });
  }
  const tableEnd = at;

  // Layout first (bounds, repeats, overlaps, stray bytes), then what each entry holds.
  const covered: [number, number][] = [[0, tableEnd]];
  const seen = new Set<string>();
  for (const { guid, offset, length } of raw) {
    if (seen.has(guid)) malformed(`${guid} is listed twice`);
    seen.add(guid);
    if (length === 0) malformed(`${guid} has an empty entry`);
    if (offset < tableEnd) malformed(`${guid} points into the table`);
    if (offset + length > blob.byteLength)
      malformed(`${guid} ends past the table's ${blob.byteLength} bytes`);
    covered.push([offset, offset + length]);
  }
  covered.sort((a, b) => a[0] - b[0]);
  let end = 0;
  for (const [start, stop] of [...covered, [blob.byteLength, blob.byteLength] as [number, number]]) {
    if (start < end) malformed('two entries overlap');
    for (let i = end; i < start; i++)
      if (blob[i] !== 0) malformed(`byte ${i} lies outside every entry and is not zero`);
    end = stop;
  }

  return raw.map(({ guid, offset, length }) => {
    const data = Uint8Array.from(blob.subarray(offset, offset + length));
    const kind = KIND_BY_GUID.get(guid) ?? 'other';
    if (kind !== 'other' && derLength(data) !== length) {
      malformed(`the ${kind.toUpperCase()} entry is not one DER structure of ${length} bytes`);
    }
    return { guid, kind, data };
  });
}

/**
 * Encodes a certificate table: entries, the zero entry, then the blobs in order. Used to build what a host
 * would hand over (tests, and tools that stage certificates for a guest).
 */
export function encodeSnpCertTable(entries: readonly { guid: string; data: Uint8Array }[]): Uint8Array {
  const tableEnd = (entries.length + 1) * ENTRY_SIZE;
  const total = entries.reduce((n, e) => n + e.data.byteLength, tableEnd);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let offset = tableEnd;
  entries.forEach((e, i) => {
    if (!GUID_TEXT.test(e.guid))
      throw new TypeError(`Cannot encode certificate table: '${e.guid}' is not a GUID`);
    out.set(Buffer.from(e.guid.replaceAll('-', ''), 'hex'), i * ENTRY_SIZE);
    view.setUint32(i * ENTRY_SIZE + 16, offset, true);
    view.setUint32(i * ENTRY_SIZE + 20, e.data.byteLength, true);
    out.set(e.data, offset);
    offset += e.data.byteLength;
  });
  return out;
}
