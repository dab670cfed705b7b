// Over 400 lines: three quote versions share one reader; splitting them would duplicate its bounds checks.
// Intel DCAP ECDSA quotes: version 3 (SGX), version 4 (TDX 1.0) and version 5 (TDX 1.0 and 1.5 bodies),
// with ECDSA-256 signature data carrying a PCK certificate chain (certification data type 5). Layouts
// from Intel's "SGX ECDSA Quote Library API" and "TDX DCAP Quoting Library API" (appendix A), all
// integers little-endian. Reserved fields must be zero and every length must account for its bytes
// exactly, so a quote has one reading; bytes after the signature data (fixed-size buffers pad quotes)
// are outside the quote and ignored.
import { type PemBlock, PemError, readPem } from '../../lib/pem.ts';
import { AttestationError } from '../errors.ts';
import { parseCertificate } from '../x509.ts';

/** The QE vendor id of Intel's quoting enclaves. */
export const INTEL_QE_VENDOR_ID = '939a7233f79c4ca9940a0db3957f0607';
/** Attestation key type 2: ECDSA-256 with P-256. */
export const ATTESTATION_KEY_ECDSA_P256 = 2;
/** TEE type of TDX in v4/v5 headers (SGX is 0). */
export const TEE_TYPE_TDX = 0x81;
/** Size of an SGX report body (enclave or quoting enclave). */
export const SGX_REPORT_SIZE = 384;
/** Size of a TDX 1.0 TD report body. */
export const TD10_REPORT_SIZE = 584;
/** Size of a TDX 1.5 TD report body. */
export const TD15_REPORT_SIZE = 648;
const HEADER_SIZE = 48;

/** The 48-byte quote header. */
export interface DcapHeader {
  version: 3 | 4 | 5;
  /** 2: ECDSA-256 with P-256 (the only type supported). */
  attestationKeyType: number;
  /** 0 for SGX (reserved in v3), 0x81 for TDX. */
  teeType: number;
  /** Bytes 8..9: the QE's ISVSVN in v3 quotes, reserved (zero) in v4 and v5. */
  qeSvn: number;
  /** Bytes 10..11: the PCE's ISVSVN in v3 quotes, reserved (zero) in v4 and v5. */
  pceSvn: number;
  qeVendorId: Uint8Array;
  /** 20 bytes; the first 16 identify the platform and QE to the QE's owner. */
  userData: Uint8Array;
}

/** An SGX report body (384 bytes): an enclave's, or the quoting enclave's own. */
export interface SgxReportBody {
  cpuSvn: Uint8Array;
  miscSelect: number;
  isvExtProdId: Uint8Array;
  /** 16 bytes: FLAGS (u64; bit 1 DEBUG) then XFRM (u64). */
  attributes: Uint8Array;
  mrEnclave: Uint8Array;
  mrSigner: Uint8Array;
  configId: Uint8Array;
  isvProdId: number;
  isvSvn: number;
  configSvn: number;
  isvFamilyId: Uint8Array;
  reportData: Uint8Array;
  /** ATTRIBUTES.FLAGS bit 1: the enclave can be debugged (its memory read and written). */
  debug: boolean;
}

