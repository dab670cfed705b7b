/**
 * Stable codes of the SEV-SNP launch-digest computation. A caller can `switch (err.code)` on them; they never
 * change meaning.
 */
export type SnpMeasureErrorCode =
  /** The firmware image does not follow the OVMF footer table or SEV metadata layout. */
  | 'ERR_OVMF_MALFORMED'
  /** The firmware image is well formed but lacks what an SNP launch needs, or declares something unknown. */
  | 'ERR_OVMF_UNSUPPORTED';

/** Every code of {@link SnpMeasureErrorCode}, for registries and exhaustiveness tests. */
export const snpMeasureErrorCodes: readonly SnpMeasureErrorCode[] = [
  'ERR_OVMF_MALFORMED',
  'ERR_OVMF_UNSUPPORTED',
];

/**
 * The one error class of the launch-digest computation: a firmware image that cannot be measured fails with
 * a stable {@link SnpMeasureErrorCode}, so a wrong digest is never printed for an image we do not understand.
 */
export class SnpMeasureError extends Error {
  readonly code: SnpMeasureErrorCode;

  constructor(code: SnpMeasureErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SnpMeasureError';
    this.code = code;
  }
}

/** Whether `value` is an {@link SnpMeasureError}, optionally with the given code. */
export function isSnpMeasureError(value: unknown, code?: SnpMeasureErrorCode): value is SnpMeasureError {
  return value instanceof SnpMeasureError && (code === undefined || value.code === code);
}
