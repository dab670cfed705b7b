// Minimal DER (X.690) reading: just what certificates, CRLs and the AMD and Intel extensions need.
// The reader accepts only the canonical encoding (definite, minimal lengths; minimal integers; one
// encoding per boolean and time), so every certificate has one byte form and one meaning.
// The writer is src/lib/der.ts (the host and ratls write certificates too); the reader stays here because
// its failures are the verifier's (ERR_EVIDENCE_MALFORMED) and only the verifier and the host's collateral
// code, which may import attestation, read DER. Internal: not re-exported from index.ts.
import { isPrintable, TAG } from '../lib/der.ts';
import { AttestationError } from './errors.ts';

/** One decoded TLV: its tag byte, the whole encoding and the contents. */
export interface DerNode {
  readonly tag: number;
  readonly bytes: Uint8Array;
  readonly value: Uint8Array;
}

function fail(state: string): never {
  throw new AttestationError('ERR_EVIDENCE_MALFORMED', `Cannot parse DER: ${state}`);
}

/** Decodes the TLV at `offset` of `bytes`; fails on anything but canonical single-byte-tag DER. */
export function readNode(bytes: Uint8Array, offset: number): DerNode {
  if (offset + 2 > bytes.byteLength) fail('truncated header');
  const tag = bytes[offset]!;
  if ((tag & 0x1f) === 0x1f) fail('high tag numbers are not supported');
  const first = bytes[offset + 1]!;
  let length: number;
  let header = 2;
  if (first < 0x80) {
    length = first;
  } else {
    const n = first & 0x7f;
    if (n === 0) fail('indefinite length');
    if (n > 4) fail('length too large');
    if (offset + 2 + n > bytes.byteLength) fail('truncated length');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + bytes[offset + 2 + i]!;
    if (bytes[offset + 2] === 0 || length < 0x80) fail('non-minimal length');
    header += n;
  }
  const end = offset + header + length;
  if (end > bytes.byteLength) fail('truncated value');
  return {
    tag,
    bytes: bytes.subarray(offset, end),
    value: bytes.subarray(offset + header, end),
  };
}

/** Decodes `bytes` as exactly one TLV (no trailing bytes). */
export function readOne(bytes: Uint8Array, tag?: number): DerNode {
  const node = readNode(bytes, 0);
  if (node.bytes.byteLength !== bytes.byteLength) fail('trailing bytes');
  if (tag !== undefined && node.tag !== tag)
    fail(`expected tag 0x${tag.toString(16)}, got 0x${node.tag.toString(16)}`);
  return node;
}

/** Sequential reader over the contents of a constructed element. */
export class DerReader {
  readonly #bytes: Uint8Array;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  /** Whether every element has been read. */
  get done(): boolean {
    return this.#offset >= this.#bytes.byteLength;
  }

  /** The tag of the next element, or undefined at the end. */
  peekTag(): number | undefined {
    return this.done ? undefined : this.#bytes[this.#offset];
  }

