// Over 400 lines: one policy language, its parser and its enforcement per evidence kind, kept together so every field a policy names is visibly enforced.
// Appraisal policy: what a tenant requires of verified evidence. Every field a policy names is enforced,
// and a field the verifier does not know, or cannot check on the evidence at hand, is an error rather
// than a pass.

import { isRecord, unknownKey } from '../lib/json.ts';
import { equalBytes, toHex, tryFromHex } from './bytes.ts';
import { type TcbStatus, tcbStatuses } from './dcap/collateral.ts';
import type { DcapVerified } from './dcap/verify.ts';
import { AttestationError } from './errors.ts';
import type { SnpVerified } from './snp/verify.ts';

/** Minimum TCB component values (each 0..255), compared with the report's REPORTED_TCB. */
export type MinTcb = Partial<{
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  fmc: number;
}>;

/** Allowed RTMR values of a TD, by register index (`"0"` to `"3"`). */
export type RtmrPolicy = Partial<Record<'0' | '1' | '2' | '3', readonly string[]>>;

/**
 * What a tenant requires of the evidence. Absent fields impose nothing, except the safe defaults noted.
 * Each field applies to the evidence kinds named; on another kind it is ERR_POLICY_UNSUPPORTED, so a
 * policy never passes by naming something the evidence cannot show.
 */
export interface Policy {
  /** SEV-SNP: allowed launch measurements (96 hex digits, any case); absent means any. */
  measurements?: readonly string[];
  /** All kinds: exact expected REPORT_DATA (64 bytes): binds the Keep's key and the client's nonce. */
  reportData?: Uint8Array;
  /** All kinds. Default false: a guest (SNP policy DEBUG, SGX ATTRIBUTES.DEBUG, TD_ATTRIBUTES.DEBUG) that can be debugged is refused. */
  allowDebug?: boolean;
  /** SGX: allowed MRENCLAVE values (64 hex digits). */
  mrEnclaves?: readonly string[];
  /** SGX: allowed MRSIGNER values (64 hex digits). */
  mrSigners?: readonly string[];
  /** SGX: minimum ISVSVN. */
  minIsvSvn?: number;
  /** TDX: allowed MRTD values (96 hex digits). */
  mrTds?: readonly string[];
  /** TDX: allowed values per RTMR index (96 hex digits each). */
  rtmrs?: RtmrPolicy;
  /**
   * SGX and TDX: the TCB statuses accepted when collateral was checked; default `['UpToDate']`. Evidence
   * verified without collateral has no status: see `requireCollateral`.
   */
  acceptedTcbStatuses?: readonly TcbStatus[];
  /**
   * All kinds. Default false. SGX/TDX: refuse a quote verified without collateral (no revocation or TCB
   * status check). SEV-SNP: refuse a report verified without a CRL of its ARK (no revocation check).
   */
  requireCollateral?: boolean;
  /** SEV-SNP. Default false: a guest that may be associated with a migration agent is refused. */
  allowMigrationAgent?: boolean;
  /** SEV-SNP: minimum REPORTED_TCB components. `fmc` exists only on Turin and later. */
  minTcb?: MinTcb;
  /** SEV-SNP: minimum GUEST_SVN. */
  minGuestSvn?: number;
  /** SEV-SNP: required VMPL (0..3). */
  vmpl?: number;
  /** SEV-SNP: exact HOST_DATA (64 hex digits, any case). */
  hostData?: string;
  /** SEV-SNP: allowed ID_KEY_DIGESTs (96 hex digits each). */
  idKeyDigests?: readonly string[];
  /** SEV-SNP: allowed AUTHOR_KEY_DIGESTs (96 hex digits each); requires AUTHOR_KEY_EN. */
  authorKeyDigests?: readonly string[];
  /** SHA-256 fingerprints (64 hex digits) of simulated roots (an ARK, an Intel root) this policy opts into (a choice of roots, not a check). */
  trustSimulatedRoots?: readonly string[];
}

