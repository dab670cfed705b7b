// Over 400 lines: the four collateral documents share one JSON reader, one signature check and one validity rule.
// DCAP collateral: what Intel's PCS (or a caching service) supplies to appraise a quote's platform. The
// Root CA CRL and the PCK CRL revoke certificates; the TCB info (per FMSPC) ranks the platform's TCB
// levels; the QE identity describes the genuine quoting enclave. TCB info and QE identity are JSON signed
// by Intel's TCB signing key over their exact bytes, so they are kept as the text served and parsed
// only to read them, never re-serialised.

import { isRecord, missingKey, unknownKey } from '../../lib/json.ts';
import { type PemBlock, PemError, readPem } from '../../lib/pem.ts';
import { tryFromHex } from '../bytes.ts';
import { parseCrl } from '../crl.ts';
import { AttestationError } from '../errors.ts';

/**
 * The collateral of one DCAP quote, in the layout of Phala's dcap-qvl `QuoteCollateralV3` JSON (camel
 * case here). Byte fields may be given as bytes or as hex text, as that JSON has them.
 */
export interface DcapCollateral {
  /** PEM: the PCK CRL's issuer (PCK Platform or Processor CA), then the Intel SGX Root CA. */
  pckCrlIssuerChain: string;
  /** DER (bytes or hex) CRL of the Intel SGX Root CA. */
  rootCaCrl: Uint8Array | string;
  /** DER (bytes or hex) CRL of the PCK Platform or Processor CA. */
  pckCrl: Uint8Array | string;
  /** PEM: the Intel SGX TCB Signing certificate, then the Root CA. */
  tcbInfoIssuerChain: string;
  /** The exact JSON text of the `tcbInfo` value as served: the signature covers these bytes. */
  tcbInfo: string;
  /** ECDSA P-256 signature over `tcbInfo` (64 bytes r || s, or 128 hex digits). */
  tcbInfoSignature: Uint8Array | string;
  /** PEM: the Intel SGX TCB Signing certificate, then the Root CA. */
  qeIdentityIssuerChain: string;
  /** The exact JSON text of the `enclaveIdentity` value as served. */
  qeIdentity: string;
  /** ECDSA P-256 signature over `qeIdentity` (64 bytes r || s, or 128 hex digits). */
  qeIdentitySignature: Uint8Array | string;
}

/** TCB statuses of Intel's TCB info and QE identity, in the order of the TcbStatus type. */
export type TcbStatus =
  | 'UpToDate'
  | 'SWHardeningNeeded'
  | 'ConfigurationNeeded'
  | 'ConfigurationAndSWHardeningNeeded'
  | 'OutOfDate'
  | 'OutOfDateConfigurationNeeded'
  | 'Revoked';

/** Every {@link TcbStatus}. */
export const tcbStatuses: readonly TcbStatus[] = Object.freeze([
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'OutOfDate',
  'OutOfDateConfigurationNeeded',
  'Revoked',
]);

/** One TCB level of a TCB info. */
export interface TcbLevel {
  /** The 16 SGX TCB component SVNs. */
  sgxComponents: readonly number[];
  pceSvn: number;
  /** TDX TCB info only: the 16 TDX TCB component SVNs. */
  tdxComponents?: readonly number[];
  tcbDate: Date;
  tcbStatus: TcbStatus;
  advisoryIds: readonly string[];
}

/** A level keyed by one ISVSVN: QE identity and TDX module identity levels. */
export interface IsvSvnLevel {
  isvSvn: number;
  tcbDate: Date;
  tcbStatus: TcbStatus;
  advisoryIds: readonly string[];
}

/** What a TDX module must look like: its signer and SEAM attributes. */
export interface TdxModuleExpectation {
  mrSigner: Uint8Array;
  attributes: Uint8Array;
  attributesMask: Uint8Array;
}

/** One TDX module identity (`TDX_01`, `TDX_03`, ...) with its own TCB levels. */
export interface TdxModuleIdentity extends TdxModuleExpectation {
  id: string;
  tcbLevels: readonly IsvSvnLevel[];
}

