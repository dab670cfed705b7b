/**
 * The one error base of Donjon. Every area (attestation, protocol, ratls, wasi, keep, host, client, cli, …)
 * declares its codes once, each with a category, and one class that extends {@link DonjonError}. What a
 * caller needs follows from the error itself, never from its class name or its message text:
 *
 * - `code`: stable, documented, switchable (`switch (err.code)` narrows on the area's union);
 * - `category`: who can act on it: the caller's input (`usage`), a verification that said no (`refused`),
 *   the host or a peer that failed (`host`), or a bug here (`internal`). Exit statuses and HTTP statuses
 *   follow from it;
 * - `detail`: the reason alone, without the "Cannot <action>" that leads the message, for a caller that
 *   words its own sentence around it ("Cannot use policy p.json: <detail>").
 *
 * Messages are in one voice: "Cannot <action>: <state>", sentence case, no trailing period.
 */

/** Who can act on an error. */
export type ErrorCategory = 'usage' | 'refused' | 'host' | 'internal';

/** Every category, in the order of {@link ErrorCategory}. */
export const errorCategories: readonly ErrorCategory[] = ['usage', 'refused', 'host', 'internal'];

/** An area's registry: each code with its category (and anything else the area attaches, e.g. a status). */
export type CodeRegistry<C extends string = string> = { readonly [K in C]: ErrorCategory };

/** Options every Donjon error takes. */
export interface DonjonErrorOptions {
  /** The error this one explains; always passed on. */
  cause?: unknown;
  /**
   * The reason alone. Default: what follows the first ": " of a message in the house voice
   * ("Cannot <action>: <detail>"), or the whole message.
   */
  detail?: string;
}

/** The reason part of a message in the house voice, or the message itself. */
function detailOf(message: string): string {
  if (!message.startsWith('Cannot ')) return message;
  const at = message.indexOf(': ');
  return at === -1 ? message : message.slice(at + 2);
}

/**
 * The base class of every error Donjon throws on purpose. Subclasses set `name` themselves (a bundler may
 * rename classes).
 */
export class DonjonError<C extends string = string> extends Error {
  /** Stable, documented code; the message text may change, the code does not. */
  readonly code: C;
  /** Who can act on it; exit statuses and HTTP statuses follow from it. */
  readonly category: ErrorCategory;
  /** The reason without the leading "Cannot <action>". */
  readonly detail: string;

  constructor(code: C, category: ErrorCategory, message: string, options: DonjonErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.category = category;
    this.detail = options.detail ?? detailOf(message);
  }
}

/** Whether `value` is a Donjon error, optionally with the given code. */
export function isDonjonError(value: unknown, code?: string): value is DonjonError {
  return value instanceof DonjonError && (code === undefined || value.code === code);
}

/**
 * The reason of any thrown value, for a sentence of the caller's own: a Donjon error's `detail`, another
 * error's message, or the value as text.
 */
export function reasonOf(error: unknown): string {
  if (error instanceof DonjonError) return error.detail;
  if (error instanceof Error) return error.message;
  return String(error);
}

/** The category of any thrown value: a Donjon error's own; anything else is a bug here (`internal`). */
export function categoryOf(error: unknown): ErrorCategory {
  return error instanceof DonjonError ? error.category : 'internal';
}
