/**
 * Stable error codes of the WASI host. A caller can `switch (err.code)` and narrow on them; the codes are
 * part of the public contract and never change meaning.
 */
export type WasiErrorCode =
  /** The bytes are not a WebAssembly module this engine accepts (bad framing, or compilation failed). */
  | 'ERR_WASM_INVALID'
  /** The module is not a WASI command: it lacks a `_start` function export taking and returning nothing. */
  | 'ERR_WASM_NOT_COMMAND'
  /** The module imports something other than a known `wasi_snapshot_preview1` function of the right type. */
  | 'ERR_WASM_IMPORT_UNSUPPORTED'
  /** The module's initial linear memory is larger than the memory limit. */
  | 'ERR_WASM_MEMORY_LIMIT'
  /** The module uses a feature the host refuses (shared, 64-bit or multiple memories). */
  | 'ERR_WASM_UNSUPPORTED'
  /** `writeStdin` was called after `endStdin`, or on a run whose stdin is `'null'`. */
  | 'ERR_WASI_STDIN_CLOSED'
  /** The worker thread could not start, failed inside the host, or ended without a result. */
  | 'ERR_WASI_WORKER_FAILED'
  /** An `onStdout` or `onStderr` callback threw; the run was stopped. */
  | 'ERR_WASI_CALLBACK_FAILED';

/** Every code of {@link WasiErrorCode}, for registries and exhaustiveness tests. */
export const wasiErrorCodes: readonly WasiErrorCode[] = [
  'ERR_WASM_INVALID',
  'ERR_WASM_NOT_COMMAND',
  'ERR_WASM_IMPORT_UNSUPPORTED',
  'ERR_WASM_MEMORY_LIMIT',
  'ERR_WASM_UNSUPPORTED',
  'ERR_WASI_STDIN_CLOSED',
  'ERR_WASI_WORKER_FAILED',
  'ERR_WASI_CALLBACK_FAILED',
];

/**
 * The one error class of the WASI host: a module the host refuses, or a run that failed for a reason
 * that is not the workload's own doing. What the workload does (exit, trap, hitting a limit) is a
 * `WasiResult`, never an error.
 */
export class WasiError extends Error {
  readonly code: WasiErrorCode;

  constructor(code: WasiErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WasiError';
    this.code = code;
  }
}

/** Whether `value` is a {@link WasiError}, optionally with the given code. */
export function isWasiError(value: unknown, code?: WasiErrorCode): value is WasiError {
  return value instanceof WasiError && (code === undefined || value.code === code);
}
