import { type CodeRegistry, DonjonError, type DonjonErrorOptions } from '../lib/errors.ts';

/**
 * Stable error codes of the WASI host, each with its category: a module the host refuses is `usage` (the
 * caller's input); a failure of the host itself is `internal`. A caller can `switch (err.code)` and narrow on them; the codes are
 * part of the public contract and never change meaning.
 */
export const WASI_ERRORS = {
  /** The bytes are not a WebAssembly module this engine accepts (bad framing, or compilation failed). */
  ERR_WASM_INVALID: 'usage',
  /** The module is not a WASI command: it lacks a `_start` function export taking and returning nothing. */
  ERR_WASM_NOT_COMMAND: 'usage',
  /** The module imports something other than a known `wasi_snapshot_preview1` function of the right type. */
  ERR_WASM_IMPORT_UNSUPPORTED: 'usage',
  /** The module's initial linear memory is larger than the memory limit. */
  ERR_WASM_MEMORY_LIMIT: 'usage',
  /** The module uses a feature the host refuses (shared, 64-bit or multiple memories). */
  ERR_WASM_UNSUPPORTED: 'usage',
  /** `writeStdin` was called after `endStdin`, or on a run whose stdin is `'null'`. */
  ERR_WASI_STDIN_CLOSED: 'usage',
  /** The worker thread could not start, failed inside the host, or ended without a result. */
  ERR_WASI_WORKER_FAILED: 'internal',
  /** An `onStdout` or `onStderr` callback threw; the run was stopped. */
  ERR_WASI_CALLBACK_FAILED: 'internal',
} as const satisfies CodeRegistry;

/** A code of {@link WASI_ERRORS}. */
export type WasiErrorCode = keyof typeof WASI_ERRORS;

/** Every code of {@link WasiErrorCode}, for registries and exhaustiveness tests. */
export const wasiErrorCodes = Object.keys(WASI_ERRORS) as readonly WasiErrorCode[];

/**
 * The one error class of the WASI host: a module the host refuses, or a run that failed for a reason
 * that is not the workload's own doing. What the workload does (exit, trap, hitting a limit) is a
 * `WasiResult`, never an error.
 */
export class WasiError extends DonjonError<WasiErrorCode> {
  override readonly name = 'WasiError';

  constructor(code: WasiErrorCode, message: string, options?: DonjonErrorOptions) {
    super(code, WASI_ERRORS[code], message, options);
  }
}

/** Whether `value` is a {@link WasiError}, optionally with the given code. */
export function isWasiError(value: unknown, code?: WasiErrorCode): value is WasiError {
  return value instanceof WasiError && (code === undefined || value.code === code);
}
