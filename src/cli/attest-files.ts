// The files `donjon attest verify` reads (evidence, policy, certificates, CRLs, signed collateral), each refused
// with a usage error that names the file and what is wrong with it, and DCAP collateral assembled from them.
import { readFileSync, statSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { type Policy, parsePolicy } from '../attestation/index.ts';
import {
  type CertificateInfo,
  type CrlInfo,
  certificateInfo,
  crlInfo,
  pemBlocks,
  type QuoteCollateralJson,
  type SignedJson,
  splitSignedJson,
  toPem,
} from '../host/index.ts';
import { reasonOf } from '../lib/errors.ts';
import { UsageError } from './errors.ts';

/** The bytes of a file the user named (`what` says which in the message); a usage error otherwise. */
export function readInput(path: string, what: string): Uint8Array {
  try {
    if (!statSync(path).isFile()) throw new UsageError(`Cannot read ${what} ${path}: not a file`);
    return new Uint8Array(readFileSync(path));
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(`Cannot read ${what} ${path}: ${code === 'ENOENT' ? 'no such file' : String(code)}`);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A file the user named, as UTF-8 text; a usage error otherwise. */
export function readText(path: string, what: string): string {
  try {
    return utf8.decode(readInput(path, what));
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`Cannot read ${what} ${path}: not UTF-8 text`);
  }
}

const HEX_TEXT = /^[0-9a-fA-F\s]*$/;

/** Evidence bytes from a file holding them raw or as hex text (whitespace anywhere ignored). */
export function decodeEvidenceFile(bytes: Uint8Array, path: string): Uint8Array {
  if (bytes.byteLength === 0) throw new UsageError(`Cannot read evidence ${path}: the file is empty`);
  const text = Buffer.from(bytes).toString('latin1');
  if (!HEX_TEXT.test(text)) return bytes;
  const hex = text.replace(/\s+/g, '');
  if (hex.length === 0) throw new UsageError(`Cannot read evidence ${path}: the file holds only whitespace`);
  if (hex.length % 2 !== 0) throw new UsageError(`Cannot read evidence ${path}: odd number of hex digits`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** The instant of an RFC 3339 date-time (with its offset); a UsageError otherwise. */
export function parseTime(text: string): Date {
  const m = RFC3339.exec(text);
  const date = m === null ? undefined : new Date(text.replace(' ', 'T'));
  if (m === null || date === undefined || Number.isNaN(date.getTime())) {
    throw new UsageError(`Cannot read --at ${text}: expected an RFC 3339 time such as 2025-07-01T00:00:00Z`);
  }
  // Date would roll 31 February over into March; refuse what a calendar does not have.
  const [, y, mo, d] = m.map(Number) as [number, number, number, number];
  const check = new Date(Date.UTC(y, mo - 1, d));
  if (check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) {
    throw new UsageError(`Cannot read --at ${text}: no such date`);
  }
  return date;
}

/** A policy file, JSON or TOML (by extension, else whichever parses); a usage error otherwise. */
export function readPolicy(path: string): Policy {
  const text = readText(path, 'policy');
  let json: unknown;
  const asToml = (): unknown => parseToml(text);
  try {
    if (/\.toml$/i.test(path)) json = asToml();
    else if (/\.json$/i.test(path)) json = JSON.parse(text);
    else {
      try {
        json = JSON.parse(text);
      } catch {
        json = asToml();
      }
    }
  } catch (error) {
    const format = /\.toml$/i.test(path) ? 'TOML' : /\.json$/i.test(path) ? 'JSON' : 'JSON or TOML';
    const first = (error as Error).message.split('\n')[0];
    throw new UsageError(`Cannot read policy ${path}: not ${format} (${first})`);
  }
  try {
    return parsePolicy(json);
  } catch (error) {
    throw new UsageError(`Cannot use policy ${path}: ${reasonOf(error)}`, { cause: error });
  }
}

/** A certificate read from a --cert file, with what the command needs to know of it. */
export interface CertFile {
  der: Uint8Array;
  info: CertificateInfo;
}

/** Every certificate of a --cert file: PEM with one or many certificates, or one DER certificate. */
export function readCertificates(path: string): CertFile[] {
  const bytes = readInput(path, 'certificate file');
  const text = Buffer.from(bytes).toString('latin1');
  let ders: Uint8Array[];
  if (text.includes('-----BEGIN')) {
    try {
      ders = pemBlocks(text)
        .filter((b) => b.label === 'CERTIFICATE')
        .map((b) => b.der);
    } catch (error) {
      throw new UsageError(`Cannot read certificate file ${path}: ${reasonOf(error)}`, { cause: error });
    }
    if (ders.length === 0) throw new UsageError(`Cannot read certificate file ${path}: no CERTIFICATE block`);
  } else {
    ders = [bytes];
  }
  return ders.map((der, i) => {
    try {
      return { der, info: certificateInfo(der) };
    } catch (error) {
      const which = ders.length > 1 ? ` (certificate ${i + 1})` : '';
      throw new UsageError(
        `Cannot read certificate file ${path}${which}: not a certificate (${reasonOf(error)})`,
        { cause: error },
      );
    }
  });
}

/** A CRL read from a --crl file. */
export interface CrlFile {
  der: Uint8Array;
  info: CrlInfo;
}

/** The one CRL of a --crl file, DER or PEM. */
export function readCrl(path: string): CrlFile {
  const bytes = readInput(path, 'CRL');
  let der = bytes;
  const text = Buffer.from(bytes).toString('latin1');
  if (text.includes('-----BEGIN')) {
    let blocks: ReturnType<typeof pemBlocks>;
    try {
      blocks = pemBlocks(text).filter((b) => b.label === 'X509 CRL');
    } catch (error) {
      throw new UsageError(`Cannot read CRL ${path}: ${reasonOf(error)}`, { cause: error });
    }
    if (blocks.length !== 1) throw new UsageError(`Cannot read CRL ${path}: expected one X509 CRL block`);
    der = blocks[0]!.der;
  }
  try {
    return { der, info: crlInfo(der) };
  } catch (error) {
    throw new UsageError(`Cannot read CRL ${path}: ${reasonOf(error)}`, { cause: error });
  }
}

/** An Intel PCS response ({"<member>": {...}, "signature": "..."}) from a file. */
export function readSigned(path: string, flag: string, members: readonly string[]): SignedJson {
  const text = readText(path, flag);
  try {
    return splitSignedJson(text, members);
  } catch (error) {
    throw new UsageError(`Cannot read ${flag} ${path}: ${reasonOf(error)}`, { cause: error });
  }
}

function isValidAt(info: CertificateInfo, now: Date): boolean {
  return info.notBefore.getTime() <= now.getTime() && now.getTime() <= info.notAfter.getTime();
}

/** The certificate named `cn`, preferring one valid at `now` (Intel re-issued signers under one key). */
function findCert(certs: readonly CertFile[], cn: string, now: Date): CertFile | undefined {
  const named = certs.filter((c) => c.info.subjectCn === cn);
  return named.find((c) => isValidAt(c.info, now)) ?? named[0];
}

/** DCAP collateral given as separate files. */
export interface DcapFiles {
  tcbInfo?: SignedJson;
  qeIdentity?: SignedJson;
  crls: CrlFile[];
  certs: CertFile[];
}

const INTEL_ROOT = 'Intel SGX Root CA';
const TCB_SIGNING = 'Intel SGX TCB Signing';

/**
 * DCAP collateral in dcap-qvl's layout from separate files, completed by `fetched` (from --fetch) where a
 * piece is missing. Issuer chains come from --cert, else from the quote's own PCK chain (the PCK CA and
 * root), else from what was fetched.
 */
export function collateralFromFiles(
  files: DcapFiles,
  quoteChain: readonly CertFile[],
  now: Date,
  fetched: QuoteCollateralJson | undefined,
): QuoteCollateralJson {
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
  const pool = [...files.certs, ...quoteChain];
  const root = findCert(pool, INTEL_ROOT, now);
  const signer = findCert(files.certs, TCB_SIGNING, now);
  const rootCrl = files.crls.find((c) => c.info.issuerCn === INTEL_ROOT);
  const pckCrl = files.crls.find((c) =>
    /^Intel SGX PCK (Platform|Processor) CA$/.test(c.info.issuerCn ?? ''),
  );
  for (const c of files.crls) {
    if (c !== rootCrl && c !== pckCrl) {
      throw new UsageError(
        `Cannot use the CRL issued by ${c.info.issuerCn ?? 'an unnamed issuer'}: not an Intel Root CA or PCK CA CRL`,
      );
    }
  }
  const pckCa = pckCrl === undefined ? undefined : findCert(pool, pckCrl.info.issuerCn!, now);
  const signerChain =
    signer !== undefined && root !== undefined ? toPem(signer.der) + toPem(root.der) : undefined;

  const missing: string[] = [];
  const take = <T>(value: T | undefined, fallback: T | undefined, what: string): T => {
    const v = value ?? fallback;
    if (v === undefined) missing.push(what);
    return v as T;
  };
  const result: QuoteCollateralJson = {
    tcb_info: take(files.tcbInfo?.body, fetched?.tcb_info, 'the TCB info (--tcb-info)'),
    tcb_info_signature: files.tcbInfo?.signature ?? fetched?.tcb_info_signature ?? '',
    tcb_info_issuer_chain: take(
      signerChain,
      fetched?.tcb_info_issuer_chain,
      `the ${TCB_SIGNING} certificate (--cert)`,
    ),
    qe_identity: take(files.qeIdentity?.body, fetched?.qe_identity, 'the QE identity (--qe-identity)'),
    qe_identity_signature: files.qeIdentity?.signature ?? fetched?.qe_identity_signature ?? '',
    qe_identity_issuer_chain: take(
      signerChain,
      fetched?.qe_identity_issuer_chain,
      `the ${TCB_SIGNING} certificate (--cert)`,
    ),
    root_ca_crl: take(
      rootCrl === undefined ? undefined : hex(rootCrl.der),
      fetched?.root_ca_crl,
      'the Intel SGX Root CA CRL (--crl)',
    ),
    pck_crl: take(
      pckCrl === undefined ? undefined : hex(pckCrl.der),
      fetched?.pck_crl,
      'the PCK CRL (--crl)',
    ),
    pck_crl_issuer_chain: take(
      pckCa !== undefined && root !== undefined ? toPem(pckCa.der) + toPem(root.der) : undefined,
      fetched?.pck_crl_issuer_chain,
      'the PCK CA certificate that issued the PCK CRL (--cert)',
    ),
  };
  const unique = [...new Set(missing)];
  if (unique.length > 0) {
    throw new UsageError(
      `Cannot build DCAP collateral: missing ${unique.join(', ')}; give them, or add --fetch`,
    );
  }
  return result;
}
