import { type CodeRegistry, DonjonError } from '../lib/errors.ts';

/**
 * Stable error codes of the attestation library, each with its category: evidence that fails to verify, or
 * claims a policy refuses, is `refused`; a malformed policy or simulated-root file given by the caller is
 * `usage`. A caller can `switch (err.code)` and narrow on them; the codes are part of the public contract
 * and never change meaning.
 */
export const ATTESTATION_ERRORS = {
  /** Evidence (report, certificate, quote) bytes do not follow their format. */
  ERR_EVIDENCE_MALFORMED: 'refused',
  /** Evidence is well formed but of a kind, version or algorithm this verifier does not handle. */
  ERR_EVIDENCE_UNSUPPORTED: 'refused',
  /** The evidence signature does not verify under the endorsement key. */
  ERR_SIGNATURE_INVALID: 'refused',
  /** The certificate chain is incomplete, mis-ordered, mis-signed or has the wrong shape. */
  ERR_CHAIN_INVALID: 'refused',
  /** The chain ends in a root that is not pinned. */
  ERR_ROOT_UNTRUSTED: 'refused',
  /** The chain ends in a simulated root (AMD or Intel) whose fingerprint the caller did not opt into. */
  ERR_SIMULATED_ROOT_NOT_TRUSTED: 'refused',
  /** A certificate is not valid at the verification time (expired or not yet valid). */
  ERR_CERT_EXPIRED: 'refused',
  /** The endorsement key certificate was issued for another TCB than the one in the report. */
  ERR_TCB_MISMATCH: 'refused',
  /** The endorsement key certificate belongs to another chip than the one in the report. */
  ERR_CHIP_ID_MISMATCH: 'refused',
  /** REPORT_DATA differs from what the policy expects (freshness or key binding broken). */
  ERR_REPORT_DATA_MISMATCH: 'refused',
  /** A claim does not satisfy the policy. */
  ERR_POLICY_VIOLATION: 'refused',
  /** The policy names a field this verifier does not know or cannot check on this evidence. */
  ERR_POLICY_UNSUPPORTED: 'refused',
  /** A policy field has a value of the wrong type or shape. */
  ERR_POLICY_INVALID: 'usage',
  /** Stored simulated-root material is malformed or inconsistent. */
  ERR_SIM_ROOT_INVALID: 'usage',
  /** Collateral (CRL, TCB info, QE identity, their issuer chains) is malformed, mis-signed or for other evidence. */
  ERR_COLLATERAL_INVALID: 'refused',
  /** Collateral is not valid at the verification time (past its next update, or issued later). */
  ERR_COLLATERAL_EXPIRED: 'refused',
  /** A certificate of the chain is listed in its issuer's CRL. */
  ERR_REVOKED: 'refused',
  /** The TCB info describes another platform (FMSPC or PCE-ID) than the PCK certificate. */
  ERR_FMSPC_MISMATCH: 'refused',
  /** The quoting enclave is not the one Intel's QE identity describes. */
  ERR_QE_IDENTITY_MISMATCH: 'refused',
  /** The TDX module (MRSIGNERSEAM, SEAMATTRIBUTES, version) is not one the TCB info describes. */
  ERR_TDX_MODULE_MISMATCH: 'refused',
  /** No TCB level of the collateral applies to the platform: its status is unknown. */
  ERR_TCB_NOT_SUPPORTED: 'refused',
  /** The TCB status the collateral gives is not one the policy accepts. */
  ERR_TCB_STATUS: 'refused',
} as const satisfies CodeRegistry;

/** A code of {@link ATTESTATION_ERRORS}. */
export type AttestationErrorCode = keyof typeof ATTESTATION_ERRORS;

/** Every code of {@link AttestationErrorCode}, for registries and exhaustiveness tests. */
export const attestationErrorCodes = Object.keys(ATTESTATION_ERRORS) as readonly AttestationErrorCode[];

/**
 * The one error class of the attestation library: every failure of parsing, verification or policy
 * checking is an `AttestationError` with a stable {@link AttestationErrorCode}.
 *
 * `field` names the policy field (e.g. `measurements`, `minTcb.snp`) when the error is about one, so a
 * caller can tell the user which expectation failed without parsing the message.
 */
export class AttestationError extends DonjonError<AttestationErrorCode> {
  override readonly name = 'AttestationError';
  declare readonly field?: string;
  /**
   * The value the error is about, as lower-case hex, when there is one a caller may want to name (the
   * fingerprint of a simulated root not opted into, a measurement the policy does not allow).
   */
  declare readonly value?: string;

  constructor(
    code: AttestationErrorCode,
    message: string,
    options?: { cause?: unknown; field?: string; detail?: string; value?: string },
  ) {
    super(code, ATTESTATION_ERRORS[code], message, options);
    if (options?.field !== undefined) this.field = options.field;
    if (options?.value !== undefined) this.value = options.value;
  }
}

/** Whether `value` is an {@link AttestationError}, optionally with the given code. */
export function isAttestationError(value: unknown, code?: AttestationErrorCode): value is AttestationError {
  return value instanceof AttestationError && (code === undefined || value.code === code);
}
