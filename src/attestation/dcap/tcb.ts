// TCB appraisal of a verified DCAP quote against signed collateral, as Intel's Quote Verification
// Library does it (TcbLevelCheck.cpp, TdxModuleCheck.cpp, EnclaveReportVerifier.cpp): the QE must match
// its identity and its ISVSVN selects the QE's status; the PCK's CPU SVN components and PCE SVN (and,
// for TDX, the TD's TEE_TCB_SVN) select the platform's TCB level; for TDX the module identity gives the
// module's status; the statuses then converge into one. TD relaunch advice (TDX 1.5) is not evaluated.
import { equalBytes, isZero, toHex } from '../bytes.ts';
import { AttestationError } from '../errors.ts';
import type {
  IsvSvnLevel,
  QeIdentity,
  TcbInfo,
  TcbLevel,
  TcbStatus,
  TdxModuleExpectation,
} from './collateral.ts';
import type { PckInfo } from './pck.ts';
import type { DcapQuote, SgxReportBody, TdxQuote } from './quote.ts';

/** A status with the advisories behind it. */
export interface StatusPart {
  status: TcbStatus;
  advisoryIds: readonly string[];
}

/** The outcome of TCB appraisal: the converged status and what each part contributed. */
export interface TcbEvaluation extends StatusPart {
  /** The TCB level the platform meets (for TDX, the level both its SGX and TDX components meet). */
  platform: StatusPart & { tcbDate: Date };
  /** The quoting enclave's level, selected by its ISVSVN. */
  qe: StatusPart & { isvSvn: number };
  /** TDX only, when the TD reports a module version: that module identity's level, by the module's ISVSVN. */
  module?: StatusPart & { id: string; isvSvn: number };
}

function fail(code: AttestationError['code'], message: string): never {
  throw new AttestationError(code, message);
}

/**
 * Checks the QE report against the QE identity (MRSIGNER, ISVPRODID, MISCSELECT and ATTRIBUTES under
 * their masks) and returns the level its ISVSVN meets (undefined for an identity without levels, such as
 * the built-in one used without collateral). Fails with ERR_QE_IDENTITY_MISMATCH, or
 * ERR_TCB_NOT_SUPPORTED when its ISVSVN is below every level.
 */
export function appraiseQe(
  qe: SgxReportBody,
  identity: Pick<
    QeIdentity,
    'mrSigner' | 'isvProdId' | 'miscselect' | 'miscselectMask' | 'attributes' | 'attributesMask'
  > & { tcbLevels?: readonly IsvSvnLevel[] },
): IsvSvnLevel | undefined {
  const mismatch = (what: string) =>
    fail(
      'ERR_QE_IDENTITY_MISMATCH',
      `Cannot accept the quoting enclave: its ${what} is not the QE identity's`,
    );
  if (!equalBytes(qe.mrSigner, identity.mrSigner)) mismatch(`MRSIGNER ${toHex(qe.mrSigner)}`);
  if (qe.isvProdId !== identity.isvProdId) mismatch(`ISVPRODID ${qe.isvProdId}`);
  if ((qe.miscSelect & identity.miscselectMask) >>> 0 !== identity.miscselect) mismatch('MISCSELECT');
  for (let i = 0; i < 16; i++) {
    if ((qe.attributes[i]! & identity.attributesMask[i]!) !== identity.attributes[i]) mismatch('ATTRIBUTES');
  }
  if (identity.tcbLevels === undefined) return undefined;
  const level = identity.tcbLevels.find((l) => qe.isvSvn >= l.isvSvn);
  if (level === undefined)
    fail(
      'ERR_TCB_NOT_SUPPORTED',
      `Cannot appraise the quoting enclave: its ISVSVN ${qe.isvSvn} is below every level`,
    );
  return level;
}

/**
 * QVL's convergence of a TCB level status with the status of a part it depends on (the QE, or the TDX
 * module): a revoked part revokes; an out-of-date part makes an up-to-date platform out of date and a
 * platform needing configuration "out of date, configuration needed".
 */
