// Just enough of an Intel TDX DCAP quote (v4, v5; Intel TDX DCAP Quoting Library API, appendix A) for the
// host to check what the kernel handed over: that it is a TDX quote whose lengths add up, and which
// REPORTDATA it binds. Verifying it (PCK chain, QE report, signatures, TCB) is the client's job.
import { TsmError } from './errors.ts';

const HEADER = 48;
const TEE_TDX = 0x81;
const ATT_KEY_ECDSA_P256 = 2;
/** Offset of REPORTDATA inside a TD quote body (TDX 1.0 and 1.5 alike). */
const BODY_REPORT_DATA = 520;
/** Body sizes by v5 body type: 2 = TDX 1.0, 3 = TDX 1.5. */
const V5_BODY_SIZE: Readonly<Record<number, number>> = { 2: 584, 3: 648 };
const V4_BODY_SIZE = 584;

/** What the host reads of a TDX quote. */
export interface TdxQuoteInfo {
  version: 4 | 5;
  /** The 64 bytes of REPORTDATA (a copy). */
  reportData: Uint8Array;
  /** Length of the quote proper; the rest of the buffer is zero padding. */
  length: number;
}

function malformed(state: string): never {
  throw new TsmError('ERR_TSM_OUTBLOB_MALFORMED', `Cannot read TDX quote: ${state}`);
}

/**
 * Reads the version and REPORTDATA of a TDX quote as configfs-tsm's tdx_guest provider returns it. Bytes after
 * the signature data must be zero (quote buffers are often padded); anything else there is refused.
 *
 * Throws {@link TsmError} `ERR_TSM_OUTBLOB_MALFORMED`; nothing else escapes for any input bytes.
 */
export function readTdxQuote(quote: Uint8Array): TdxQuoteInfo {
  if (!(quote instanceof Uint8Array)) throw new TypeError('Cannot read TDX quote: expected bytes');
  if (quote.byteLength < HEADER) malformed(`${quote.byteLength} bytes is shorter than a quote header`);
  const view = new DataView(quote.buffer, quote.byteOffset, quote.byteLength);
  const version = view.getUint16(0, true);
  if (version !== 4 && version !== 5) malformed(`version ${version} is not 4 or 5`);
  const keyType = view.getUint16(2, true);
  if (keyType !== ATT_KEY_ECDSA_P256) malformed(`attestation key type ${keyType} is not ECDSA P-256`);
  const teeType = view.getUint32(4, true);
  if (teeType !== TEE_TDX) malformed(`TEE type 0x${teeType.toString(16)} is not TDX`);

  let body = HEADER;
  let bodySize = V4_BODY_SIZE;
  if (version === 5) {
    if (quote.byteLength < HEADER + 6) malformed('the v5 body header is cut short');
    const bodyType = view.getUint16(HEADER, true);
    const expected = V5_BODY_SIZE[bodyType];
    if (expected === undefined) malformed(`v5 body type ${bodyType} is not a TD report`);
    bodySize = view.getUint32(HEADER + 2, true);
    if (bodySize !== expected) malformed(`v5 body size ${bodySize} does not match body type ${bodyType}`);
    body = HEADER + 6;
  }
  const sigLengthAt = body + bodySize;
  if (quote.byteLength < sigLengthAt + 4)
    malformed(`${quote.byteLength} bytes is shorter than the quote body`);
  const sigLength = view.getUint32(sigLengthAt, true);
  const length = sigLengthAt + 4 + sigLength;
  if (length > quote.byteLength)
    malformed(`the signature data needs ${length} bytes, the quote has ${quote.byteLength}`);
  for (let i = length; i < quote.byteLength; i++) {
    if (quote[i] !== 0) malformed(`byte ${i} after the signature data is not zero padding`);
  }
  const reportData = Uint8Array.from(quote.subarray(body + BODY_REPORT_DATA, body + BODY_REPORT_DATA + 64));
  return { version, reportData, length };
}
