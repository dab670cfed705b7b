// The part of the WebAssembly JavaScript API the host uses, typed here because neither the ES2022 lib nor
// Node 20's type definitions declare `WebAssembly`, and a global declaration would leak into every folder.

/** A compiled module (`WebAssembly.Module`). */
export type WasmModule = object;

/** A linear memory (`WebAssembly.Memory`). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(deltaPages: number): number;
}

/** An instance (`WebAssembly.Instance`). */
export interface WasmInstance {
  readonly exports: Readonly<Record<string, unknown>>;
}

/** An import or export as `WebAssembly.Module.imports`/`exports` describe it. */
export interface WasmDescriptor {
  readonly module?: string;
  readonly name: string;
  readonly kind: string;
}

/** The `WebAssembly` namespace object. */
export interface WasmApi {
  readonly Module: {
    new (bytes: Uint8Array): WasmModule;
    imports(module: WasmModule): WasmDescriptor[];
    exports(module: WasmModule): WasmDescriptor[];
  };
  readonly Instance: new (
    module: WasmModule,
    imports: Record<string, Record<string, unknown>>,
  ) => WasmInstance;
  readonly Memory: new (descriptor: { initial: number; maximum?: number }) => WasmMemory;
  readonly RuntimeError: new (message?: string) => Error;
  readonly CompileError: new (message?: string) => Error;
  readonly LinkError: new (message?: string) => Error;
  compile(bytes: Uint8Array): Promise<WasmModule>;
}

/** The engine's `WebAssembly` object. */
export const wasm: WasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