const FIELDS = [
  'measurements',
  'reportData',
  'allowDebug',
  'allowMigrationAgent',
  'minTcb',
  'minGuestSvn',
  'vmpl',
  'hostData',
  'idKeyDigests',
  'authorKeyDigests',
  'trustSimulatedRoots',
  'mrEnclaves',
  'mrSigners',
  'minIsvSvn',
  'mrTds',
  'rtmrs',
  'acceptedTcbStatuses',
  'requireCollateral',
] as const;

/** Fields that only SEV-SNP evidence can show. */
const SNP_ONLY = [
  'measurements',
  'allowMigrationAgent',
  'minTcb',
  'minGuestSvn',
  'vmpl',
  'hostData',
  'idKeyDigests',
  'authorKeyDigests',
] as const;
/** Fields that only SGX quotes can show. */
const SGX_ONLY = ['mrEnclaves', 'mrSigners', 'minIsvSvn'] as const;
/** Fields that only TDX quotes can show. */
const TDX_ONLY = ['mrTds', 'rtmrs'] as const;
/** Fields that only DCAP quotes (SGX or TDX) can show. */
const DCAP_ONLY = ['acceptedTcbStatuses'] as const;
const RTMR_INDEXES = ['0', '1', '2', '3'] as const;
const TCB_FIELDS = ['bootloader', 'tee', 'snp', 'microcode', 'fmc'] as const;

function invalid(field: string, state: string): never {
  throw new AttestationError('ERR_POLICY_INVALID', `Cannot parse policy: ${field} ${state}`, { field });
}

function integer(field: string, value: unknown, max: number): number {
  // TOML and CBOR decoders may give big integers as bigint.
  const n = typeof value === 'bigint' && value >= 0n && value <= BigInt(max) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max)
    invalid(field, `must be an integer in 0..${max}`);
  return n;
}

function hexString(field: string, value: unknown, bytes: number): string {
  if (typeof value !== 'string' || value.length !== bytes * 2 || tryFromHex(value) === undefined) {
    invalid(field, `must be ${bytes * 2} hex digits`);
  }
  return value.toLowerCase();
}

function hexList(field: string, value: unknown, bytes: number): readonly string[] {
  if (!Array.isArray(value)) invalid(field, 'must be a list of hex strings');
  // An empty allow-list would refuse everything; that is never what a policy author meant.
  if (value.length === 0) invalid(field, 'must not be empty (leave the field out to allow any value)');
  return Object.freeze(value.map((v, i) => hexString(`${field}[${i}]`, v, bytes)));
}

function boolean(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') invalid(field, 'must be true or false');
  return value;
}

/**
 * Checks and normalises a policy from a JSON or TOML object (or a {@link Policy} already built in code):
 * hex strings are lower-cased, `reportData` becomes bytes (from 128 hex digits or a Uint8Array), and the
 * result is frozen. An unknown field fails with ERR_POLICY_UNSUPPORTED, a malformed value with
 * ERR_POLICY_INVALID, so a typo never silently weakens a policy.
 */
