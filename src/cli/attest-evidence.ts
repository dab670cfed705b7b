/**
 * Evidence in the forms people hold: what other tools and clouds hand out, read as the bytes they hold and
 * named, so that `donjon attest verify` says which form it read. Raw bytes; hex text (with or without a
 * `0x`/`0X` prefix, whitespace anywhere); base64, plain or URL-safe; an SEV-SNP report followed by padding
 * (Azure's 1204-byte buffers: as go-sev-guest does, any length of at least 1184 is read as its first 1184
 * bytes). What is recognisably something else is refused with what it is and what to pass instead: several
 * quotes one per line, an Azure HCL report (the SEV-SNP report inside it, or a TDREPORT that no verifier can
 * check), a bare TDREPORT, a JSON wrapper.
 */
import { detectEvidenceKind } from '../attestation/index.ts';
import { reasonOf } from '../lib/errors.ts';
import type { EvidenceKind } from './attest-report.ts';
import { UsageError } from './errors.ts';

/** Bytes of an SEV-SNP attestation report. */
export const SNP_REPORT_SIZE = 1184;
/** Bytes of the header of an Azure HCL report, before the hardware report. */
const HCL_HEADER = 32;
/** Where an HCL report's own data (after the hardware report slot) says which report it holds. */
const HCL_TYPE_OFFSET = HCL_HEADER + SNP_REPORT_SIZE + 8;
/** Bytes of a TDX TDREPORT. */
const TDREPORT_SIZE = 1024;

/** The evidence a file holds, with the form it was read in (for the user: "hex text with a 0x prefix"). */
export interface EvidenceRead {
  bytes: Uint8Array;
  kind: EvidenceKind;
  /** How the file held it, e.g. `raw bytes`, `base64 (URL-safe)`, `hex text with a 0x prefix`. */
  form: string;
}

const PRINTABLE = /^[\t\n\r\x20-\x7e]*$/;
const HEX = /^[0-9a-fA-F]+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;

/** Text as the bytes it encodes, with its form; undefined when it is neither hex nor base64. */
function decodeText(text: string, path: string): { bytes: Uint8Array; form: string } | undefined {
  let compact = text.replace(/\s+/g, '');
  let prefix = false;
  if (/^0[xX]/.test(compact)) {
    compact = compact.slice(2);
    prefix = true;
  }
  if (compact.length === 0) {
    throw new UsageError(`Cannot read evidence ${path}: the file holds only whitespace`);
  }
  if (HEX.test(compact)) {
    if (compact.length % 2 !== 0)
      throw new UsageError(`Cannot read evidence ${path}: odd number of hex digits`);
    return {
      bytes: new Uint8Array(Buffer.from(compact, 'hex')),
      form: prefix ? 'hex text with a 0x prefix' : 'hex text',
    };
  }
  if (prefix)
    throw new UsageError(`Cannot read evidence ${path}: 0x is followed by something other than hex digits`);
  const plain = BASE64.test(compact);
  const url = !plain && BASE64URL.test(compact);
  if (!plain && !url) return undefined;
  const body = compact.replace(/=+$/, '');
  if (body.length % 4 === 1)
    throw new UsageError(`Cannot read evidence ${path}: base64 of an impossible length`);
  const bytes = new Uint8Array(Buffer.from(body, url ? 'base64url' : 'base64'));
  return { bytes, form: url ? 'base64 (URL-safe)' : 'base64' };
}

/** A JSON file's refusal: what it is, and which of its fields to pass instead. */
function jsonRefusal(text: string, path: string): UsageError {
  let keys: string[] = [];
  try {
    const value = JSON.parse(text) as unknown;
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) keys = Object.keys(value);
  } catch {
    // not even JSON: said below without the keys
  }
  const has = (k: string): boolean => keys.includes(k);
  let instead =
    'save the report or quote one of its fields holds, decoded, to a file of its own and pass that';
  if (has('td_quote'))
    instead = 'its td_quote (base64url) is the TD quote to verify: decode it to a file and pass that';
  else if (has('hcl_report')) {
    instead = `its hcl_report (base64url) is an Azure HCL report; the SEV-SNP report is its bytes ${HCL_HEADER} to ${HCL_HEADER + SNP_REPORT_SIZE}: decode it and pass those`;
  } else if (has('quote')) instead = 'its quote field is the evidence: decode it to a file and pass that';
  else if (has('report')) instead = 'its report field is the evidence: decode it to a file and pass that';
  const what = keys.length > 0 ? `JSON with the fields ${keys.join(', ')}` : 'JSON';
  return new UsageError(
    `Cannot read evidence ${path}: it is ${what}, a wrapper rather than evidence; ${instead}`,
  );
}