/** A parsed TCB info (version 3). Levels are sorted highest first, as Intel's QVL ranks them. */
export interface TcbInfo {
  id: 'SGX' | 'TDX';
  version: 3;
  issueDate: Date;
  nextUpdate: Date;
  fmspc: Uint8Array;
  pceId: Uint8Array;
  tcbType: number;
  tcbEvaluationDataNumber: number;
  tdxModule?: TdxModuleExpectation;
  tdxModuleIdentities?: readonly TdxModuleIdentity[];
  tcbLevels: readonly TcbLevel[];
}

/** A parsed QE identity (version 2). Levels are sorted by ISVSVN, highest first. */
export interface QeIdentity {
  id: 'QE' | 'TD_QE';
  version: 2;
  issueDate: Date;
  nextUpdate: Date;
  tcbEvaluationDataNumber: number;
  miscselect: number;
  miscselectMask: number;
  attributes: Uint8Array;
  attributesMask: Uint8Array;
  mrSigner: Uint8Array;
  isvProdId: number;
  tcbLevels: readonly IsvSvnLevel[];
}

/** Collateral with every piece decoded: what verification works on. */
export interface ParsedCollateral {
  pckCrlIssuerChain: readonly Uint8Array[];
  rootCaCrl: Uint8Array;
  pckCrl: Uint8Array;
  tcbInfoIssuerChain: readonly Uint8Array[];
  tcbInfoText: string;
  tcbInfo: TcbInfo;
  tcbInfoSignature: Uint8Array;
  qeIdentityIssuerChain: readonly Uint8Array[];
  qeIdentityText: string;
  qeIdentity: QeIdentity;
  qeIdentitySignature: Uint8Array;
}

function invalid(state: string, cause?: unknown): never {
  throw new AttestationError(
    'ERR_COLLATERAL_INVALID',
    `Cannot parse DCAP collateral: ${state}`,
    cause === undefined ? undefined : { cause },
  );
}

type Json = Record<string, unknown>;

function record(value: unknown, where: string): Json {
  if (!isRecord(value)) invalid(`${where} is not an object`);
  return value;
}

function keys(
  value: Json,
  where: string,
  required: readonly string[],
  optional: readonly string[] = [],
): void {
  const unknown = unknownKey(value, [...required, ...optional]);
  if (unknown !== undefined) invalid(`${where} has the unknown field ${unknown}`);
  const missing = missingKey(value, required);
  if (missing !== undefined) invalid(`${where} lacks the field ${missing}`);
}

function int(value: unknown, where: string, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max)
    invalid(`${where} is not an integer in 0..${max}`);
  return value;
}

function str(value: unknown, where: string): string {
  if (typeof value !== 'string') invalid(`${where} is not a string`);
  return value;
}