/** A TD report body: TDX 1.0 (584 bytes) or TDX 1.5 (648 bytes, with `teeTcbSvn2` and `mrServiceTd`). */
export interface TdReportBody {
  /** 16 bytes: [0] TDX module ISVSVN, [1] TDX module major version, then TCB components. */
  teeTcbSvn: Uint8Array;
  mrSeam: Uint8Array;
  mrSignerSeam: Uint8Array;
  seamAttributes: Uint8Array;
  tdAttributes: Uint8Array;
  xfam: Uint8Array;
  mrTd: Uint8Array;
  mrConfigId: Uint8Array;
  mrOwner: Uint8Array;
  mrOwnerConfig: Uint8Array;
  rtmrs: readonly [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  reportData: Uint8Array;
  /** TDX 1.5 only. */
  teeTcbSvn2?: Uint8Array;
  /** TDX 1.5 only. */
  mrServiceTd?: Uint8Array;
  /** TD_ATTRIBUTES bit 0: the TD runs in debug mode (the host can read its state). */
  debug: boolean;
}

/** What every quote version carries besides its body. */
interface DcapQuoteParts {
  version: 3 | 4 | 5;
  header: DcapHeader;
  /** The bytes the attestation key signs (header and body; v5 includes the body type and size). */
  signedBytes: Uint8Array;
  /** ECDSA P-256 signature over `signedBytes`, 64 bytes big-endian r || s. */
  signature: Uint8Array;
  /** The attestation public key, 64 bytes x || y (uncompressed point without its 0x04 prefix). */
  attestationKey: Uint8Array;
  /** The quoting enclave's report, signed by the PCK. */
  qeReport: SgxReportBody;
  /** The 384 bytes the PCK signs. */
  qeReportBytes: Uint8Array;
  /** ECDSA P-256 signature of the PCK over `qeReportBytes`, 64 bytes r || s. */
  qeReportSignature: Uint8Array;
  /** Data the QE hashed with the attestation key into its REPORTDATA. */
  qeAuthData: Uint8Array;
  /** The PCK certificate chain from the certification data (DER, in the quote's order: PCK first). */
  pckChain: readonly Uint8Array[];
  /** The quote from its header to the end of its signature data. */
  bytes: Uint8Array;
  /** How many bytes followed the signature data in the input (ignored). */
  trailingBytes: number;
}

/** An SGX quote (version 3). */
export interface SgxQuote extends DcapQuoteParts {
  kind: 'sgx';
  body: SgxReportBody;
}

/** A TDX quote (version 4 with a TDX 1.0 body, or version 5 with a TDX 1.0 or 1.5 body). */
export interface TdxQuote extends DcapQuoteParts {
  kind: 'tdx';
  /** Which TD report layout the body has. */
  tdxVersion: '1.0' | '1.5';
  body: TdReportBody;
}

/** A parsed DCAP quote. Byte fields are fresh copies. */
export type DcapQuote = SgxQuote | TdxQuote;

function malformed(state: string, cause?: unknown): never {
  throw new AttestationError(
    'ERR_EVIDENCE_MALFORMED',
    `Cannot parse DCAP quote: ${state}`,
    cause === undefined ? undefined : { cause },
  );
}

function unsupported(state: string): never {
  throw new AttestationError('ERR_EVIDENCE_UNSUPPORTED', `Cannot parse DCAP quote: ${state}`);
}

// Bounds-checked little-endian reads: every read goes through `at`, which refuses to leave the buffer.
class View {
  readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }
  at(offset: number, length: number): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > this.bytes.byteLength) {
      malformed(`read of ${length} bytes at ${offset} is past its end (${this.bytes.byteLength} bytes)`);
    }
    return this.bytes.subarray(offset, offset + length);
  }
  copy(offset: number, length: number): Uint8Array {
    return this.at(offset, length).slice();
  }
  u16(offset: number): number {
    const b = this.at(offset, 2);
    return b[0]! | (b[1]! << 8);
  }
  u32(offset: number): number {
    const b = this.at(offset, 4);
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  }
  mbz(offset: number, length: number, what: string): void {
    const b = this.at(offset, length);
    for (let i = 0; i < b.byteLength; i++) if (b[i] !== 0) malformed(`${what} is not zero`);
  }
}

/** Reads an SGX report body at `offset`; `what` names it in messages. */
function readSgxReport(v: View, offset: number, what: string): SgxReportBody {
  v.at(offset, SGX_REPORT_SIZE);
  v.mbz(offset + 20, 12, `${what} reserved bytes 20..31`);
  v.mbz(offset + 96, 32, `${what} reserved bytes 96..127`);
  v.mbz(offset + 160, 32, `${what} reserved bytes 160..191`);
  v.mbz(offset + 262, 42, `${what} reserved bytes 262..303`);
  const attributes = v.copy(offset + 48, 16);
  return {
    cpuSvn: v.copy(offset, 16),
    miscSelect: v.u32(offset + 16),
    isvExtProdId: v.copy(offset + 32, 16),
    attributes,
    mrEnclave: v.copy(offset + 64, 32),
    mrSigner: v.copy(offset + 128, 32),
    configId: v.copy(offset + 192, 64),
    isvProdId: v.u16(offset + 256),
    isvSvn: v.u16(offset + 258),
    configSvn: v.u16(offset + 260),
    isvFamilyId: v.copy(offset + 304, 16),
    reportData: v.copy(offset + 320, 64),
    debug: (attributes[0]! & 0x02) !== 0,
  };
}