  /** The next element, which must have tag `tag` when given. */
  next(tag?: number): DerNode {
    if (this.done) fail('missing element');
    const node = readNode(this.#bytes, this.#offset);
    if (tag !== undefined && node.tag !== tag) {
      fail(`expected tag 0x${tag.toString(16)}, got 0x${node.tag.toString(16)}`);
    }
    this.#offset += node.bytes.byteLength;
    return node;
  }

  /** The next element when it has tag `tag`, else undefined (nothing consumed). */
  optional(tag: number): DerNode | undefined {
    return this.peekTag() === tag ? this.next(tag) : undefined;
  }

  /** Fails unless every element has been read. */
  end(): void {
    if (!this.done) fail('unexpected trailing element');
  }
}

/** A reader over the children of a constructed node. */
export function children(node: DerNode): DerReader {
  if ((node.tag & 0x20) === 0) fail('expected a constructed element');
  return new DerReader(node.value);
}

/** The value of a canonical INTEGER as a bigint. */
export function readBigInt(node: DerNode): bigint {
  if (node.tag !== TAG.INTEGER) fail('expected an INTEGER');
  const v = node.value;
  if (v.byteLength === 0) fail('empty INTEGER');
  if (v.byteLength > 1 && ((v[0] === 0 && (v[1]! & 0x80) === 0) || (v[0] === 0xff && (v[1]! & 0x80) !== 0))) {
    fail('non-minimal INTEGER');
  }
  let n = 0n;
  for (const b of v) n = (n << 8n) | BigInt(b);
  if ((v[0]! & 0x80) !== 0) n -= 1n << BigInt(v.byteLength * 8);
  return n;
}

/** The value of a canonical, non-negative INTEGER no larger than `max`. */
export function readSmallInt(node: DerNode, max = Number.MAX_SAFE_INTEGER): number {
  const n = readBigInt(node);
  if (n < 0n || n > BigInt(max)) fail(`INTEGER out of range 0..${max}`);
  return Number(n);
}

/** The dotted form of an OBJECT IDENTIFIER. */
export function readOid(node: DerNode): string {
  if (node.tag !== TAG.OID) fail('expected an OBJECT IDENTIFIER');
  const v = node.value;
  if (v.byteLength === 0) fail('empty OBJECT IDENTIFIER');
  const arcs: number[] = [];
  let acc = 0;
  let start = true;
  for (let i = 0; i < v.byteLength; i++) {
    const b = v[i]!;
    if (start && b === 0x80) fail('non-minimal OBJECT IDENTIFIER arc');
    if (acc > 2 ** 45) fail('OBJECT IDENTIFIER arc too large');
    acc = acc * 128 + (b & 0x7f);
    start = (b & 0x80) === 0;
    if (start) {
      arcs.push(acc);
      acc = 0;
    }
  }
  if (!start) fail('truncated OBJECT IDENTIFIER');
  const first = arcs[0]!;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

/** The value of a BOOLEAN (DER allows only 0x00 and 0xFF). */
export function readBoolean(node: DerNode): boolean {
  if (node.tag !== TAG.BOOLEAN || node.value.byteLength !== 1) fail('expected a BOOLEAN');
  if (node.value[0] === 0xff) return true;
  if (node.value[0] === 0x00) return false;
  return fail('non-canonical BOOLEAN');
}

/** The contents of a BIT STRING that has no unused bits. */
export function readBitStringBytes(node: DerNode): Uint8Array {
  if (node.tag !== TAG.BIT_STRING || node.value.byteLength === 0) fail('expected a BIT STRING');
  if (node.value[0] !== 0) fail('BIT STRING with unused bits');
  return node.value.subarray(1);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The text of a UTF8String, PrintableString or IA5String. */
export function readString(node: DerNode): string {
  switch (node.tag) {
    case TAG.UTF8_STRING:
      try {
        return utf8.decode(node.value);
      } catch (cause) {
        throw new AttestationError('ERR_EVIDENCE_MALFORMED', 'Cannot parse DER: invalid UTF8String', {
          cause,
        });
      }
    case TAG.PRINTABLE_STRING: {
      const s = String.fromCharCode(...node.value);
      if (!isPrintable(s)) fail('invalid PrintableString');
      return s;
    }
    case TAG.IA5_STRING: {
      for (const b of node.value) if (b > 0x7f) fail('invalid IA5String');
      return String.fromCharCode(...node.value);
    }
    default:
      return fail('expected a string');
  }
}

const UTC_TIME = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;
const GENERALIZED_TIME = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;

/** The instant of a UTCTime or GeneralizedTime in the RFC 5280 profile (seconds, Zulu, no fraction). */
export function readTime(node: DerNode): Date {
  const text = String.fromCharCode(...node.value);
  const utc = node.tag === TAG.UTC_TIME ? UTC_TIME.exec(text) : null;
  const gen = node.tag === TAG.GENERALIZED_TIME ? GENERALIZED_TIME.exec(text) : null;
  const m = utc ?? gen;
  if (m === null) return fail('invalid time');
  let year = Number(m[1]);
  if (utc !== null) year += year < 50 ? 2000 : 1900;
  const [month, day, hour, minute, second] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Reject field values that Date.UTC would silently roll over (month 13, 31 February, 24:00).
  if (
    date.getUTCFullYear() !== year ||
    date.getUTCMonth() !== month - 1 ||
    date.getUTCDate() !== day ||
    date.getUTCHours() !== hour ||
    date.getUTCMinutes() !== minute ||
    date.getUTCSeconds() !== second
  ) {
    fail('invalid time');
  }
  return date;
}
