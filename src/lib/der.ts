// DER (X.690) writing: just what certificates, their extensions and CRLs need. Each function returns the
// canonical encoding (definite, minimal lengths; minimal integers; one form per boolean and time), so what
// is written here reads back through the canonical reader of src/attestation/der.ts. Shared by the Keep's
// certificates (ratls), the host's TLS identity and the simulated secure processor; imports nothing of the
// project.

/** Universal tags used here. */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** The tag byte of a context-specific constructed `[n]` (EXPLICIT) element. */
export function contextTag(n: number): number {
  return 0xa0 | n;
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** Whether `text` keeps to the PrintableString alphabet (X.680 41.4). */
export function isPrintable(text: string): boolean {
  return PRINTABLE.test(text);
}

function encodeLength(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** One TLV with tag `tag` around the concatenation of `contents`. */
export function tlv(tag: number, ...contents: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const c of contents) length += c.byteLength;
  const len = encodeLength(length);
  const out = new Uint8Array(1 + len.byteLength + length);
  out[0] = tag;
  out.set(len, 1);
  let at = 1 + len.byteLength;
  for (const c of contents) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** A SEQUENCE of already encoded elements. */
export function sequence(...elements: readonly Uint8Array[]): Uint8Array {
  return tlv(TAG.SEQUENCE, ...elements);
}

/** A SET of already encoded elements (the caller gives them in DER order). */
export function set(...elements: readonly Uint8Array[]): Uint8Array {
  return tlv(TAG.SET, ...elements);
}

/** A minimal INTEGER. */
export function integer(value: number | bigint): Uint8Array {
  let n = BigInt(value);
  const bytes: number[] = [];
  if (n === 0n) bytes.push(0);
  const negative = n < 0n;
  while (n !== 0n && n !== -1n) {
    bytes.unshift(Number(n & 0xffn));
    n >>= 8n;
  }
  if (negative && (bytes.length === 0 || (bytes[0]! & 0x80) === 0)) bytes.unshift(0xff);
  if (!negative && (bytes[0]! & 0x80) !== 0) bytes.unshift(0);
  return tlv(TAG.INTEGER, Uint8Array.from(bytes));
}

/** An OBJECT IDENTIFIER from its dotted form. */
export function oid(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map(Number);
  const [a, b, ...rest] = arcs;
  if (a === undefined || b === undefined || arcs.some((x) => !Number.isSafeInteger(x) || x < 0)) {
    throw new RangeError(`Cannot encode OID: "${dotted}" is not a dotted OID`);
  }
  const out: number[] = [];
  for (const arc of [a * 40 + b, ...rest]) {
    const group: number[] = [arc % 128];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) group.unshift(0x80 | (n % 128));
    out.push(...group);
  }
  return tlv(TAG.OID, Uint8Array.from(out));
}

/** An OCTET STRING. */
export function octetString(bytes: Uint8Array): Uint8Array {
  return tlv(TAG.OCTET_STRING, bytes);
}

/** A BIT STRING with no unused bits. */
export function bitString(bytes: Uint8Array): Uint8Array {
  return tlv(TAG.BIT_STRING, Uint8Array.of(0), bytes);
}

/** NULL. */
export function nullValue(): Uint8Array {
  return Uint8Array.of(TAG.NULL, 0);
}

/** A BOOLEAN. */
export function boolean(value: boolean): Uint8Array {
  return Uint8Array.of(TAG.BOOLEAN, 1, value ? 0xff : 0);
}

/** A UTF8String. */
export function utf8String(text: string): Uint8Array {
  return tlv(TAG.UTF8_STRING, new TextEncoder().encode(text));
}

/** A PrintableString (the caller keeps to its alphabet). */
export function printableString(text: string): Uint8Array {
  if (!isPrintable(text))
    throw new RangeError(`Cannot encode PrintableString: "${text}" has other characters`);
  return tlv(TAG.PRINTABLE_STRING, new TextEncoder().encode(text));
}

/** An IA5String (ASCII). */
export function ia5String(text: string): Uint8Array {
  if (!/^[\x00-\x7f]*$/.test(text)) throw new RangeError('Cannot encode IA5String: non-ASCII text');
  return tlv(TAG.IA5_STRING, new TextEncoder().encode(text));
}

/** A certificate time: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5). */
export function time(date: Date): Uint8Array {
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const year = date.getUTCFullYear();
  if (year < 1950 || year > 9999) throw new RangeError(`Cannot encode time: year ${year} is out of range`);
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  return year < 2050
    ? tlv(TAG.UTC_TIME, new TextEncoder().encode(`${digits.slice(2)}Z`))
    : tlv(TAG.GENERALIZED_TIME, new TextEncoder().encode(`${digits}Z`));
}

/** A context-specific constructed `[n]` element around `contents` (EXPLICIT tagging). */
export function explicit(n: number, ...contents: readonly Uint8Array[]): Uint8Array {
  return tlv(contextTag(n), ...contents);
}