function readTdReport(v: View, offset: number, size: number): TdReportBody {
  v.at(offset, size);
  const tdAttributes = v.copy(offset + 120, 8);
  const body: TdReportBody = {
    teeTcbSvn: v.copy(offset, 16),
    mrSeam: v.copy(offset + 16, 48),
    mrSignerSeam: v.copy(offset + 64, 48),
    seamAttributes: v.copy(offset + 112, 8),
    tdAttributes,
    xfam: v.copy(offset + 128, 8),
    mrTd: v.copy(offset + 136, 48),
    mrConfigId: v.copy(offset + 184, 48),
    mrOwner: v.copy(offset + 232, 48),
    mrOwnerConfig: v.copy(offset + 280, 48),
    rtmrs: [
      v.copy(offset + 328, 48),
      v.copy(offset + 376, 48),
      v.copy(offset + 424, 48),
      v.copy(offset + 472, 48),
    ],
    reportData: v.copy(offset + 520, 64),
    debug: (tdAttributes[0]! & 0x01) !== 0,
  };
  if (size === TD15_REPORT_SIZE) {
    body.teeTcbSvn2 = v.copy(offset + 584, 16);
    body.mrServiceTd = v.copy(offset + 600, 48);
  }
  return body;
}

/**
 * The DER certificates of the PEM chain in certification data type 5: strict PEM (src/lib/pem.ts) with LF
 * line ends and nothing but certificates, optionally ended by one NUL (the quoting library writes a C
 * string). Anything else fails.
 */
export function readPemChain(data: Uint8Array): Uint8Array[] {
  let end = data.byteLength;
  if (end > 0 && data[end - 1] === 0) end--;
  let text = '';
  for (let i = 0; i < end; i++) {
    const c = data[i]!;
    if (c > 0x7e || (c < 0x20 && c !== 0x0a)) malformed('the PCK certificate chain is not PEM text');
    text += String.fromCharCode(c);
  }
  let blocks: PemBlock[];
  try {
    blocks = readPem(text, { only: true });
  } catch (cause) {
    if (!(cause instanceof PemError)) throw cause;
    return malformed(`the PCK certificate chain is not strict PEM: ${cause.detail}`, cause);
  }
  const other = blocks.find((b) => b.label !== 'CERTIFICATE');
  if (other !== undefined) malformed(`the PCK certificate chain has a ${other.label} block`);
  if (blocks.length === 0) malformed('the PCK certificate chain is empty');
  return blocks.map((b) => b.der);
}

/** Certification data types 1 to 7 are defined; any other value is not a quote's. */
function checkCertType(type: number): void {
  if (type < 1 || type > 7) malformed(`certification data type ${type} is not a defined type (1 to 7)`);
}

interface SignatureData {
  signature: Uint8Array;
  attestationKey: Uint8Array;
  qeReport: SgxReportBody;
  qeReportBytes: Uint8Array;
  qeReportSignature: Uint8Array;
  qeAuthData: Uint8Array;
  pckChain: Uint8Array[];
}

/**
 * Reads QE report, its signature, the QE auth data and the type-5 certification data starting at
 * `offset`; returns the offset after them.
 */
function readQeReportAndChain(
  v: View,
  offset: number,
): { end: number; parts: Omit<SignatureData, 'signature' | 'attestationKey'> } {
  const qeReportBytes = v.copy(offset, SGX_REPORT_SIZE);
  const qeReport = readSgxReport(v, offset, 'the QE report');
  const qeReportSignature = v.copy(offset + 384, 64);
  const authSize = v.u16(offset + 448);
  const qeAuthData = v.copy(offset + 450, authSize);
  let at = offset + 450 + authSize;
  const certType = v.u16(at);
  const certSize = v.u32(at + 2);
  at += 6;
  if (certType !== 5) {
    checkCertType(certType);
    unsupported(
      `certification data type ${certType} is not 5 (PCK certificate chain), which offline verification needs`,
    );
  }
  const pckChain = readPemChain(v.at(at, certSize));
  return { end: at + certSize, parts: { qeReport, qeReportBytes, qeReportSignature, qeAuthData, pckChain } };
}

