// Small byte helpers shared by the attestation parsers. Internal: not re-exported from index.ts.
import { createHash } from 'node:crypto';

const HEX = /^[0-9a-f]*$/i;

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Bytes of a hex string, or undefined when it is not an even-length hex string. */
export function tryFromHex(hex: string): Uint8Array | undefined {
  if (hex.length % 2 !== 0 || !HEX.test(hex)) return undefined;
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** Whether two byte arrays hold the same bytes. Not constant-time: only public values are compared. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether every byte of `bytes[start, end)` is zero. */
export function isZero(bytes: Uint8Array, start = 0, end = bytes.byteLength): boolean {
  for (let i = start; i < end; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Concatenation of `parts` into a fresh array. */
export function concat(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.byteLength;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Lower-case hex SHA-256 of `bytes`: the fingerprint form used for certificates and roots. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A copy of `bytes` with the byte order reversed (little-endian <-> big-endian). */
export function reversed(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  for (let i = 0; i < bytes.byteLength; i++) out[i] = bytes[bytes.byteLength - 1 - i]!;
  return out;
}

/** Base64 of `bytes` (standard alphabet, padded). */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Bytes of a canonical base64 string (standard alphabet, padded), or undefined when it is not one. */
export function tryFromBase64(text: string): Uint8Array | undefined {
  if (!BASE64.test(text)) return undefined;
  const bytes = new Uint8Array(Buffer.from(text, 'base64'));
  // Non-zero padding bits decode but do not round-trip; refuse them so each value has one encoding.
  return toBase64(bytes) === text ? bytes : undefined;
}
