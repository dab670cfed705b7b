import { type CodeRegistry, DonjonError, type DonjonErrorOptions } from '../lib/errors.ts';

/** What the broker says about one code: who can act on it, the HTTP status and the KBS problem type it answers with. */
export interface BrokerCodeInfo {
  category: 'usage' | 'refused' | 'host' | 'internal';
  /** The HTTP status the broker answers with (0: the code is the Keep-side client's own, never sent). */
  status: number;
  /** The RFC 7807 problem type of Trustee's KBS the answer carries (its `type` ends in this). */
  problem: string;
}

/**
 * Stable codes of the key broker, server and clients alike, each with its category, HTTP status and the KBS
 * problem type (Trustee's `kbs/src/error.rs` names) that a KBS client recognises.
 */
export const BROKER_ERRORS = {
  /** The request is not what the protocol or the admin API takes (shape, version, size, path). */
  ERR_BROKER_REQUEST_INVALID: { category: 'usage', status: 400, problem: 'SerdeError' },
  /** The evidence kind is not one the broker appraises (`nil`, `sample`, `sgx`, ...). */
  ERR_BROKER_TEE_UNSUPPORTED: { category: 'refused', status: 401, problem: 'AttestationError' },
  /** No open challenge for this session: unknown, expired, or already answered (nonces are single-use). */
  ERR_BROKER_NONCE_INVALID: { category: 'refused', status: 401, problem: 'AttestationError' },
  /** The evidence did not verify, or its report_data does not bind this runtime data. */
  ERR_BROKER_EVIDENCE_REFUSED: { category: 'refused', status: 401, problem: 'AttestationError' },
  /** No valid attestation token or session: missing, expired, forged, or bound to another key. */
  ERR_BROKER_TOKEN_INVALID: { category: 'refused', status: 401, problem: 'TokenVerifierError' },
  /** The policy releases no such secret to this Keep (also what the Keep's workload start fails with). */
  ERR_SECRET_DENIED: { category: 'refused', status: 403, problem: 'PolicyDeny' },
  /** The policy would release it, but the broker holds no secret of that name. */
  ERR_SECRET_NOT_FOUND: { category: 'usage', status: 404, problem: 'ResourceNotFound' },
  /** No such path on the broker. */
  ERR_BROKER_NOT_FOUND: { category: 'usage', status: 404, problem: 'InvalidRequestPath' },
  /** The admin token is missing or unknown. */
  ERR_BROKER_ADMIN_UNAUTHORIZED: { category: 'refused', status: 401, problem: 'AdminAuth' },
  /** A policy that cannot be parsed: unknown keys, wrong types, malformed digests. */
  ERR_BROKER_POLICY_INVALID: { category: 'usage', status: 400, problem: 'PolicyEngine' },
  /** The broker's state directory cannot be used (key file readable by others, unreadable database). */
  ERR_BROKER_STATE_INVALID: { category: 'host', status: 500, problem: 'PluginInternalError' },
  /** The broker could not be reached, or broke off (the Keep-side and admin clients' own code). */
  ERR_BROKER_UNREACHABLE: { category: 'host', status: 0, problem: '' },
  /** The broker's certificate is not the pinned one: nothing was sent to it. */
  ERR_BROKER_UNTRUSTED: { category: 'refused', status: 0, problem: '' },
  /** The broker answered with something the protocol does not allow (the clients' own code). */
  ERR_BROKER_RESPONSE_INVALID: { category: 'host', status: 0, problem: '' },
} as const satisfies Record<string, BrokerCodeInfo>;

/** A code of {@link BROKER_ERRORS}. */
export type BrokerErrorCode = keyof typeof BROKER_ERRORS;

/** Every code of {@link BROKER_ERRORS}. */
export const brokerErrorCodes = Object.keys(BROKER_ERRORS) as readonly BrokerErrorCode[];

/** The categories of {@link BROKER_ERRORS}, as the house's registry shape. */
export const BROKER_CATEGORIES = Object.fromEntries(
  brokerErrorCodes.map((c) => [c, BROKER_ERRORS[c].category]),
) as CodeRegistry<BrokerErrorCode>;

/** The namespace of the KBS problem types (an identifier, not a link). */
export const KBS_PROBLEM_BASE = 'https://github.com/confidential-containers/kbs/errors/';

/** Raised by the broker and its clients; the code says what happened, the category who can act on it. */
export class BrokerError extends DonjonError<BrokerErrorCode> {
  override readonly name = 'BrokerError';

  constructor(code: BrokerErrorCode, message: string, options?: DonjonErrorOptions) {
    super(code, BROKER_ERRORS[code].category, message, options);
  }

  /** The HTTP status the broker answers this error with. */
  get status(): number {
    return BROKER_ERRORS[this.code].status || 500;
  }
}

/** Whether `value` is a {@link BrokerError}, optionally with the given code. */
export function isBrokerError(value: unknown, code?: BrokerErrorCode): value is BrokerError {
  return value instanceof BrokerError && (code === undefined || value.code === code);
}
