// EFI GUIDs as firmware stores them: the first three fields little-endian, the last two as written
// (what Python's `uuid.UUID.bytes_le` and EDK2's `EFI_GUID` give). The OVMF footer table and the SEV
// kernel-hashes table both use this order.

const GUID_TEXT = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/;

/** The 16 bytes of a GUID in EFI (mixed-endian) order, from its lower-case text form. */
export function efiGuidBytes(text: string): Uint8Array {
  const m = GUID_TEXT.exec(text);
  if (!m) throw new TypeError(`Cannot encode GUID: '${text}' is not a lower-case GUID`);
  const be = Buffer.from(text.replaceAll('-', ''), 'hex');
  const out = new Uint8Array(16);
  // time_low (4), time_mid (2), time_hi_and_version (2) reversed; the rest as written.
  out.set([be[3]!, be[2]!, be[1]!, be[0]!, be[5]!, be[4]!, be[7]!, be[6]!]);
  out.set(be.subarray(8), 8);
  return out;
}

/** The lower-case text form of 16 GUID bytes in EFI (mixed-endian) order. */
export function efiGuidText(bytes: Uint8Array): string {
  if (bytes.byteLength !== 16) throw new RangeError('Cannot decode GUID: expected 16 bytes');
  const b = bytes;
  const hex = (parts: number[]) => Buffer.from(parts).toString('hex');
  return [
    hex([b[3]!, b[2]!, b[1]!, b[0]!]),
    hex([b[5]!, b[4]!]),
    hex([b[7]!, b[6]!]),
    hex([b[8]!, b[9]!]),
    hex(Array.from(b.subarray(10, 16))),
  ].join('-');
}
