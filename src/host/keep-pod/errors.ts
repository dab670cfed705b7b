import { type CodeRegistry, DonjonError } from '../../lib/errors.ts';

/**
 * What ends `donjon keep-pod`, the container entrypoint of one service replica, each with its category (the
 * exit status follows from it: Kubernetes restarts the container whatever non-zero status it ends with).
 * A registry's own refusals (a signature that does not verify: `ERR_WORKLOAD_SIGNATURE_INVALID`) keep their
 * registry code.
 */
export const KEEPPOD_ERRORS = {
  /** The workload reference is not pinned to a manifest digest (`REF@sha256:...`). */
  ERR_POD_REFERENCE_UNPINNED: 'usage',
  /** A public input (the Enarx.toml, a verifying key, the simulated root) cannot be read or is not valid. */
  ERR_POD_INPUT_INVALID: 'usage',
  /** The health address (`--health-listen`) or the state folder could not be used. */
  ERR_POD_SETUP_FAILED: 'host',
  /** The Keep Loader or the Keep did not start, the Keep refused the deploy, or either ended unexpectedly. */
  ERR_POD_KEEP_FAILED: 'host',
} as const satisfies CodeRegistry;

/** A code of {@link KEEPPOD_ERRORS}. */
export type KeepPodErrorCode = keyof typeof KEEPPOD_ERRORS;

/** Every {@link KeepPodErrorCode}. */
export const keepPodErrorCodes = Object.keys(KEEPPOD_ERRORS) as readonly KeepPodErrorCode[];

/** The error class of `donjon keep-pod`; its category follows from the code. */
export class KeepPodError extends DonjonError<KeepPodErrorCode> {
  override readonly name = 'KeepPodError';

  constructor(code: KeepPodErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, KEEPPOD_ERRORS[code], message, options);
  }
}
