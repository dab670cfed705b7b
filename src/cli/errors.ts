/**
 * How the donjon command ends: its exit statuses, and the errors it raises itself. Every error, whichever
 * area raised it, ends the command with the status of its category (`exitStatusOf`), so the same cause
 * gives the same status in every command; docs/cli.md holds the table, and a test holds it to this file.
 */
import {
  categoryOf,
  DonjonError,
  type DonjonErrorOptions,
  type ErrorCategory,
  isDonjonError,
} from '../lib/errors.ts';
import { type CliErrorCode, cliErrors } from './codes.ts';

/** Exit statuses of the donjon command, beside a workload's own status which `run` passes through. */
export const EXIT = {
  ok: 0,
  internal: 1,
  usage: 2,
  refused: 3,
  host: 4,
  timeLimit: 124,
  trap: 134,
  limit: 137,
  interrupted: 130,
} as const;

/** The exit status of each error category. */
export const CATEGORY_EXIT: { readonly [C in ErrorCategory]: number } = {
  usage: EXIT.usage,
  refused: EXIT.refused,
  host: EXIT.host,
  internal: EXIT.internal,
};

/** The exit status an error of `category` ends the command with. */
export function exitStatusFor(category: ErrorCategory): number {
  return CATEGORY_EXIT[category];
}

/**
 * The exit status a thrown value ends the command with: 130 for an interruption, else its category's
 * (anything that is not a Donjon error is a bug here: 1).
 */
export function exitStatusOf(error: unknown): number {
  if (isDonjonError(error, 'ERR_INTERRUPTED')) return EXIT.interrupted;
  return exitStatusFor(categoryOf(error));
}

/** The host's own code an error carries (`ClientError.hostCode`), looked for along its causes. */
export function hostCodeOf(error: unknown): string | undefined {
  const seen = new Set<unknown>();
  for (let e = error; typeof e === 'object' && e !== null && !seen.has(e); e = (e as Error).cause) {
    seen.add(e);
    const code = (e as { hostCode?: unknown }).hostCode;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** An error of the donjon command itself, with one of its own codes (see codes.ts). */
export class CliError extends DonjonError<CliErrorCode> {
  override name = 'CliError';
  constructor(code: CliErrorCode, message: string, options: DonjonErrorOptions = {}) {
    super(code, cliErrors[code], message, options);
  }
}

/** A mistake in how the command was called: shown as one line, with exit status 2. */
export class UsageError extends CliError {
  override name = 'UsageError';
  constructor(message: string, options: DonjonErrorOptions = {}) {
    super('ERR_USAGE', message, options);
  }
}

/**
 * A failure the command words itself, under another area's code and category (a nil Keep refused before
 * any is created: `ERR_KEEP_NOT_ATTESTED`, refused). `hostCode` is kept when the cause carried one.
 */
export class CommandError extends DonjonError {
  override readonly name = 'CommandError';
  readonly hostCode: string | undefined;
  constructor(code: string, category: ErrorCategory, message: string, options: DonjonErrorOptions = {}) {
    super(code, category, message, options);
    this.hostCode = hostCodeOf(options.cause);
  }

  /** `error` worded anew, keeping its code, category and host code; `error` becomes the cause. */
  static rephrase(error: unknown, message: string): CommandError {
    const code = isDonjonError(error) ? error.code : 'ERR_INTERNAL';
    return new CommandError(code, categoryOf(error), message, { cause: error });
  }
}
