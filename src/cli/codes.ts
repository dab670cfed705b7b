import type { CodeRegistry } from '../lib/errors.ts';

/**
 * Codes the donjon command itself reports (beside those of the libraries it calls), each with its
 * category. An interruption is the user's own doing (`usage`), but ends with 130 as a shell expects of
 * Ctrl-C (see exitStatusOf).
 */
export const cliErrors = {
  ERR_USAGE: 'usage',
  ERR_INTERRUPTED: 'usage',
  ERR_INTERNAL: 'internal',
} as const satisfies CodeRegistry;

/** A code of {@link cliErrors}. */
export type CliErrorCode = keyof typeof cliErrors;

/** Every code of {@link cliErrors}. */
export const cliErrorCodes = Object.keys(cliErrors) as CliErrorCode[];
