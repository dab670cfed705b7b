import { type CodeRegistry, DonjonError } from '../lib/errors.ts';

/**
 * Stable codes of the Kubernetes manifest generator (`donjon kube manifest`), each with its category. Every
 * refusal of an input is `usage` (exit 2): the caller can fix it; a generated object that breaks the
 * generator's own rules is a bug here (`internal`).
 */
export const KUBE_ERRORS = {
  /** A reference or an image without a `@sha256:` digest: a Pod must run exactly what was verified. */
  ERR_KUBE_DIGEST_REQUIRED: 'usage',
  /** A name or namespace that is not an RFC 1123 (for names RFC 1035) label. */
  ERR_KUBE_NAME_INVALID: 'usage',
  /** An input that would put a private key or another tenant secret into a manifest. */
  ERR_KUBE_SECRET_INPUT: 'usage',
  /** An Enarx.toml a Pod cannot serve: no listen file, a port 0, a clash with the health port, ... */
  ERR_KUBE_CONFIG_UNSUPPORTED: 'usage',
  /** A generated object broke one of the generator's own rules (a bug: please report it). */
  ERR_KUBE_RULE_BROKEN: 'internal',
} as const satisfies CodeRegistry;

/** A code of {@link KUBE_ERRORS}. */
export type KubeErrorCode = keyof typeof KUBE_ERRORS;

/** Every {@link KubeErrorCode}. */
export const kubeErrorCodes = Object.keys(KUBE_ERRORS) as readonly KubeErrorCode[];

/** The one error class of `src/kube`. */
export class KubeError extends DonjonError<KubeErrorCode> {
  override readonly name = 'KubeError';
  constructor(code: KubeErrorCode, message: string, options?: { cause?: unknown; detail?: string }) {
    super(code, KUBE_ERRORS[code], message, options);
  }
}