export function parsePolicy(json: unknown): Policy {
  if (!isRecord(json)) invalid('policy', 'must be an object');
  const key = unknownKey(json, FIELDS);
  if (key !== undefined) {
    throw new AttestationError('ERR_POLICY_UNSUPPORTED', `Cannot parse policy: unknown field ${key}`, {
      field: key,
    });
  }
  const policy: Policy = {};
  const v = json;
  if (v.measurements !== undefined) policy.measurements = hexList('measurements', v.measurements, 48);
  if (v.reportData !== undefined) {
    const rd = v.reportData;
    if (rd instanceof Uint8Array) {
      if (rd.byteLength !== 64) invalid('reportData', 'must be 64 bytes');
      policy.reportData = rd.slice();
    } else {
      policy.reportData = tryFromHex(hexString('reportData', rd, 64))!;
    }
  }
  if (v.allowDebug !== undefined) policy.allowDebug = boolean('allowDebug', v.allowDebug);
  if (v.allowMigrationAgent !== undefined) {
    policy.allowMigrationAgent = boolean('allowMigrationAgent', v.allowMigrationAgent);
  }
  if (v.minTcb !== undefined) {
    const t = v.minTcb;
    if (!isRecord(t)) invalid('minTcb', 'must be an object');
    const min: MinTcb = {};
    for (const key of Object.keys(t)) {
      if (!(TCB_FIELDS as readonly string[]).includes(key)) {
        throw new AttestationError(
          'ERR_POLICY_UNSUPPORTED',
          `Cannot parse policy: unknown field minTcb.${key}`,
          {
            field: `minTcb.${key}`,
          },
        );
      }
    }
    for (const key of TCB_FIELDS) {
      if (t[key] !== undefined) min[key] = integer(`minTcb.${key}`, t[key], 255);
    }
    policy.minTcb = Object.freeze(min);
  }
  if (v.minGuestSvn !== undefined) policy.minGuestSvn = integer('minGuestSvn', v.minGuestSvn, 0xffffffff);
  if (v.vmpl !== undefined) policy.vmpl = integer('vmpl', v.vmpl, 3);
  if (v.hostData !== undefined) policy.hostData = hexString('hostData', v.hostData, 32);
  if (v.idKeyDigests !== undefined) policy.idKeyDigests = hexList('idKeyDigests', v.idKeyDigests, 48);
  if (v.authorKeyDigests !== undefined)
    policy.authorKeyDigests = hexList('authorKeyDigests', v.authorKeyDigests, 48);
  if (v.trustSimulatedRoots !== undefined) {
    policy.trustSimulatedRoots = hexList('trustSimulatedRoots', v.trustSimulatedRoots, 32);
  }
  if (v.mrEnclaves !== undefined) policy.mrEnclaves = hexList('mrEnclaves', v.mrEnclaves, 32);
  if (v.mrSigners !== undefined) policy.mrSigners = hexList('mrSigners', v.mrSigners, 32);
  if (v.minIsvSvn !== undefined) policy.minIsvSvn = integer('minIsvSvn', v.minIsvSvn, 0xffff);
  if (v.mrTds !== undefined) policy.mrTds = hexList('mrTds', v.mrTds, 48);
  if (v.rtmrs !== undefined) {
    const r = v.rtmrs;
    if (!isRecord(r)) invalid('rtmrs', 'must be an object from RTMR index (0 to 3) to allowed values');
    const out: RtmrPolicy = {};
    for (const key of Object.keys(r)) {
      if (!(RTMR_INDEXES as readonly string[]).includes(key)) {
        throw new AttestationError(
          'ERR_POLICY_UNSUPPORTED',
          `Cannot parse policy: unknown field rtmrs.${key} (RTMRs are 0 to 3)`,
          {
            field: `rtmrs.${key}`,
          },
        );
      }
    }
    for (const key of RTMR_INDEXES) {
      if (r[key] !== undefined) out[key] = hexList(`rtmrs.${key}`, r[key], 48);
    }
    if (Object.keys(out).length === 0)
      invalid('rtmrs', 'must name at least one RTMR (leave the field out to allow any)');
    policy.rtmrs = Object.freeze(out);
  }
  if (v.acceptedTcbStatuses !== undefined) {
    const list = v.acceptedTcbStatuses;
    if (!Array.isArray(list) || list.length === 0)
      invalid('acceptedTcbStatuses', 'must be a non-empty list of TCB statuses');
    const out: TcbStatus[] = [];
    for (const [i, s] of list.entries()) {
      if (typeof s !== 'string' || !(tcbStatuses as readonly string[]).includes(s)) {
        invalid(`acceptedTcbStatuses[${i}]`, `must be one of ${tcbStatuses.join(', ')}`);
      }
      if (out.includes(s as TcbStatus)) invalid(`acceptedTcbStatuses[${i}]`, `repeats ${s}`);
      out.push(s as TcbStatus);
    }
    policy.acceptedTcbStatuses = Object.freeze(out);
  }
  if (v.requireCollateral !== undefined)
    policy.requireCollateral = boolean('requireCollateral', v.requireCollateral);
  return Object.freeze(policy);
}

