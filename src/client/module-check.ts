/**
 * The workload checked on the client before any Keep is made: a module the Keep would refuse is a usage
 * error found in milliseconds, not after a Keep was started, attested and sent the whole module.
 *
 * The Keep's own reader (`validateWasiModule` of src/wasi/module.ts: framing, the entry point, imports only
 * from wasi_snapshot_preview1 with their types, memories) is called here rather than copied, so the two
 * cannot drift. That file is pure (it imports only the WASI ABI table and the WASI errors, which import
 * lib), so the client gains no dependency on the WASI host's runtime. The Keep checks again: this is a
 * courtesy to the user, never a trust decision.
 */
import { WasiError } from '../wasi/errors.ts';
import { validateWasiModule } from '../wasi/module.ts';

/** The engine's validator and compiler, typed here as src/wasi/wasm.ts does (no lib declares them). */
const engine = (
  globalThis as unknown as {
    WebAssembly: { validate(bytes: Uint8Array): boolean; Module: new (bytes: Uint8Array) => object };
  }
).WebAssembly;

// `run` checks the module it read, then hands the same bytes to runWorkload: check them once.
const checked = new WeakSet<Uint8Array>();

/**
 * Checks that `wasm` is a WASI preview1 command the Keep will accept: well formed and valid as this engine
 * reads WebAssembly (it compiles the body only to word a refusal), an entry point (`_start`, else the
 * default export `""`, as wasmtime picks), imports only from wasi_snapshot_preview1. Throws
 * {@link WasiError} (category `usage`).
 */
export function checkWorkloadModule(wasm: Uint8Array): void {
  if (checked.has(wasm)) return;
  validateWasiModule(wasm);
  if (!engine.validate(wasm)) {
    let detail = 'it is not valid WebAssembly';
    try {
      new engine.Module(wasm);
    } catch (error) {
      detail = error instanceof Error ? error.message : String(error);
    }
    throw new WasiError('ERR_WASM_INVALID', `Cannot compile the module: ${detail}`);
  }
  checked.add(wasm);
}