export function converge(platform: TcbStatus, part: TcbStatus): TcbStatus {
  if (part === 'Revoked') return 'Revoked';
  if (part === 'UpToDate') return platform;
  if (platform === 'UpToDate' || platform === 'SWHardeningNeeded') return 'OutOfDate';
  if (platform === 'ConfigurationNeeded' || platform === 'ConfigurationAndSWHardeningNeeded')
    return 'OutOfDateConfigurationNeeded';
  return platform;
}

function meets(actual: ArrayLike<number>, required: readonly number[], from = 0): boolean {
  for (let i = from; i < required.length; i++) if (actual[i]! < required[i]!) return false;
  return true;
}

/** The first level (highest first) the PCK's SGX components and PCE SVN meet, and for TDX also the TD's. */
export function selectTcbLevels(
  levels: readonly TcbLevel[],
  pck: Pick<PckInfo, 'cpuSvnComponents' | 'pceSvn'>,
  teeTcbSvn?: Uint8Array,
): { sgx?: TcbLevel; tdx?: TcbLevel } {
  let sgx: TcbLevel | undefined;
  for (const level of levels) {
    if (!meets(pck.cpuSvnComponents, level.sgxComponents) || pck.pceSvn < level.pceSvn) continue;
    if (teeTcbSvn === undefined) return { sgx: level };
    sgx ??= level;
    // Bytes 0 and 1 are the module's SVN and version when a module version is reported; the module
    // identity ranks those (Intel QVL isTdxTcbHigherOrEqual).
    const from = teeTcbSvn[1]! > 0 ? 2 : 0;
    if (level.tdxComponents !== undefined && meets(teeTcbSvn, level.tdxComponents, from))
      return { sgx, tdx: level };
  }
  return sgx === undefined ? {} : { sgx };
}

function moduleCheck(quote: TdxQuote, info: TcbInfo): { id: string; level: IsvSvnLevel } | undefined {
  const svn = quote.body.teeTcbSvn;
  const version = svn[1]!;
  let expected: TdxModuleExpectation | undefined = info.tdxModule;
  let identity: { id: string; tcbLevels: readonly IsvSvnLevel[] } | undefined;
  if (version > 0) {
    const id = `TDX_${version.toString(16).toUpperCase().padStart(2, '0')}`;
    const found = info.tdxModuleIdentities?.find((m) => m.id === id);
    if (found === undefined)
      fail('ERR_TDX_MODULE_MISMATCH', `Cannot appraise the TDX module: the TCB info has no identity ${id}`);
    expected = found;
    identity = found;
  }
  if (expected === undefined)
    fail('ERR_COLLATERAL_INVALID', 'Cannot appraise the TDX module: the TCB info has no tdxModule');
  if (!equalBytes(quote.body.mrSignerSeam, expected.mrSigner)) {
    fail(
      'ERR_TDX_MODULE_MISMATCH',
      `Cannot accept the TDX module: MRSIGNERSEAM ${toHex(quote.body.mrSignerSeam)} is not the TCB info's`,
    );
  }
  // QVL requires SEAMATTRIBUTES to be zero and equal to the identity's, mask or not.
  if (!isZero(quote.body.seamAttributes) || !equalBytes(quote.body.seamAttributes, expected.attributes)) {
    fail(
      'ERR_TDX_MODULE_MISMATCH',
      `Cannot accept the TDX module: SEAMATTRIBUTES ${toHex(quote.body.seamAttributes)} is not the TCB info's`,
    );
  }
  if (identity === undefined) return undefined;
  const level = identity.tcbLevels.find((l) => svn[0]! >= l.isvSvn);
  if (level === undefined) {
    fail(
      'ERR_TCB_NOT_SUPPORTED',
      `Cannot appraise the TDX module: its ISVSVN ${svn[0]} is below every level of ${identity.id}`,
    );
  }
  return { id: identity.id, level };
}

