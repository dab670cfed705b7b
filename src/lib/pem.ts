// PEM (RFC 7468) in its strict form, the one reader and the one writer of the project. Every block lies
// between a BEGIN and an END line with the same label, and its body is canonical base64 (whitespace aside),
// so one text has one reading. AMD certificate chains, Intel issuer-chain headers, the PCK chain inside a
// DCAP quote, the built-in roots and the files a user hands to `donjon attest verify` all go through here.
// Imports nothing of the project but lib.
import { DonjonError } from './errors.ts';

/** The label grammar kept here: upper-case letters, digits and inner spaces (`CERTIFICATE`, `X509 CRL`). */
const LABEL = /^[A-Z0-9]+(?: [A-Z0-9]+)*$/;
const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
const BODY_WHITESPACE = /[ \t\r\n]+/g;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BETWEEN = /^[ \t\r\n]*$/;

/**
 * A text that is not strict PEM. Each area catches it and throws its own error with its own code (the
 * attestation verifier's ERR_EVIDENCE_MALFORMED, collateral's ERR_COLLATERAL_MALFORMED, …), passing this one
 * on as the cause; `detail` is the reason for that sentence.
 */
export class PemError extends DonjonError<'ERR_PEM_MALFORMED'> {
  constructor(state: string) {
    super('ERR_PEM_MALFORMED', 'usage', `Cannot read PEM: ${state}`);
  }
}

/** One decoded PEM block: its label (e.g. `CERTIFICATE`, `X509 CRL`) and its DER. */
export interface PemBlock {
  readonly label: string;
  readonly der: Uint8Array;
}

/** How strictly {@link readPem} treats what lies around the blocks, and which blocks it returns. */
export interface ReadPemOptions {
  /**
   * Refuse any text outside the blocks but whitespace: for a field or a record that is nothing but PEM.
   * Default false: text around the blocks is ignored, as PEM bundles often carry comments.
   */
  only?: boolean;
  /** Return only the blocks with this label; the others are still checked, then skipped. */
  label?: string;
}

/**
 * Every PEM block of `text`, in order. A block whose END label differs from its BEGIN label, or whose body
 * is not canonical base64 (characters outside the alphabet, misplaced or missing padding, non-zero padding
 * bits, an empty body), fails with {@link PemError}; so does text around the blocks under `only`.
 *
 * @example
 * const ders = readPem(text, { label: 'CERTIFICATE' }).map((b) => b.der);
 */
export function readPem(text: string, options: ReadPemOptions = {}): PemBlock[] {
  if (typeof text !== 'string') throw new TypeError('Cannot read PEM: expected a string');
  const out: PemBlock[] = [];
  let last = 0;
  for (const m of text.matchAll(BLOCK)) {
    if (options.only === true && !BETWEEN.test(text.slice(last, m.index))) {
      throw new PemError(`it has text that is not a PEM block at ${last}`);
    }
    last = m.index + m[0].length;
    const label = m[1]!;
    if (m[3] !== label) throw new PemError(`BEGIN ${label} ends with END ${m[3]}`);
    const der = fromCanonicalBase64(m[2]!.replace(BODY_WHITESPACE, ''));
    if (der === undefined) throw new PemError(`the ${label} block is not canonical base64`);
    if (options.label === undefined || label === options.label) out.push({ label, der });
  }
  if (options.only === true && !BETWEEN.test(text.slice(last))) {
    throw new PemError(`it has text that is not a PEM block at ${last}`);
  }
  return out;
}

/** Bytes of a non-empty canonical base64 string, or undefined. */
function fromCanonicalBase64(body: string): Uint8Array | undefined {
  if (body.length === 0 || body.length % 4 !== 0 || !BASE64.test(body)) return undefined;
  const der = new Uint8Array(Buffer.from(body, 'base64'));
  // Non-zero padding bits decode but do not round-trip; refusing them gives each block one encoding.
  return Buffer.from(der).toString('base64') === body ? der : undefined;
}

/**
 * PEM text of one DER object: base64 in lines of 64 columns, as OpenSSL writes it, ended by a newline.
 * What it writes, {@link readPem} reads back.
 */
export function writePem(der: Uint8Array, label = 'CERTIFICATE'): string {
  if (!(der instanceof Uint8Array) || der.byteLength === 0)
    throw new TypeError('Cannot write PEM: expected a non-empty Uint8Array');
  if (!LABEL.test(label)) throw new RangeError(`Cannot write PEM: "${label}" is not a PEM label`);
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
