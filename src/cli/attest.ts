// `donjon attest verify`: offline verification of attestation evidence a user holds in files (an SEV-SNP
// report or an Intel DCAP quote), with its certificates and collateral, under an optional policy.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseToml } from 'smol-toml';
import {
  type AmdProduct,
  type Claims,
  type DcapCollateral,
  detectEvidenceKind,
  type Evidence,
  isAttestationError,
  type Policy,
  parseDcapCollateral,
  parseDcapQuote,
  parsePolicy,
  parseSnpReport,
  tcbStatuses,
  verify,
} from '../attestation/index.ts';
import { inspectService, type ServiceReport } from '../client/index.ts';
import {
  type CertificateInfo,
  CollateralClient,
  type CrlInfo,
  certificateInfo,
  crlInfo,
  dcapFetchParameters,
  isCollateralError,
  pemBlocks,
  type QuoteCollateralJson,
  type SignedJson,
  splitSignedJson,
  toPem,
} from '../host/index.ts';
import { CommandError, EXIT, UsageError } from './errors.ts';
import { dataDir } from './paths.ts';
import { parseHostPort } from './proxy.ts';

/**
 * Without --policy, "verified" means authentic and nothing more: every signature, chain and binding holds and
 * nothing is revoked. Debug mode, a migration agent or an out-of-date TCB are then reported in the claims (and
 * `tcbStatus`), not refused; a policy file refuses them.
 */
function authenticityOnly(kind: 'sev-snp' | 'sgx' | 'tdx'): Policy {
  return kind === 'sev-snp'
    ? parsePolicy({ allowDebug: true, allowMigrationAgent: true })
    : parsePolicy({ allowDebug: true, acceptedTcbStatuses: tcbStatuses.filter((s) => s !== 'Revoked') });
}

export const attestHelp = `Usage: donjon attest verify EVIDENCE [options]
       donjon attest inspect HOST:PORT [options]

'attest inspect' connects to a confidential service (a workload serving a tls listen file in a Keep), prints
what its certificate proves (the workload's and its configuration's digests, the runtime measurement, the
evidence's claims) and whether that verifies, then closes the connection without sending anything. Its
options: --trust-sim-root SHA256, --expect-measurement HEX, --workload FILE, --workload-digest HEX,
--config-digest HEX (each repeatable), --json. Exit status 0 when it verifies, 1 when it does not, 4 when
the service cannot be reached.

Verifies attestation evidence held in files: an AMD SEV-SNP report or an Intel DCAP quote (SGX or TDX),
raw or as hex text, against the vendor roots built into this version, and prints the claims it proves.
Nothing is fetched unless --fetch is given.

Options:
  --cert FILE            certificates, PEM (one or many) or DER (repeatable): the VCEK or VLEK, and
                         optionally ASK/ASVK and ARK, for SEV-SNP; Intel issuer chains for DCAP collateral
  --collateral FILE      DCAP collateral as JSON (dcap-qvl QuoteCollateralV3 layout)
  --tcb-info FILE        Intel PCS TCB info response ({"tcbInfo":{...},"signature":"..."})
  --qe-identity FILE     Intel PCS QE identity response ({"enclaveIdentity":{...},"signature":"..."})
  --crl FILE             Intel Root CA CRL or PCK CRL, DER or PEM (repeatable)
  --at TIME              verify as of this RFC 3339 time, e.g. 2025-07-01T00:00:00Z (default now)
  --policy FILE          appraisal policy, JSON or TOML (default: none: verified means authentic and not
                         revoked; debug mode and the TCB status are reported, not judged)
  --fetch                fetch what is missing: the VCEK chain from AMD KDS, DCAP collateral from Intel PCS
  --cache DIR            where fetched collateral is kept (default: the data directory's collateral/)
  --kds-url URL          AMD KDS to fetch from (a proxy or mirror)
  --pcs-url URL          Intel PCS or PCCS to fetch from
  --intel-crl-url URL    where to fetch the Intel SGX Root CA CRL
  --json                 print one JSON object instead of a table
  -h, --help             show this help

Exit status: 0 verified, 1 rejected (signature, chain, collateral or policy), 2 unusable input (missing or
unreadable file, unknown evidence kind, bad option, malformed policy, collateral that cannot be fetched).`;