function readSignatureData(v: View, offset: number, length: number, version: number): SignatureData {
  const sig = new View(v.at(offset, length));
  const signature = sig.copy(0, 64);
  const attestationKey = sig.copy(64, 64);
  let end: number;
  let parts: Omit<SignatureData, 'signature' | 'attestationKey'>;
  if (version === 3) {
    ({ end, parts } = readQeReportAndChain(sig, 128));
  } else {
    const certType = sig.u16(128);
    const certSize = sig.u32(130);
    if (certType !== 6) {
      checkCertType(certType);
      unsupported(`certification data type ${certType} is not 6 (QE report certification data)`);
    }
    const inner = new View(sig.at(134, certSize));
    const r = readQeReportAndChain(inner, 0);
    if (r.end !== certSize)
      malformed(`the QE report certification data has ${certSize - r.end} bytes after the chain`);
    parts = r.parts;
    end = 134 + certSize;
  }
  if (end !== length) malformed(`the signature data has ${length - end} bytes after its certification data`);
  return { signature, attestationKey, ...parts };
}

/** What the first bytes say about a quote: version, TEE and body layout, or a reason it is not one. */
function readLayout(v: View): {
  version: 3 | 4 | 5;
  kind: 'sgx' | 'tdx';
  bodyOffset: number;
  bodySize: number;
} {
  const version = v.u16(0);
  if (version !== 3 && version !== 4 && version !== 5) unsupported(`version ${version} is not 3, 4 or 5`);
  const keyType = v.u16(2);
  if (keyType !== ATTESTATION_KEY_ECDSA_P256) {
    unsupported(`attestation key type ${keyType} is not 2 (ECDSA-256 with P-256)`);
  }
  const teeType = v.u32(4);
  if (version === 3) {
    if (teeType !== 0) malformed(`a version 3 quote has TEE type 0x${teeType.toString(16)} (reserved, zero)`);
    return { version, kind: 'sgx', bodyOffset: HEADER_SIZE, bodySize: SGX_REPORT_SIZE };
  }
  if (teeType === 0)
    unsupported(`a version ${version} SGX quote is not supported (SGX quotes are version 3)`);
  if (teeType !== TEE_TYPE_TDX) malformed(`TEE type 0x${teeType.toString(16)} is not 0 (SGX) or 0x81 (TDX)`);
  if (version === 4) return { version, kind: 'tdx', bodyOffset: HEADER_SIZE, bodySize: TD10_REPORT_SIZE };
  const bodyType = v.u16(HEADER_SIZE);
  const bodySize = v.u32(HEADER_SIZE + 2);
  const expected = bodyType === 2 ? TD10_REPORT_SIZE : bodyType === 3 ? TD15_REPORT_SIZE : undefined;
  if (bodyType === 1) unsupported('a version 5 quote with an SGX body is not supported');
  if (expected === undefined) malformed(`body type ${bodyType} is not 2 (TDX 1.0) or 3 (TDX 1.5)`);
  if (bodySize !== expected) malformed(`body type ${bodyType} has size ${bodySize}, expected ${expected}`);
  return { version, kind: 'tdx', bodyOffset: HEADER_SIZE + 6, bodySize };
}

/**
 * Parses a DCAP quote: version 3 (SGX), 4 (TDX 1.0) or 5 (TDX 1.0 or 1.5 body), attestation key type 2,
 * signature data with a PCK certificate chain (type 5, nested in type 6 for v4/v5). Every field is
 * read; reserved fields must be zero; lengths must match exactly; bytes after the signature data are
 * counted in `trailingBytes` and otherwise ignored. Fails with ERR_EVIDENCE_MALFORMED, or
 * ERR_EVIDENCE_UNSUPPORTED for a well-formed quote of a kind not handled (other key or certification
 * data types, SGX bodies in v4/v5). Checks no signature: see {@link verifyDcapQuote}.
 *
 * @example
 * const q = parseDcapQuote(bytes); if (q.kind === 'tdx') console.log(toHex(q.body.mrTd));
 */