function unsupportedFields(policy: Policy, fields: readonly (keyof Policy)[], kind: string): void {
  for (const field of fields) {
    if (policy[field] !== undefined) {
      throw new AttestationError(
        'ERR_POLICY_UNSUPPORTED',
        `Cannot check ${field}: ${kind} evidence does not show it`,
        { field },
      );
    }
  }
}

function violation(field: string, message: string, value?: string): never {
  throw new AttestationError(
    'ERR_POLICY_VIOLATION',
    message,
    value === undefined ? { field } : { field, value },
  );
}

/**
 * Enforces every field of a parsed policy on a verified SEV-SNP report. Fails with
 * ERR_POLICY_VIOLATION (or ERR_REPORT_DATA_MISMATCH for `reportData`), with `field` naming the policy
 * field, or ERR_POLICY_UNSUPPORTED when a field cannot be checked on this report (`minTcb.fmc` on a
 * pre-Turin TCB; the SGX/TDX fields). `requireCollateral` needs a checked ARK CRL (`crlChecked`).
 * `trustSimulatedRoots` is applied when choosing roots, not here.
 */
export function checkSnpPolicy(verified: SnpVerified, policy: Policy): void {
  unsupportedFields(policy, [...SGX_ONLY, ...TDX_ONLY, ...DCAP_ONLY], 'SEV-SNP');
  const r = verified.report;
  if (policy.requireCollateral === true && !verified.crlChecked) {
    violation(
      'requireCollateral',
      'Cannot accept evidence: no CRL of its ARK was checked and the policy requires collateral',
    );
  }
  if (policy.reportData !== undefined && !equalBytes(policy.reportData, r.reportData)) {
    throw new AttestationError(
      'ERR_REPORT_DATA_MISMATCH',
      'Cannot accept evidence: REPORT_DATA is not the expected value',
      {
        field: 'reportData',
      },
    );
  }
  if (r.debug && policy.allowDebug !== true) {
    violation(
      'allowDebug',
      'Cannot accept evidence: the guest policy allows debugging and the policy does not',
    );
  }
  if (r.migrateMa && policy.allowMigrationAgent !== true) {
    violation(
      'allowMigrationAgent',
      'Cannot accept evidence: the guest may use a migration agent and the policy does not allow it',
    );
  }
  const measurement = toHex(r.measurement);
  if (policy.measurements !== undefined && !policy.measurements.includes(measurement)) {
    violation(
      'measurements',
      `Cannot accept evidence: measurement ${measurement} is not allowed`,
      measurement,
    );
  }
  if (policy.minTcb !== undefined) {
    for (const c of TCB_FIELDS) {
      const min = policy.minTcb[c];
      if (min === undefined) continue;
      const actual = r.reportedTcb[c];
      if (actual === undefined) {
        throw new AttestationError(
          'ERR_POLICY_UNSUPPORTED',
          `Cannot check minTcb.${c}: this report's TCB has no ${c} component`,
          { field: `minTcb.${c}` },
        );
      }
      if (actual < min)
        violation(`minTcb.${c}`, `Cannot accept evidence: TCB ${c} ${actual} is below ${min}`);
    }
  }
  if (policy.minGuestSvn !== undefined && r.guestSvn < policy.minGuestSvn) {
    violation(
      'minGuestSvn',
      `Cannot accept evidence: GUEST_SVN ${r.guestSvn} is below ${policy.minGuestSvn}`,
    );
  }
  if (policy.vmpl !== undefined && r.vmpl !== policy.vmpl) {
    violation('vmpl', `Cannot accept evidence: VMPL ${r.vmpl} is not ${policy.vmpl}`);
  }
  if (policy.hostData !== undefined && toHex(r.hostData) !== policy.hostData) {
    violation('hostData', 'Cannot accept evidence: HOST_DATA is not the expected value');
  }
  if (policy.idKeyDigests !== undefined && !policy.idKeyDigests.includes(toHex(r.idKeyDigest))) {
    violation('idKeyDigests', `Cannot accept evidence: ID key digest ${toHex(r.idKeyDigest)} is not allowed`);
  }
  if (policy.authorKeyDigests !== undefined) {
    if (!r.authorKeyEn) violation('authorKeyDigests', 'Cannot accept evidence: the report has no author key');
    if (!policy.authorKeyDigests.includes(toHex(r.authorKeyDigest))) {
      violation(
        'authorKeyDigests',
        `Cannot accept evidence: author key digest ${toHex(r.authorKeyDigest)} is not allowed`,
      );
    }
  }
}