/** Where the command writes; tests pass their own. */
export interface AttestIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: NodeJS.ProcessEnv;
}

const processIo: AttestIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
};

type EvidenceKind = 'sev-snp' | 'sgx' | 'tdx';

/** The one JSON object `--json` prints. */
export interface AttestResult {
  verified: boolean;
  kind?: EvidenceKind;
  version?: number;
  measurement?: string;
  reportData?: string;
  debug?: boolean;
  tcbStatus?: string;
  advisoryIds?: readonly string[];
  warnings: string[];
  claims: Claims | null;
  error?: { code: string; message: string };
}

function readInput(path: string, what: string): Uint8Array {
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

function readText(path: string, what: string): string {
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

function detectKind(bytes: Uint8Array, path: string): EvidenceKind {
  try {
    return detectEvidenceKind(bytes);
  } catch (error) {
    const why = (error as Error).message.replace(/^Cannot [^:]*: /, '');
    throw new UsageError(`Cannot tell what ${path} holds: ${why}`);
  }
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

function readPolicy(path: string): Policy {
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
    throw new UsageError(
      `Cannot use policy ${path}: ${(error as Error).message.replace(/^Cannot parse policy: /, '')}`,
    );
  }
}

interface CertFile {
  der: Uint8Array;
  info: CertificateInfo;
}

/** Every certificate of a --cert file: PEM with one or many certificates, or one DER certificate. */
function readCertificates(path: string): CertFile[] {
  const bytes = readInput(path, 'certificate file');
  const text = Buffer.from(bytes).toString('latin1');
  let ders: Uint8Array[];
  if (text.includes('-----BEGIN')) {
    try {
      ders = pemBlocks(text)
        .filter((b) => b.label === 'CERTIFICATE')
        .map((b) => b.der);
    } catch (error) {
      throw new UsageError(
        `Cannot read certificate file ${path}: ${(error as Error).message.replace(/^Cannot read PEM: /, '')}`,
      );
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
      const why = (error as Error).message.replace(/^Cannot read certificate: /, '');
      throw new UsageError(`Cannot read certificate file ${path}${which}: not a certificate (${why})`);
    }
  });
}

interface CrlFile {
  der: Uint8Array;
  info: CrlInfo;
}

function readCrl(path: string): CrlFile {
  const bytes = readInput(path, 'CRL');
  let der = bytes;
  const text = Buffer.from(bytes).toString('latin1');
  if (text.includes('-----BEGIN')) {
    let blocks: ReturnType<typeof pemBlocks>;
    try {
      blocks = pemBlocks(text).filter((b) => b.label === 'X509 CRL');
    } catch (error) {
      throw new UsageError(
        `Cannot read CRL ${path}: ${(error as Error).message.replace(/^Cannot read PEM: /, '')}`,
      );
    }
    if (blocks.length !== 1) throw new UsageError(`Cannot read CRL ${path}: expected one X509 CRL block`);
    der = blocks[0]!.der;
  }
  try {
    return { der, info: crlInfo(der) };
  } catch (error) {
    throw new UsageError(
      `Cannot read CRL ${path}: ${(error as Error).message.replace(/^Cannot read CRL: /, '')}`,
    );
  }
}

function readSigned(path: string, flag: string, members: readonly string[]): SignedJson {
  const text = readText(path, flag);
  try {
    return splitSignedJson(text, members);
  } catch (error) {
    throw new UsageError(
      `Cannot read ${flag} ${path}: ${(error as Error).message.replace(/^Cannot read signed JSON: /, '')}`,
    );
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

interface DcapFiles {
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
function collateralFromFiles(
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

type Summary = Omit<AttestResult, 'verified' | 'warnings' | 'claims'>;

/** The summary fields of the result: what every kind of claims has, and the TCB status where known. */
function summary(claims: Claims): Summary {
  const out: Summary = {
    kind: claims.kind,
    version: claims.version,
    measurement: claims.measurement,
    reportData: claims.reportData,
    debug: claims.debug,
  };
  if (claims.kind !== 'sev-snp') {
    if (claims.tcbStatus !== undefined) out.tcbStatus = claims.tcbStatus;
    if (claims.advisoryIds !== undefined) out.advisoryIds = claims.advisoryIds;
  }
  return out;
}

/** What rejected evidence still shows: its parsed (unverified) fields, when it parses. */
function unverifiedSummary(kind: EvidenceKind, bytes: Uint8Array): Summary {
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
  try {
    if (kind === 'sev-snp') {
      const r = parseSnpReport(bytes);
      return {
        kind,
        version: r.version,
        measurement: hex(r.measurement),
        reportData: hex(r.reportData),
        debug: r.debug,
      };
    }
    const q = parseDcapQuote(bytes);
    const measurement = q.kind === 'sgx' ? q.body.mrEnclave : q.body.mrTd;
    return {
      kind,
      version: q.version,
      measurement: hex(measurement),
      reportData: hex(q.body.reportData),
      debug: q.body.debug,
    };
  } catch {
    return { kind };
  }
}

function warningsFor(claims: Claims): string[] {
  const warnings: string[] = [];
  if (claims.kind === 'sev-snp' && claims.simulated) {
    warnings.push(
      `SIMULATED evidence: signed by a simulated root (${claims.rootFingerprint}), it proves no hardware isolation`,
    );
  }
  if (claims.debug) warnings.push('The TEE allows debugging: the host can read and change its memory');
  if (!claims.collateralChecked) {
    warnings.push(
      claims.kind === 'sev-snp'
        ? 'Certificate revocation was not checked: no AMD KDS CRL of the chain was given (use --crl or --fetch)'
        : 'TCB status and revocation were not checked: no collateral was given (use --collateral, --tcb-info/--qe-identity/--crl, or --fetch)',
    );
  }
  if (claims.kind !== 'sev-snp' && claims.tcbStatus !== undefined && claims.tcbStatus !== 'UpToDate') {
    const ids =
      claims.advisoryIds !== undefined && claims.advisoryIds.length > 0
        ? ` (${claims.advisoryIds.join(', ')})`
        : '';
    warnings.push(`TCB status is ${claims.tcbStatus}${ids}`);
  }
  return warnings;
}

function jsonValue(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  return value;
}

function renderValue(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (Array.isArray(value)) return value.length === 0 ? '(none)' : value.map(renderValue).join(', ');
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>)
      .map(
        ([k, v]) => `${k}=${typeof v === 'object' && v !== null ? JSON.stringify(v, jsonValue) : String(v)}`,
      )
      .join(' ');
  }
  return String(value);
}

/** The claims as an aligned two-column table, one claim a line. */
export function claimsTable(claims: Claims): string {
  const entries = Object.entries(claims as unknown as Record<string, unknown>).filter(([k]) => k !== 'kind');
  const width = Math.max(...entries.map(([k]) => k.length));
  const c = claims as unknown as Record<string, unknown>;
  const about = [
    ...(typeof c['version'] === 'number' ? [`version ${c['version']}`] : []),
    ...(typeof c['product'] === 'string' ? [c['product']] : []),
  ];
  const head = `Verified ${claims.kind} evidence${about.length > 0 ? ` (${about.join(', ')})` : ''}\n`;
  return head + entries.map(([k, v]) => `  ${k.padEnd(width)}  ${renderValue(v)}\n`).join('');
}

function parseVerifyArgs(argv: string[]) {
  const parsed = (() => {
    try {
      return parseArgs({
        args: argv,
        allowPositionals: true,
        strict: true,
        options: {
          cert: { type: 'string', multiple: true, default: [] },
          collateral: { type: 'string' },
          'tcb-info': { type: 'string' },
          'qe-identity': { type: 'string' },
          crl: { type: 'string', multiple: true, default: [] },
          at: { type: 'string' },
          policy: { type: 'string' },
          fetch: { type: 'boolean', default: false },
          cache: { type: 'string' },
          'kds-url': { type: 'string' },
          'pcs-url': { type: 'string' },
          'intel-crl-url': { type: 'string' },
          json: { type: 'boolean', default: false },
        },
      });
    } catch (error) {
      // Node's own sentence ("Unknown option '--x'. To specify a positional ...") up to its first stop.
      const first = (error as Error).message.split(/\.(?: |$)/)[0];
      throw new UsageError(`Cannot read the command line: ${first} (see donjon attest --help)`);
    }
  })();
  const { values, positionals } = parsed;
  if (positionals.length === 0)
    throw new UsageError('Cannot verify: no evidence file given (donjon attest verify EVIDENCE)');
  if (positionals.length > 1)
    throw new UsageError(`Cannot verify: one evidence file at a time, got ${positionals.length}`);
  return { evidencePath: positionals[0]!, values };
}

type Parsed = ReturnType<typeof parseVerifyArgs>;

function collateralClient(values: Parsed['values'], env: NodeJS.ProcessEnv): CollateralClient {
  try {
    return new CollateralClient({
      cacheDir: values.cache ?? join(dataDir(env), 'collateral'),
      ...(values['kds-url'] === undefined ? {} : { kdsUrl: values['kds-url'] }),
      ...(values['pcs-url'] === undefined ? {} : { pcsUrl: values['pcs-url'] }),
      ...(values['intel-crl-url'] === undefined ? {} : { intelRootCaCrlUrl: values['intel-crl-url'] }),
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** A fetch failure is unusable input (exit 2): nothing about the evidence was decided. */
function fetchFailed(error: unknown): never {
  if (isCollateralError(error))
    throw new CommandError(error.code, error.message, EXIT.usage, { cause: error });
  throw error;
}

/** The AMD product (and key kind) of a VCEK/VLEK chain, from the name of the VEK's issuer (SEV-Milan, SEV-VLEK-Genoa, ...). */
function amdProductOf(vek: CertificateInfo): { product: AmdProduct; key: 'vcek' | 'vlek' } | undefined {
  const m = /^SEV-(VLEK-)?(Milan|Genoa|Turin)$/.exec(vek.issuerCn ?? '');
  return m === null ? undefined : { product: m[2] as AmdProduct, key: m[1] === undefined ? 'vcek' : 'vlek' };
}

async function snpEvidence(
  report: Uint8Array,
  parsed: Parsed,
  warnings: string[],
  io: AttestIo,
): Promise<Evidence> {
  const { values } = parsed;
  for (const flag of ['collateral', 'tcb-info', 'qe-identity'] as const) {
    if (values[flag] !== undefined)
      warnings.push(`--${flag} was ignored: it applies to DCAP quotes, not SEV-SNP reports`);
  }
  const certs = values.cert.flatMap(readCertificates);
  const crls = values.crl.map((path) => readCrl(path).der);
  let client: CollateralClient | undefined;
  if (!certs.some((c) => c.info.snpEndorsementKey)) {
    if (!values.fetch) {
      throw new UsageError(
        'Cannot verify an SEV-SNP report without the VCEK (or VLEK) that signed it: pass it with --cert ' +
          '(AMD KDS serves VCEKs by chip id and TCB), or add --fetch to get it from AMD KDS',
      );
    }
    client = collateralClient(values, io.env);
    const fetched = await client.snpCertificates(report).catch(fetchFailed);
    certs.push(...fetched.map((der) => ({ der, info: certificateInfo(der) })));
  }
  if (values.fetch && crls.length === 0) {
    const vek = certs.find((c) => c.info.snpEndorsementKey)!;
    const chain = amdProductOf(vek.info);
    if (chain === undefined) {
      throw new UsageError(
        `Cannot fetch the CRL of a VCEK issued by ${vek.info.issuerCn ?? 'an unnamed issuer'}: not an AMD product`,
      );
    }
    client ??= collateralClient(values, io.env);
    crls.push(await client.amdCrl(chain.product, chain.key).catch(fetchFailed));
  }
  return { kind: 'sev-snp', report, certs: certs.map((c) => c.der), ...(crls.length > 0 ? { crls } : {}) };
}

async function dcapEvidence(
  kind: 'sgx' | 'tdx',
  quote: Uint8Array,
  parsed: Parsed,
  now: Date,
  warnings: string[],
  io: AttestIo,
): Promise<Evidence> {
  const { values } = parsed;
  const separate =
    values['tcb-info'] !== undefined || values['qe-identity'] !== undefined || values.crl.length > 0;
  if (values.collateral !== undefined && separate) {
    throw new UsageError(
      'Cannot use --collateral with --tcb-info, --qe-identity or --crl: give one or the other',
    );
  }
  if (values.cert.length > 0 && !separate) {
    warnings.push('--cert was ignored: a quote carries its PCK chain, and collateral JSON its issuer chains');
  }
  let json: unknown;
  if (values.collateral !== undefined) {
    const text = readText(values.collateral, 'collateral');
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new UsageError(
        `Cannot read collateral ${values.collateral}: not JSON (${(error as Error).message})`,
      );
    }
  } else if (separate || values.fetch) {
    const files: DcapFiles = {
      certs: values.cert.flatMap(readCertificates),
      crls: values.crl.map(readCrl),
      ...(values['tcb-info'] === undefined
        ? {}
        : { tcbInfo: readSigned(values['tcb-info'], 'TCB info', ['tcbInfo']) }),
      ...(values['qe-identity'] === undefined
        ? {}
        : {
            qeIdentity: readSigned(values['qe-identity'], 'QE identity', ['enclaveIdentity', 'qeIdentity']),
          }),
    };
    let quoteChain: CertFile[] = [];
    try {
      quoteChain = dcapFetchParameters(quote).pckChain.map((der) => ({ der, info: certificateInfo(der) }));
    } catch {
      // A quote without a readable PCK chain: the issuer chains must then come from --cert.
    }
    const fetched = values.fetch
      ? await collateralClient(values, io.env).dcapCollateral(quote).catch(fetchFailed)
      : undefined;
    json = separate ? collateralFromFiles(files, quoteChain, now, fetched) : fetched;
  }
  if (json === undefined) return { kind, quote };
  let collateral: DcapCollateral;
  try {
    collateral = parseDcapCollateral(json);
  } catch (error) {
    throw new UsageError(
      `Cannot use the DCAP collateral: ${(error as Error).message.replace(/^Cannot [^:]*: /, '')}`,
    );
  }
  return { kind, quote, collateral };
}

function print(result: AttestResult, json: boolean, io: AttestIo): void {
  if (json) io.stdout(`${JSON.stringify(result, jsonValue)}\n`);
  else for (const w of result.warnings) io.stderr(`donjon: warning: ${w}\n`);
}

async function verifyCommand(argv: string[], io: AttestIo): Promise<number> {
  const json = argv.includes('--json');
  const warnings: string[] = [];
  let kind: EvidenceKind | undefined;
  let bytes: Uint8Array | undefined;
  try {
    const parsed = parseVerifyArgs(argv);
    const { values, evidencePath } = parsed;
    bytes = decodeEvidenceFile(readInput(evidencePath, 'evidence'), evidencePath);
    kind = detectKind(bytes, evidencePath);
    const now = values.at === undefined ? new Date() : parseTime(values.at);
    const policy = values.policy === undefined ? authenticityOnly(kind) : readPolicy(values.policy);
    const evidence =
      kind === 'sev-snp'
        ? await snpEvidence(bytes, parsed, warnings, io)
        : await dcapEvidence(kind, bytes, parsed, now, warnings, io);

    let claims: Claims;
    try {
      claims = verify(evidence, policy, { now });
    } catch (error) {
      if (!isAttestationError(error)) throw error;
      const result: AttestResult = {
        verified: false,
        ...unverifiedSummary(kind, bytes),
        warnings,
        claims: null,
        error: { code: error.code, message: error.message },
      };
      print(result, values.json, io);
      throw new CommandError(
        error.code,
        values.json ? error.message : `${error.message} (${error.code})`,
        EXIT.failure,
        {
          cause: error,
        },
      );
    }
    warnings.push(...warningsFor(claims));
    const result: AttestResult = { verified: true, ...summary(claims), warnings, claims };
    print(result, values.json, io);
    if (!values.json) io.stdout(claimsTable(claims));
    return EXIT.ok;
  } catch (error) {
    const unusable =
      error instanceof UsageError || (error instanceof CommandError && error.exitCode === EXIT.usage);
    if (unusable && json) {
      const code = error instanceof CommandError ? error.code : 'ERR_USAGE';
      const result: AttestResult = {
        verified: false,
        ...(kind === undefined ? {} : { kind }),
        warnings,
        claims: null,
        error: { code, message: error.message },
      };
      io.stdout(`${JSON.stringify(result)}\n`);
    }
    throw error;
  }
}

async function inspectCommand(argv: string[], io: AttestIo): Promise<number> {
  let parsed: ReturnType<typeof parseInspectArgs>;
  try {
    parsed = parseInspectArgs(argv);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const first = (error as Error).message.split(/\.(?: |$)/)[0];
    throw new UsageError(`Cannot read the command line: ${first} (see donjon attest --help)`);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError('Cannot inspect: give one service as HOST:PORT');
  const target = parseHostPort(positionals[0]!, 'the service');
  const hex = (list: readonly string[], flag: string, n: number): string[] =>
    list.map((v) => {
      const h = v.toLowerCase().replace(/:/g, '');
      if (!new RegExp(`^[0-9a-f]{${n}}$`).test(h))
        throw new UsageError(`Cannot read ${flag} ${v}: expected ${n} hex digits`);
      return h;
    });
  const workloads = hex(values['workload-digest'], '--workload-digest', 64);
  for (const path of values.workload) {
    workloads.push(createHash('sha256').update(readInput(path, 'workload')).digest('hex'));
  }
  const configs = hex(values['config-digest'], '--config-digest', 64);
  const measurements = hex(values['expect-measurement'], '--expect-measurement', 96);
  const simRoots = hex(values['trust-sim-root'], '--trust-sim-root', 64);
  const policy: Policy = {
    ...(measurements.length > 0 ? { measurements } : {}),
    ...(simRoots.length > 0 ? { trustSimulatedRoots: simRoots } : {}),
  };
  let report: ServiceReport;
  try {
    report = await inspectService({
      host: target.host,
      port: target.port,
      policy,
      ...(workloads.length > 0 ? { workloadDigests: workloads } : {}),
      ...(configs.length > 0 ? { configDigests: configs } : {}),
    });
  } catch (error) {
    const e = error as { code?: unknown; message?: unknown };
    throw new CommandError(
      typeof e.code === 'string' ? e.code : 'ERR_CHANNEL_FAILED',
      String(e.message ?? error),
      EXIT.host,
      { cause: error },
    );
  }
  if (values.json) io.stdout(`${JSON.stringify({ service: positionals[0], ...report }, jsonValue)}\n`);
  else {
    const rows: [string, string][] = [
      ['certificate sha256', report.certificateSha256],
      ['key sha256', report.keySha256],
      ['valid', `${report.notBefore} to ${report.notAfter}`],
      [
        'attested',
        report.attested ? `yes (${report.binding} evidence)` : 'no: the certificate carries no evidence',
      ],
    ];
    if (report.workloadDigest) rows.push(['workload sha256', report.workloadDigest]);
    if (report.configDigest) rows.push(['config sha256', report.configDigest]);
    if (report.evidence) {
      const ev = report.evidence;
      rows.push([
        'evidence',
        `${ev.kind}${ev.version === undefined ? '' : ` v${ev.version}`}${ev.measurement ? `, measurement ${ev.measurement}` : ''}`,
      ]);
    }
    rows.push([
      'verified',
      report.verified ? 'yes' : `no: ${report.error?.message ?? 'unknown'} (${report.error?.code ?? ''})`,
    ]);
    const width = Math.max(...rows.map(([k]) => k.length));
    io.stdout(`Service ${positionals[0]}\n${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}\n`).join('')}`);
    if (report.claims) {
      for (const w of warningsFor(report.claims)) io.stderr(`donjon: warning: ${w}\n`);
      io.stdout(claimsTable(report.claims));
    }
  }
  return report.verified ? EXIT.ok : EXIT.failure;
}

function parseInspectArgs(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      'trust-sim-root': { type: 'string', multiple: true, default: [] },
      'expect-measurement': { type: 'string', multiple: true, default: [] },
      workload: { type: 'string', multiple: true, default: [] },
      'workload-digest': { type: 'string', multiple: true, default: [] },
      'config-digest': { type: 'string', multiple: true, default: [] },
      json: { type: 'boolean', default: false },
    },
  });
}

/**
 * `donjon attest SUBCOMMAND`: `verify` (evidence in files) or `inspect` (a service's certificate). Returns the exit status (0 verified); throws
 * {@link UsageError} (exit 2) for unusable input and {@link CommandError} with exit 1 for evidence that
 * was rejected, after printing the result. `io` defaults to the process's streams and environment.
 */
export async function attestCommand(argv: string[], io: AttestIo = processIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined)
    throw new UsageError('Cannot run attest: no subcommand given (donjon attest verify EVIDENCE)');
  if (sub === 'inspect') return inspectCommand(rest, io);
  if (sub !== 'verify')
    throw new UsageError(`Cannot run attest ${sub}: no such subcommand (attest has verify and inspect)`);
  return verifyCommand(rest, io);
}