export function parseDcapQuote(bytes: Uint8Array): DcapQuote {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('Cannot parse DCAP quote: expected a Uint8Array');
  const v = new View(bytes);
  if (bytes.byteLength < HEADER_SIZE) malformed(`it has ${bytes.byteLength} bytes, fewer than a header`);
  const layout = readLayout(v);
  const { version, kind, bodyOffset, bodySize } = layout;
  if (version !== 3) v.mbz(8, 4, 'the reserved header bytes 8..11');
  const header: DcapHeader = {
    version,
    attestationKeyType: v.u16(2),
    teeType: v.u32(4),
    qeSvn: v.u16(8),
    pceSvn: v.u16(10),
    qeVendorId: v.copy(12, 16),
    userData: v.copy(28, 20),
  };
  const signedEnd = bodyOffset + bodySize;
  v.at(0, signedEnd);
  const sigLength = v.u32(signedEnd);
  const sigOffset = signedEnd + 4;
  v.at(sigOffset, sigLength);
  const sig = readSignatureData(v, sigOffset, sigLength, version);
  const end = sigOffset + sigLength;
  for (const [i, der] of sig.pckChain.entries()) {
    try {
      parseCertificate(der);
    } catch (cause) {
      throw new AttestationError(
        'ERR_EVIDENCE_MALFORMED',
        `Cannot parse DCAP quote: certificate ${i} of its PCK chain is not a certificate`,
        { cause },
      );
    }
  }
  const common: DcapQuoteParts = {
    version,
    header,
    signedBytes: v.copy(0, signedEnd),
    signature: sig.signature,
    attestationKey: sig.attestationKey,
    qeReport: sig.qeReport,
    qeReportBytes: sig.qeReportBytes,
    qeReportSignature: sig.qeReportSignature,
    qeAuthData: sig.qeAuthData,
    pckChain: Object.freeze(sig.pckChain),
    bytes: v.copy(0, end),
    trailingBytes: bytes.byteLength - end,
  };
  if (kind === 'sgx') return { kind, ...common, body: readSgxReport(v, bodyOffset, 'the report body') };
  return {
    kind,
    ...common,
    tdxVersion: bodySize === TD15_REPORT_SIZE ? '1.5' : '1.0',
    body: readTdReport(v, bodyOffset, bodySize),
  };
}

/**
 * Which evidence raw bytes are, from their first bytes: an SEV-SNP report (1184 bytes, version 2..5,
 * signature algorithm 1) or a DCAP quote (`sgx` or `tdx` from its header and body type). Checks no
 * more than that; parse or verify to learn whether the evidence is sound. Fails with
 * ERR_EVIDENCE_UNSUPPORTED when the bytes are neither.
 */
export function detectEvidenceKind(bytes: Uint8Array): 'sev-snp' | 'sgx' | 'tdx' {
  if (!(bytes instanceof Uint8Array))
    throw new TypeError('Cannot detect evidence kind: expected a Uint8Array');
  const v = new View(bytes);
  if (bytes.byteLength >= 0x38) {
    const snpVersion = v.u32(0);
    if (bytes.byteLength === 0x4a0 && snpVersion >= 2 && snpVersion <= 5 && v.u32(0x34) === 1)
      return 'sev-snp';
  }
  if (bytes.byteLength >= HEADER_SIZE + 6) {
    try {
      return readLayout(v).kind;
    } catch (cause) {
      throw new AttestationError(
        'ERR_EVIDENCE_UNSUPPORTED',
        'Cannot detect evidence kind: the bytes are neither an SEV-SNP report nor a supported DCAP quote',
        { cause },
      );
    }
  }
  throw new AttestationError(
    'ERR_EVIDENCE_UNSUPPORTED',
    `Cannot detect evidence kind: ${bytes.byteLength} bytes are neither an SEV-SNP report nor a DCAP quote`,
  );
}