/**
 * Enforces every field of a parsed policy on a verified DCAP quote. Fails with ERR_POLICY_VIOLATION
 * (field named), ERR_REPORT_DATA_MISMATCH, ERR_TCB_STATUS (a checked TCB status outside
 * `acceptedTcbStatuses`, default `['UpToDate']`), or ERR_POLICY_UNSUPPORTED for a field this quote kind
 * cannot show (SEV-SNP fields; SGX fields on TDX and the reverse).
 */
export function checkDcapPolicy(verified: DcapVerified, policy: Policy): void {
  const q = verified.quote;
  unsupportedFields(policy, [...SNP_ONLY, ...(q.kind === 'sgx' ? TDX_ONLY : SGX_ONLY)], q.kind.toUpperCase());
  if (policy.reportData !== undefined && !equalBytes(policy.reportData, q.body.reportData)) {
    throw new AttestationError(
      'ERR_REPORT_DATA_MISMATCH',
      'Cannot accept evidence: REPORTDATA is not the expected value',
      {
        field: 'reportData',
      },
    );
  }
  if (q.body.debug && policy.allowDebug !== true) {
    violation(
      'allowDebug',
      `Cannot accept evidence: the ${q.kind === 'sgx' ? 'enclave' : 'TD'} runs in debug mode and the policy does not allow it`,
    );
  }
  if (!verified.collateralChecked) {
    if (policy.requireCollateral === true) {
      violation(
        'requireCollateral',
        'Cannot accept evidence: it was verified without collateral and the policy requires collateral',
      );
    }
  } else {
    const accepted = policy.acceptedTcbStatuses ?? ['UpToDate'];
    const status = verified.tcb?.status;
    if (status === undefined || !accepted.includes(status)) {
      const advisories = verified.tcb?.advisoryIds.length ? ` (${verified.tcb.advisoryIds.join(', ')})` : '';
      throw new AttestationError(
        'ERR_TCB_STATUS',
        `Cannot accept evidence: its TCB status ${status ?? 'unknown'}${advisories} is not one of ${accepted.join(', ')}`,
        { field: 'acceptedTcbStatuses' },
      );
    }
  }
  if (q.kind === 'sgx') {
    const b = q.body;
    if (policy.mrEnclaves !== undefined && !policy.mrEnclaves.includes(toHex(b.mrEnclave))) {
      violation(
        'mrEnclaves',
        `Cannot accept evidence: MRENCLAVE ${toHex(b.mrEnclave)} is not allowed`,
        toHex(b.mrEnclave),
      );
    }
    if (policy.mrSigners !== undefined && !policy.mrSigners.includes(toHex(b.mrSigner))) {
      violation('mrSigners', `Cannot accept evidence: MRSIGNER ${toHex(b.mrSigner)} is not allowed`);
    }
    if (policy.minIsvSvn !== undefined && b.isvSvn < policy.minIsvSvn) {
      violation('minIsvSvn', `Cannot accept evidence: ISVSVN ${b.isvSvn} is below ${policy.minIsvSvn}`);
    }
    return;
  }
  const b = q.body;
  if (policy.mrTds !== undefined && !policy.mrTds.includes(toHex(b.mrTd))) {
    violation('mrTds', `Cannot accept evidence: MRTD ${toHex(b.mrTd)} is not allowed`);
  }
  if (policy.rtmrs !== undefined) {
    for (const i of RTMR_INDEXES) {
      const allowed = policy.rtmrs[i];
      const actual = toHex(b.rtmrs[Number(i)]!);
      if (allowed !== undefined && !allowed.includes(actual)) {
        violation(`rtmrs.${i}`, `Cannot accept evidence: RTMR${i} ${actual} is not allowed`);
      }
    }
  }
}
