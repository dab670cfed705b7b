/**
 * Stable error codes of the attestation library. A caller can `switch (err.code)` and narrow on them;
 * the codes are part of the public contract and never change meaning.
 */
export type AttestationErrorCode =
  /** Evidence (report, certificate, quote) bytes do not follow their format. */
  | 'ERR_EVIDENCE_MALFORMED'
  /** Evidence is well formed but of a kind, version or algorithm this verifier does not handle. */
  | 'ERR_EVIDENCE_UNSUPPORTED'
  /** The evidence signature does not verify under the endorsement key. */
  | 'ERR_SIGNATURE_INVALID'
  /** The certificate chain is incomplete, mis-ordered, mis-signed or has the wrong shape. */
  | 'ERR_CHAIN_INVALID'
  /** The chain ends in a root that is not pinned. */
  | 'ERR_ROOT_UNTRUSTED'
  /** The chain ends in a simulated root whose fingerprint the caller did not opt into. */
  | 'ERR_SIMULATED_ROOT_NOT_TRUSTED'
  /** A certificate is not valid at the verification time (expired or not yet valid). */
  | 'ERR_CERT_EXPIRED'
  /** The endorsement key certificate was issued for another TCB than the one in the report. */
  | 'ERR_TCB_MISMATCH'
  /** The endorsement key certificate belongs to another chip than the one in the report. */
  | 'ERR_CHIP_ID_MISMATCH'
  /** REPORT_DATA differs from what the policy expects (freshness or key binding broken). */
  | 'ERR_REPORT_DATA_MISMATCH'
  /** A claim does not satisfy the policy. */
  | 'ERR_POLICY_VIOLATION'
  /** The policy names a field this verifier does not know or cannot check on this evidence. */
  | 'ERR_POLICY_UNSUPPORTED'
  /** A policy field has a value of the wrong type or shape. */
  | 'ERR_POLICY_INVALID'
  /** Stored simulated-root material is malformed or inconsistent. */
  | 'ERR_SIM_ROOT_INVALID'
  /** Collateral (CRL, TCB info, QE identity, their issuer chains) is malformed, mis-signed or for other evidence. */
  | 'ERR_COLLATERAL_INVALID'
  /** Collateral is not valid at the verification time (past its next update, or issued later). */
  | 'ERR_COLLATERAL_EXPIRED'
  /** A certificate of the chain is listed in its issuer's CRL. */
  | 'ERR_REVOKED'
  /** The TCB info describes another platform (FMSPC or PCE-ID) than the PCK certificate. */
  | 'ERR_FMSPC_MISMATCH'
  /** The quoting enclave is not the one Intel's QE identity describes. */
  | 'ERR_QE_IDENTITY_MISMATCH'
  /** The TDX module (MRSIGNERSEAM, SEAMATTRIBUTES, version) is not one the TCB info describes. */
  | 'ERR_TDX_MODULE_MISMATCH'
  /** No TCB level of the collateral applies to the platform: its status is unknown. */
  | 'ERR_TCB_NOT_SUPPORTED'
  /** The TCB status the collateral gives is not one the policy accepts. */
  | 'ERR_TCB_STATUS';

/** Every code of {@link AttestationErrorCode}, for registries and exhaustiveness tests. */
export const attestationErrorCodes: readonly AttestationErrorCode[] = [
  'ERR_EVIDENCE_MALFORMED',
  'ERR_EVIDENCE_UNSUPPORTED',
  'ERR_SIGNATURE_INVALID',
  'ERR_CHAIN_INVALID',
  'ERR_ROOT_UNTRUSTED',
  'ERR_SIMULATED_ROOT_NOT_TRUSTED',
  'ERR_CERT_EXPIRED',
  'ERR_TCB_MISMATCH',
  'ERR_CHIP_ID_MISMATCH',
  'ERR_REPORT_DATA_MISMATCH',
  'ERR_POLICY_VIOLATION',
  'ERR_POLICY_UNSUPPORTED',
  'ERR_POLICY_INVALID',
  'ERR_SIM_ROOT_INVALID',
  'ERR_COLLATERAL_INVALID',
  'ERR_COLLATERAL_EXPIRED',
  'ERR_REVOKED',
  'ERR_FMSPC_MISMATCH',
  'ERR_QE_IDENTITY_MISMATCH',
  'ERR_TDX_MODULE_MISMATCH',
  'ERR_TCB_NOT_SUPPORTED',
  'ERR_TCB_STATUS',
];

/**
 * The one error class of the attestation library: every failure of parsing, verification or policy
 * checking is an `AttestationError` with a stable {@link AttestationErrorCode}.
 *
 * `field` names the policy field (e.g. `measurements`, `minTcb.snp`) when the error is about one, so a
 * caller can tell the user which expectation failed without parsing the message.
 */
export class AttestationError extends Error {
  readonly code: AttestationErrorCode;
  declare readonly field?: string;

  constructor(code: AttestationErrorCode, message: string, options?: { cause?: unknown; field?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AttestationError';
    this.code = code;
    if (options?.field !== undefined) this.field = options.field;
  }
}

/** Whether `value` is an {@link AttestationError}, optionally with the given code. */
export function isAttestationError(value: unknown, code?: AttestationErrorCode): value is AttestationError {
  return value instanceof AttestationError && (code === undefined || value.code === code);
}