/** Bytes recognisably other than evidence: what they are and what to pass instead; else undefined. */
function recognise(bytes: Uint8Array, path: string): UsageError | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength >= HCL_HEADER && Buffer.from(bytes.subarray(0, 4)).toString('latin1') === 'HCLA') {
    const type = bytes.byteLength >= HCL_TYPE_OFFSET + 4 ? view.getUint32(HCL_TYPE_OFFSET, true) : undefined;
    if (type === 4 || bytes[HCL_HEADER] === 0x81) {
      return new UsageError(
        `Cannot read evidence ${path}: it is an Azure HCL report holding a TDX TDREPORT, which only its own machine can check; pass the TD quote made from it instead (Azure's evidence JSON holds it as td_quote)`,
      );
    }
    return new UsageError(
      `Cannot read evidence ${path}: it is an Azure HCL report (HCLA header); the SEV-SNP report is its bytes ${HCL_HEADER} to ${HCL_HEADER + SNP_REPORT_SIZE}: pass those (dd if=${path} of=report.bin bs=1 skip=${HCL_HEADER} count=${SNP_REPORT_SIZE})`,
    );
  }
  if (bytes.byteLength === TDREPORT_SIZE && bytes[0] === 0x81) {
    return new UsageError(
      `Cannot read evidence ${path}: it is a TDX TDREPORT (1024 bytes), which only its own machine can check; pass a TD quote made from it (configfs-tsm or the quoting enclave) instead`,
    );
  }
  return undefined;
}

/** Whether the bytes begin like an SEV-SNP report: version 2 to 5, signature algorithm 1 (ECDSA P-384). */
function looksLikeSnp(bytes: Uint8Array): boolean {
  if (bytes.byteLength < SNP_REPORT_SIZE) return false;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(0, true);
  return version >= 2 && version <= 5 && view.getUint32(0x34, true) === 1;
}

/** The kind of `bytes`, or a usage error naming the file and saying why not. */
function kindOf(bytes: Uint8Array, path: string): EvidenceKind {
  try {
    return detectEvidenceKind(bytes);
  } catch (error) {
    throw new UsageError(`Cannot tell what ${path} holds: ${reasonOf(error)}`, { cause: error });
  }
}

/**
 * The evidence in a file's bytes, in whichever form it holds it; a usage error that names the file and, where
 * the bytes are recognisably something else, what they are and what to pass instead.
 */
export function readEvidence(file: Uint8Array, path: string): EvidenceRead {
  if (file.byteLength === 0) throw new UsageError(`Cannot read evidence ${path}: the file is empty`);
  let bytes = file;
  let form = 'raw bytes';
  const text = Buffer.from(file).toString('latin1');
  if (PRINTABLE.test(text)) {
    const trimmed = text.trim();
    if (trimmed.startsWith('{') || trimmed.startsWith('[')) throw jsonRefusal(trimmed, path);
    const lines = trimmed.split(/\r?\n/).filter((l) => l.trim() !== '');
    if (lines.length > 1) {
      // A dump wrapped at any width is one piece of evidence (its later lines do not begin like one); lines
      // that each begin like evidence are several.
      const whole = lines.map((l) => {
        try {
          const d = decodeText(l, path);
          return d !== undefined && (looksLikeSnp(d.bytes) || isEvidence(d.bytes));
        } catch {
          return false;
        }
      });
      if (whole.filter(Boolean).length > 1) {
        throw new UsageError(
          `Cannot read evidence ${path}: it holds ${lines.length} lines, each one a quote or report; pass one per file (e.g. sed -n 1p ${path} > one.txt)`,
        );
      }
    }
    const decoded = decodeText(trimmed, path);
    if (decoded === undefined) {
      throw new UsageError(`Cannot read evidence ${path}: it is text, but neither hex nor base64`);
    }
    ({ bytes, form } = decoded);
    if (bytes.byteLength === 0) throw new UsageError(`Cannot read evidence ${path}: it decodes to no bytes`);
  }
  const other = recognise(bytes, path);
  if (other) throw other;
  if (bytes.byteLength > SNP_REPORT_SIZE && looksLikeSnp(bytes)) {
    form += `, an SEV-SNP report followed by ${bytes.byteLength - SNP_REPORT_SIZE} bytes of padding (read its first ${SNP_REPORT_SIZE} of ${bytes.byteLength})`;
    bytes = bytes.subarray(0, SNP_REPORT_SIZE);
  }
  return { bytes, kind: kindOf(bytes, path), form };
}

function isEvidence(bytes: Uint8Array): boolean {
  try {
    detectEvidenceKind(bytes);
    return true;
  } catch {
    return false;
  }
}
