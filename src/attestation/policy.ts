// Appraisal policy: what a tenant requires of verified evidence. Every field a policy names is enforced,
// and a field the verifier does not know, or cannot check on the evidence at hand, is an error rather
// than a pass.
import { equalBytes, toHex, tryFromHex } from './bytes.ts';
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

/** What a tenant requires of the evidence. Absent fields impose nothing, except the safe defaults noted. */
export interface Policy {
  /** Allowed launch measurements (96 hex digits, any case); absent means any. */
  measurements?: readonly string[];
  /** Exact expected REPORT_DATA (64 bytes): binds the Keep's key and the client's nonce. */
  reportData?: Uint8Array;
  /** Default false: a guest whose policy lets the host debug it is refused. */
  allowDebug?: boolean;
  /** Default false: a guest that may be associated with a migration agent is refused. */
  allowMigrationAgent?: boolean;
  /** Minimum REPORTED_TCB components. `fmc` exists only on Turin and later. */
  minTcb?: MinTcb;
  /** Minimum GUEST_SVN. */
  minGuestSvn?: number;
  /** Required VMPL (0..3). */
  vmpl?: number;
  /** Exact HOST_DATA (64 hex digits, any case). */
  hostData?: string;
  /** Allowed ID_KEY_DIGESTs (96 hex digits each). */
  idKeyDigests?: readonly string[];
  /** Allowed AUTHOR_KEY_DIGESTs (96 hex digits each); requires AUTHOR_KEY_EN. */
  authorKeyDigests?: readonly string[];
  /** SHA-256 fingerprints (64 hex digits) of simulated ARKs this policy opts into. */
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
] as const;
const TCB_FIELDS = ['bootloader', 'tee', 'snp', 'microcode', 'fmc'] as const;

function invalid(field: string, state: string): never {
  throw new AttestationError('ERR_POLICY_INVALID', `Cannot parse policy: ${field} ${state}`, { field });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array)
    return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
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
  for (const key of Object.keys(json)) {
    if (!(FIELDS as readonly string[]).includes(key)) {
      throw new AttestationError('ERR_POLICY_UNSUPPORTED', `Cannot parse policy: unknown field ${key}`, {
        field: key,
      });
    }
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
  return Object.freeze(policy);
}

function violation(field: string, message: string): never {
  throw new AttestationError('ERR_POLICY_VIOLATION', message, { field });
}

/**
 * Enforces every field of a parsed policy on a verified SEV-SNP report. Fails with
 * ERR_POLICY_VIOLATION (or ERR_REPORT_DATA_MISMATCH for `reportData`), with `field` naming the policy
 * field, or ERR_POLICY_UNSUPPORTED when a field cannot be checked on this report (e.g. `minTcb.fmc` on a
 * pre-Turin TCB). `trustSimulatedRoots` is applied when choosing roots, not here.
 */
export function checkSnpPolicy(verified: SnpVerified, policy: Policy): void {
  const r = verified.report;
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
    violation('measurements', `Cannot accept evidence: measurement ${measurement} is not allowed`);
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