function hex(value: unknown, where: string, bytes: number): Uint8Array {
  const s = str(value, where);
  const out = s.length === bytes * 2 ? tryFromHex(s) : undefined;
  if (out === undefined) invalid(`${where} is not ${bytes * 2} hex digits`);
  return out;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;

function date(value: unknown, where: string): Date {
  const s = str(value, where);
  const m = DATE.exec(s);
  const d = m === null ? undefined : new Date(s);
  // Date accepts 2025-02-30 and rolls it over; a date that does not print back as itself is not one.
  if (d === undefined || Number.isNaN(d.getTime()) || d.toISOString() !== `${s.slice(0, 19)}.000Z`)
    invalid(`${where} is not a UTC date-time (YYYY-MM-DDTHH:MM:SSZ)`);
  return d;
}

function status(value: unknown, where: string): TcbStatus {
  if (typeof value !== 'string' || !(tcbStatuses as readonly string[]).includes(value))
    invalid(`${where} is not a known TCB status`);
  return value as TcbStatus;
}

function advisories(value: unknown, where: string): readonly string[] {
  if (value === undefined) return Object.freeze([]);
  if (!Array.isArray(value)) invalid(`${where} is not a list`);
  return Object.freeze(
    value.map((a, i) => {
      if (typeof a !== 'string' || !/^[A-Za-z0-9-]{1,64}$/.test(a))
        invalid(`${where}[${i}] is not an advisory id`);
      return a;
    }),
  );
}

function components(value: unknown, where: string): readonly number[] {
  if (!Array.isArray(value) || value.length !== 16) invalid(`${where} is not a list of 16 components`);
  return Object.freeze(
    value.map((c, i) => {
      const o = record(c, `${where}[${i}]`);
      keys(o, `${where}[${i}]`, ['svn'], ['category', 'type']);
      if (o.category !== undefined) str(o.category, `${where}[${i}].category`);
      if (o.type !== undefined) str(o.type, `${where}[${i}].type`);
      return int(o.svn, `${where}[${i}].svn`, 255);
    }),
  );
}

function isvSvnLevels(value: unknown, where: string): readonly IsvSvnLevel[] {
  if (!Array.isArray(value) || value.length === 0) invalid(`${where} is not a non-empty list`);
  const levels = value.map((l, i) => {
    const o = record(l, `${where}[${i}]`);
    keys(o, `${where}[${i}]`, ['tcb', 'tcbDate', 'tcbStatus'], ['advisoryIDs']);
    const tcb = record(o.tcb, `${where}[${i}].tcb`);
    keys(tcb, `${where}[${i}].tcb`, ['isvsvn']);
    return {
      isvSvn: int(tcb.isvsvn, `${where}[${i}].tcb.isvsvn`, 0xffff),
      tcbDate: date(o.tcbDate, `${where}[${i}].tcbDate`),
      tcbStatus: status(o.tcbStatus, `${where}[${i}].tcbStatus`),
      advisoryIds: advisories(o.advisoryIDs, `${where}[${i}].advisoryIDs`),
    };
  });
  // Intel's QVL keeps levels in a set ordered by ISVSVN, highest first, and takes the first one met.
  return Object.freeze(levels.sort((a, b) => b.isvSvn - a.isvSvn));
}

function moduleExpectation(o: Json, where: string): TdxModuleExpectation {
  return {
    mrSigner: hex(o.mrsigner, `${where}.mrsigner`, 48),
    attributes: hex(o.attributes, `${where}.attributes`, 8),
    attributesMask: hex(o.attributesMask, `${where}.attributesMask`, 8),
  };
}

function parseJsonText(text: unknown, where: string): Json {
  if (typeof text !== 'string') invalid(`${where} is not JSON text`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    return invalid(`${where} is not JSON`, cause);
  }
  return record(value, where);
}

function compareLevels(a: TcbLevel, b: TcbLevel, tdx: boolean): number {
  // Intel's QVL orders levels by SGX components (lexicographically), then PCE SVN, then (TDX) the TDX
  // components, highest first; level selection takes the first level the platform meets.
  const lex = (x: readonly number[], y: readonly number[]) => {
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return x.length - y.length;
  };
  return (
    lex(b.sgxComponents, a.sgxComponents) ||
    b.pceSvn - a.pceSvn ||
    (tdx ? lex(b.tdxComponents ?? [], a.tdxComponents ?? []) : 0)
  );
}

/**
 * Reads the text of a TCB info (the `tcbInfo` value, version 3, id SGX or TDX) into typed values.
 * Unknown fields fail: a field this code does not read could be a constraint it does not apply.
 * Fails with ERR_COLLATERAL_INVALID. Does not check the signature.
 */
export function parseTcbInfo(text: string): TcbInfo {
  const o = parseJsonText(text, 'the TCB info');
  keys(
    o,
    'the TCB info',
    [
      'id',
      'version',
      'issueDate',
      'nextUpdate',
      'fmspc',
      'pceId',
      'tcbType',
      'tcbEvaluationDataNumber',
      'tcbLevels',
    ],
    ['tdxModule', 'tdxModuleIdentities'],
  );
  if (o.id !== 'SGX' && o.id !== 'TDX') invalid('the TCB info id is not SGX or TDX');
  if (o.version !== 3) invalid('the TCB info version is not 3');
  const tdx = o.id === 'TDX';
  const tcbType = int(o.tcbType, 'the TCB info tcbType', 0xffff);
  // Type 0 is the only decomposition of the CPUSVN Intel defines: component i is byte i.
  if (tcbType !== 0) invalid(`the TCB info tcbType ${tcbType} is not 0`);
  if (!Array.isArray(o.tcbLevels) || o.tcbLevels.length === 0) invalid('the TCB info has no TCB levels');
  const levels = o.tcbLevels.map((l, i): TcbLevel => {
    const where = `tcbLevels[${i}]`;
    const lo = record(l, where);
    keys(lo, where, ['tcb', 'tcbDate', 'tcbStatus'], ['advisoryIDs']);
    const tcb = record(lo.tcb, `${where}.tcb`);
    keys(
      tcb,
      `${where}.tcb`,
      tdx ? ['sgxtcbcomponents', 'pcesvn', 'tdxtcbcomponents'] : ['sgxtcbcomponents', 'pcesvn'],
    );
    const level: TcbLevel = {
      sgxComponents: components(tcb.sgxtcbcomponents, `${where}.tcb.sgxtcbcomponents`),
      pceSvn: int(tcb.pcesvn, `${where}.tcb.pcesvn`, 0xffff),
      tcbDate: date(lo.tcbDate, `${where}.tcbDate`),
      tcbStatus: status(lo.tcbStatus, `${where}.tcbStatus`),
      advisoryIds: advisories(lo.advisoryIDs, `${where}.advisoryIDs`),
    };
    if (tdx) level.tdxComponents = components(tcb.tdxtcbcomponents, `${where}.tcb.tdxtcbcomponents`);
    return level;
  });
  const info: TcbInfo = {
    id: o.id,
    version: 3,
    issueDate: date(o.issueDate, 'the TCB info issueDate'),
    nextUpdate: date(o.nextUpdate, 'the TCB info nextUpdate'),
    fmspc: hex(o.fmspc, 'the TCB info fmspc', 6),
    pceId: hex(o.pceId, 'the TCB info pceId', 2),
    tcbType,
    tcbEvaluationDataNumber: int(
      o.tcbEvaluationDataNumber,
      'the TCB info tcbEvaluationDataNumber',
      0xffffffff,
    ),
    tcbLevels: Object.freeze(levels.sort((a, b) => compareLevels(a, b, tdx))),
  };
  if (!tdx && (o.tdxModule !== undefined || o.tdxModuleIdentities !== undefined))
    invalid('an SGX TCB info has TDX module fields');
  if (tdx) {
    const m = record(o.tdxModule, 'the TCB info tdxModule');
    keys(m, 'tdxModule', ['mrsigner', 'attributes', 'attributesMask']);
    info.tdxModule = moduleExpectation(m, 'tdxModule');
    if (o.tdxModuleIdentities !== undefined) {
      if (!Array.isArray(o.tdxModuleIdentities)) invalid('tdxModuleIdentities is not a list');
      const seen = new Set<string>();
      info.tdxModuleIdentities = Object.freeze(
        o.tdxModuleIdentities.map((x, i): TdxModuleIdentity => {
          const where = `tdxModuleIdentities[${i}]`;
          const mo = record(x, where);
          keys(mo, where, ['id', 'mrsigner', 'attributes', 'attributesMask', 'tcbLevels']);
          const id = str(mo.id, `${where}.id`).toUpperCase();
          if (!/^TDX_[0-9A-F]{2}$/.test(id)) invalid(`${where}.id is not TDX_ and two hex digits`);
          if (seen.has(id)) invalid(`the TCB info has the TDX module identity ${id} twice`);
          seen.add(id);
          return {
            id,
            ...moduleExpectation(mo, where),
            tcbLevels: isvSvnLevels(mo.tcbLevels, `${where}.tcbLevels`),
          };
        }),
      );
    }
  }
  if (info.nextUpdate.getTime() < info.issueDate.getTime())
    invalid('the TCB info nextUpdate is before its issueDate');
  return info;
}

/**
 * Reads the text of a QE identity (the `enclaveIdentity` value, version 2, id QE or TD_QE) into typed
 * values. Unknown fields fail. Fails with ERR_COLLATERAL_INVALID. Does not check the signature.
 */
export function parseQeIdentity(text: string): QeIdentity {
  const o = parseJsonText(text, 'the QE identity');
  keys(o, 'the QE identity', [
    'id',
    'version',
    'issueDate',
    'nextUpdate',
    'tcbEvaluationDataNumber',
    'miscselect',
    'miscselectMask',
    'attributes',
    'attributesMask',
    'mrsigner',
    'isvprodid',
    'tcbLevels',
  ]);
  if (o.id !== 'QE' && o.id !== 'TD_QE') invalid('the QE identity id is not QE or TD_QE');
  if (o.version !== 2) invalid('the QE identity version is not 2');
  const be32 = (v: unknown, where: string) => {
    const b = hex(v, where, 4);
    return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  };
  const identity: QeIdentity = {
    id: o.id,
    version: 2,
    issueDate: date(o.issueDate, 'the QE identity issueDate'),
    nextUpdate: date(o.nextUpdate, 'the QE identity nextUpdate'),
    tcbEvaluationDataNumber: int(
      o.tcbEvaluationDataNumber,
      'the QE identity tcbEvaluationDataNumber',
      0xffffffff,
    ),
    // Intel writes MISCSELECT as a big-endian hex number (QVL reads it with a byte swap).
    miscselect: be32(o.miscselect, 'the QE identity miscselect'),
    miscselectMask: be32(o.miscselectMask, 'the QE identity miscselectMask'),
    attributes: hex(o.attributes, 'the QE identity attributes', 16),
    attributesMask: hex(o.attributesMask, 'the QE identity attributesMask', 16),
    mrSigner: hex(o.mrsigner, 'the QE identity mrsigner', 32),
    isvProdId: int(o.isvprodid, 'the QE identity isvprodid', 0xffff),
    tcbLevels: isvSvnLevels(o.tcbLevels, 'the QE identity tcbLevels'),
  };
  if (identity.nextUpdate.getTime() < identity.issueDate.getTime())
    invalid('the QE identity nextUpdate is before its issueDate');
  return identity;
}

/** The longest PEM chain accepted, checked before reading it. */
const MAX_PEM_CHAIN = 65536;

/** DER certificates of a PEM text that holds nothing but certificates (and whitespace), at least one. */
function pemChain(value: unknown, where: string): readonly Uint8Array[] {
  const text = str(value, where);
  if (text.length > MAX_PEM_CHAIN)
    invalid(`${where} is not a PEM certificate chain (over ${MAX_PEM_CHAIN} characters)`);
  let blocks: PemBlock[];
  try {
    blocks = readPem(text, { only: true });
  } catch (cause) {
    if (!(cause instanceof PemError)) throw cause;
    return invalid(`${where} is not a PEM certificate chain: ${cause.detail}`, cause);
  }
  if (blocks.length === 0 || blocks.some((b) => b.label !== 'CERTIFICATE'))
    invalid(`${where} is not a PEM certificate chain`);
  return Object.freeze(blocks.map((b) => b.der));
}

function bytesField(value: unknown, where: string, length?: number): Uint8Array {
  let bytes: Uint8Array | undefined;
  if (value instanceof Uint8Array) bytes = value.slice();
  else if (typeof value === 'string') bytes = tryFromHex(value);
  else invalid(`${where} is neither bytes nor hex text`);
  if (bytes === undefined || bytes.byteLength === 0) invalid(`${where} is not hex text`);
  if (length !== undefined && bytes.byteLength !== length) invalid(`${where} is not ${length} bytes`);
  return bytes;
}

const SNAKE = {
  pckCrlIssuerChain: 'pck_crl_issuer_chain',
  rootCaCrl: 'root_ca_crl',
  pckCrl: 'pck_crl',
  tcbInfoIssuerChain: 'tcb_info_issuer_chain',
  tcbInfo: 'tcb_info',
  tcbInfoSignature: 'tcb_info_signature',
  qeIdentityIssuerChain: 'qe_identity_issuer_chain',
  qeIdentity: 'qe_identity',
  qeIdentitySignature: 'qe_identity_signature',
} as const satisfies Record<keyof DcapCollateral, string>;
const CAMEL = Object.keys(SNAKE) as (keyof DcapCollateral)[];

/**
 * Decodes and checks every piece of DCAP collateral, given in the layout of dcap-qvl's collateral JSON
 * (snake_case, as in its `*_collateral.json` files) or as a {@link DcapCollateral} (camelCase): every
 * field present and no other, chains are PEM certificates, CRLs are DER CRLs, signatures 64 bytes, TCB
 * info and QE identity well-formed. Fails with ERR_COLLATERAL_INVALID. Checks no signature or date:
 * verification does (see {@link verifyDcapQuote}).
 */
export function readDcapCollateral(json: unknown): ParsedCollateral {
  const o = record(json, 'the collateral');
  const snake = Object.hasOwn(o, SNAKE.tcbInfo);
  const names = snake ? Object.values(SNAKE) : CAMEL;
  keys(o, 'the collateral', names);
  const get = (k: keyof DcapCollateral) => o[snake ? SNAKE[k] : k];
  const tcbInfoText = str(get('tcbInfo'), 'tcbInfo');
  const qeIdentityText = str(get('qeIdentity'), 'qeIdentity');
  const rootCaCrl = bytesField(get('rootCaCrl'), 'rootCaCrl');
  const pckCrl = bytesField(get('pckCrl'), 'pckCrl');
  parseCrl(rootCaCrl, 'the Root CA CRL');
  parseCrl(pckCrl, 'the PCK CRL');
  return {
    pckCrlIssuerChain: pemChain(get('pckCrlIssuerChain'), 'pckCrlIssuerChain'),
    rootCaCrl,
    pckCrl,
    tcbInfoIssuerChain: pemChain(get('tcbInfoIssuerChain'), 'tcbInfoIssuerChain'),
    tcbInfoText,
    tcbInfo: parseTcbInfo(tcbInfoText),
    tcbInfoSignature: bytesField(get('tcbInfoSignature'), 'tcbInfoSignature', 64),
    qeIdentityIssuerChain: pemChain(get('qeIdentityIssuerChain'), 'qeIdentityIssuerChain'),
    qeIdentityText,
    qeIdentity: parseQeIdentity(qeIdentityText),
    qeIdentitySignature: bytesField(get('qeIdentitySignature'), 'qeIdentitySignature', 64),
  };
}

/**
 * Checks DCAP collateral from dcap-qvl's collateral JSON layout (snake_case keys, hex CRLs and
 * signatures) or a {@link DcapCollateral} object, strictly (see {@link readDcapCollateral} for what is
 * checked), and returns it as a {@link DcapCollateral} with bytes for the DER and signature fields.
 * Fails with ERR_COLLATERAL_INVALID.
 *
 * @example
 * const collateral = parseDcapCollateral(JSON.parse(readFileSync('sgx_quote_collateral.json', 'utf8')));
 */
export function parseDcapCollateral(json: unknown): DcapCollateral {
  const p = readDcapCollateral(json);
  const o = json as Json;
  const snake = Object.hasOwn(o, SNAKE.tcbInfo);
  const text = (k: 'pckCrlIssuerChain' | 'tcbInfoIssuerChain' | 'qeIdentityIssuerChain') =>
    o[snake ? SNAKE[k] : k] as string;
  return {
    pckCrlIssuerChain: text('pckCrlIssuerChain'),
    rootCaCrl: p.rootCaCrl,
    pckCrl: p.pckCrl,
    tcbInfoIssuerChain: text('tcbInfoIssuerChain'),
    tcbInfo: p.tcbInfoText,
    tcbInfoSignature: p.tcbInfoSignature,
    qeIdentityIssuerChain: text('qeIdentityIssuerChain'),
    qeIdentity: p.qeIdentityText,
    qeIdentitySignature: p.qeIdentitySignature,
  };
}

/**
 * Splits a PCS response body (`{"tcbInfo":{...},"signature":"..."}` or `{"enclaveIdentity":...}`) into
 * the exact text of the signed value and its signature, without re-serialising anything: the signature
 * covers the value's bytes as served. Fails with ERR_COLLATERAL_INVALID when the body is not exactly
 * that shape.
 *
 * @example
 * const { body, signature } = splitPcsResponse(await res.text(), 'tcbInfo');
 */
export function splitPcsResponse(
  text: string,
  key: 'tcbInfo' | 'enclaveIdentity',
): { body: string; signature: Uint8Array } {
  if (typeof text !== 'string') throw new TypeError('Cannot split PCS response: expected a string');
  const prefix = `{"${key}":`;
  const m = /,"signature":"([0-9a-fA-F]{128})"}\s*$/.exec(text);
  if (!text.startsWith(prefix) || m === null)
    invalid(`the PCS response is not {"${key}":...,"signature":"..."}`);
  const body = text.slice(prefix.length, m.index);
  // The body must be one JSON object on its own: a "signature" key inside it would have moved the split.
  parseJsonText(body, `the PCS ${key}`);
  return { body, signature: tryFromHex(m[1]!)! };
}
