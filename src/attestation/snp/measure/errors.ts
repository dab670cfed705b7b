import { type CodeRegistry, DonjonError, type DonjonErrorOptions } from '../../../lib/errors.ts';

/**
 * Stable codes of the SEV-SNP launch-digest computation (`usage`: the firmware image given cannot be measured). A caller can `switch (err.code)` on them; they never
 * change meaning.
 */
export const SNP_MEASURE_ERRORS = {
  /** The firmware image does not follow the OVMF footer table or SEV metadata layout. */
  ERR_OVMF_MALFORMED: 'usage',
  /** The firmware image is well formed but lacks what an SNP launch needs, or declares something unknown. */
  ERR_OVMF_UNSUPPORTED: 'usage',
} as const satisfies CodeRegistry;

/** A code of {@link SNP_MEASURE_ERRORS}. */
export type SnpMeasureErrorCode = keyof typeof SNP_MEASURE_ERRORS;

/** Every code of {@link SnpMeasureErrorCode}, for registries and exhaustiveness tests. */
export const snpMeasureErrorCodes = Object.keys(SNP_MEASURE_ERRORS) as readonly SnpMeasureErrorCode[];

/**
 * The one error class of the launch-digest computation: a firmware image that cannot be measured fails with
 * a stable {@link SnpMeasureErrorCode}, so a wrong digest is never printed for an image we do not understand.
 */
export class SnpMeasureError extends DonjonError<SnpMeasureErrorCode> {
  override readonly name = 'SnpMeasureError';

  constructor(code: SnpMeasureErrorCode, message: string, options?: DonjonErrorOptions) {
    super(code, SNP_MEASURE_ERRORS[code], message, options);
  }
}

/** Whether `value` is an {@link SnpMeasureError}, optionally with the given code. */
export function isSnpMeasureError(value: unknown, code?: SnpMeasureErrorCode): value is SnpMeasureError {
  return value instanceof SnpMeasureError && (code === undefined || value.code === code);
}