function union(...lists: (readonly string[])[]): string[] {
  const out: string[] = [];
  for (const list of lists) for (const id of list) if (!out.includes(id)) out.push(id);
  return out;
}

/**
 * Appraises the TCB of a quote whose signatures and chain have verified, against TCB info and QE
 * identity whose signatures and dates have verified: kinds and FMSPC/PCE-ID must match, then the QE,
 * the TDX module and the platform TCB level give one status (Intel QVL's rules) and the advisories of
 * every part. Fails with ERR_COLLATERAL_INVALID (collateral for another TEE), ERR_FMSPC_MISMATCH,
 * ERR_QE_IDENTITY_MISMATCH, ERR_TDX_MODULE_MISMATCH or ERR_TCB_NOT_SUPPORTED.
 */
export function evaluateTcb(
  quote: DcapQuote,
  pck: PckInfo,
  info: TcbInfo,
  identity: QeIdentity,
): TcbEvaluation {
  const tdx = quote.kind === 'tdx';
  if (info.id !== (tdx ? 'TDX' : 'SGX')) {
    fail(
      'ERR_COLLATERAL_INVALID',
      `Cannot appraise the ${quote.kind.toUpperCase()} quote: the TCB info is for ${info.id}`,
    );
  }
  if (identity.id !== (tdx ? 'TD_QE' : 'QE')) {
    fail(
      'ERR_COLLATERAL_INVALID',
      `Cannot appraise the ${quote.kind.toUpperCase()} quote: the QE identity is for ${identity.id}`,
    );
  }
  if (!equalBytes(pck.fmspc, info.fmspc)) {
    fail(
      'ERR_FMSPC_MISMATCH',
      `Cannot appraise the quote: the TCB info is for FMSPC ${toHex(info.fmspc)}, the PCK certificate's is ${toHex(pck.fmspc)}`,
    );
  }
  if (!equalBytes(pck.pceId, info.pceId)) {
    fail(
      'ERR_FMSPC_MISMATCH',
      `Cannot appraise the quote: the TCB info is for PCE-ID ${toHex(info.pceId)}, the PCK certificate's is ${toHex(pck.pceId)}`,
    );
  }
  const qeLevel = appraiseQe(quote.qeReport, identity)!;
  const module = quote.kind === 'tdx' ? moduleCheck(quote, info) : undefined;
  const selected = selectTcbLevels(
    info.tcbLevels,
    pck,
    quote.kind === 'tdx' ? quote.body.teeTcbSvn : undefined,
  );
  const level = tdx ? selected.tdx : selected.sgx;
  if (level === undefined) {
    fail(
      'ERR_TCB_NOT_SUPPORTED',
      `Cannot appraise the platform: no TCB level of FMSPC ${toHex(info.fmspc)} matches its ${tdx && selected.sgx !== undefined ? 'TDX' : 'SGX'} components`,
    );
  }
  let status = level.tcbStatus;
  if (module !== undefined) status = converge(status, module.level.tcbStatus);
  status = converge(status, qeLevel.tcbStatus);
  const evaluation: TcbEvaluation = {
    status,
    advisoryIds: Object.freeze(
      union(level.advisoryIds, module?.level.advisoryIds ?? [], qeLevel.advisoryIds),
    ),
    platform: { status: level.tcbStatus, advisoryIds: level.advisoryIds, tcbDate: level.tcbDate },
    qe: { status: qeLevel.tcbStatus, advisoryIds: qeLevel.advisoryIds, isvSvn: quote.qeReport.isvSvn },
  };
  if (module !== undefined) {
    evaluation.module = {
      id: module.id,
      status: module.level.tcbStatus,
      advisoryIds: module.level.advisoryIds,
      isvSvn: (quote as TdxQuote).body.teeTcbSvn[0]!,
    };
  }
  return evaluation;
}
