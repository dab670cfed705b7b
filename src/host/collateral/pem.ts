// PEM (RFC 7468) in the strict form: every block between matching BEGIN/END lines must be canonical
// base64, so one text has one reading. Used for AMD certificate chains, Intel issuer-chain headers and
// the files a user hands to `donjon attest verify`.
import { CollateralError } from './errors.ts';

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function invalid(state: string, cause?: unknown): never {
  throw new CollateralError(
    'ERR_COLLATERAL_MALFORMED',
    `Cannot read PEM: ${state}`,
    cause === undefined ? undefined : { cause },
  );
}

/** One decoded PEM block: its label (e.g. `CERTIFICATE`, `X509 CRL`) and its DER. */
export interface PemBlock {
  readonly label: string;
  readonly der: Uint8Array;
}

/**
 * Every PEM block of `text`, in order. Text around the blocks is ignored (PEM bundles often carry
 * comments); a block whose END label differs from its BEGIN label or whose body is not canonical base64
 * fails with ERR_COLLATERAL_MALFORMED.
 */
export function pemBlocks(text: string): PemBlock[] {
  if (typeof text !== 'string') throw new TypeError('Cannot read PEM: expected a string');
  const out: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const label = m[1]!;
    if (m[3] !== label) invalid(`BEGIN ${label} ends with END ${m[3]}`);
    const body = m[2]!.replace(/[ \t\r\n]+/g, '');
    if (body.length === 0 || body.length % 4 !== 0 || !BASE64.test(body)) {
      invalid(`the ${label} block is not base64`);
    }
    const der = new Uint8Array(Buffer.from(body, 'base64'));
    if (Buffer.from(der).toString('base64') !== body) invalid(`the ${label} block is not canonical base64`);
    out.push({ label, der });
  }
  return out;
}

/** DER of every `CERTIFICATE` block of `text`, in order; other blocks are skipped. */
export function pemCertificates(text: string): Uint8Array[] {
  return pemBlocks(text)
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => b.der);
}

/** PEM text of one DER object (64-column base64, as OpenSSL writes it). */
export function toPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * The certificates of an Intel PCS issuer-chain header (`SGX-PCK-CRL-Issuer-Chain`,
 * `TCB-Info-Issuer-Chain`, `SGX-Enclave-Identity-Issuer-Chain`): URL-encoded PEM, signer first, then the
 * root. Returns the decoded PEM text (what collateral files carry) after checking it holds at least one
 * certificate.
 */
export function decodeIssuerChainHeader(value: string): string {
  let text: string;
  try {
    text = decodeURIComponent(value);
  } catch (cause) {
    return invalid('the issuer chain header is not URL-encoded', cause);
  }
  if (pemCertificates(text).length === 0) invalid('the issuer chain header holds no certificate');
  return text;
}
