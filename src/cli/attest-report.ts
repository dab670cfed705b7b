// What `donjon attest` prints: the result object of --json, the claims table, the warnings.
import { type Claims, parseDcapQuote, parseSnpReport } from '../attestation/index.ts';

/** Where the command writes; tests pass their own. */
export interface AttestIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: NodeJS.ProcessEnv;
}

/** The kinds of evidence `attest verify` reads. */
export type EvidenceKind = 'sev-snp' | 'sgx' | 'tdx';

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
  /** How the evidence file held the evidence (`raw bytes`, `hex text with a 0x prefix`, `base64`, ...). */
  evidenceForm?: string | undefined;
  warnings: string[];
  claims: Claims | null;
  error?: { code: string; message: string };
}

/** The fields of the result that sum the evidence up. */
export type Summary = Omit<AttestResult, 'verified' | 'warnings' | 'claims'>;

/** The summary fields of the result: what every kind of claims has, and the TCB status where known. */
export function summary(claims: Claims): Summary {
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
export function unverifiedSummary(kind: EvidenceKind, bytes: Uint8Array): Summary {
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

/** What the user should know about verified claims (simulated, debuggable, unchecked revocation, TCB). */
export function warningsFor(claims: Claims): string[] {
  const warnings: string[] = [];
  if (claims.simulated) {
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

/** JSON.stringify replacer: bigints as decimal text, bytes as hex. */
export function jsonValue(_key: string, value: unknown): unknown {
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
