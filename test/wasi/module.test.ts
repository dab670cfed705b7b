import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { PREVIEW1_SIGNATURES } from '../../src/wasi/abi.ts';
import { isWasiError, type WasiErrorCode } from '../../src/wasi/errors.ts';
import { inspectWasiModule, limitModuleMemory, validateWasiModule } from '../../src/wasi/module.ts';
import { wasm } from '../../src/wasi/wasm.ts';
import { buildModule, type ModuleDef, op, startFunc, uleb, wasiImport } from './wasm-builder.ts';

const examples = ['hello', 'wc', 'trap', 'spin', 'memhog', 'echoenv'].map((n) =>
  readFileSync(new URL(`../../examples/${n}/${n}.wasm`, import.meta.url)),
);

const minimal: ModuleDef = { funcs: [startFunc([])], memory: { min: 1 } };

function header(): number[] {
  return [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
}

function rejects(bytes: Uint8Array, code: WasiErrorCode, pattern?: RegExp): void {
  assert.throws(
    () => validateWasiModule(bytes),
    (e: unknown) => isWasiError(e, code) && (pattern === undefined || pattern.test(e.message)),
  );
}

test('validateWasiModule() accepts every example workload', () => {
  for (const bytes of examples) validateWasiModule(bytes);
});

test('validateWasiModule() accepts a minimal command and agrees with the engine', () => {
  const bytes = buildModule(minimal);
  validateWasiModule(bytes);
  new wasm.Module(bytes);
});

test('validateWasiModule() rejects bad framing with ERR_WASM_INVALID', () => {
  const good = buildModule(minimal);
  rejects(new Uint8Array(0), 'ERR_WASM_INVALID', /shorter than/);
  rejects(Uint8Array.of(0x00, 0x61, 0x73, 0x6e, 1, 0, 0, 0), 'ERR_WASM_INVALID', /magic/);
  rejects(Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 2, 0, 0, 0), 'ERR_WASM_INVALID', /version/);
  rejects(good.subarray(0, good.length - 1), 'ERR_WASM_INVALID', /past the end/);
  rejects(Uint8Array.of(...header(), 14, 0), 'ERR_WASM_INVALID', /unknown/);
  // Trailing garbage after the last section reads as a section that runs past the end.
  rejects(Uint8Array.of(...good, 0x01), 'ERR_WASM_INVALID');
});

test('validateWasiModule() rejects sections out of order or repeated', () => {
  const type = [1, 4, 1, 0x60, 0, 0];
  rejects(Uint8Array.of(...header(), ...type, ...type), 'ERR_WASM_INVALID', /duplicated or out of order/);
  const exportSection = [7, 1, 0];
  rejects(Uint8Array.of(...header(), ...exportSection, ...type), 'ERR_WASM_INVALID', /out of order/);
});

test('validateWasiModule() follows the LEB128 rules of the core specification', () => {
  // A padded but in-range u32 (5 bytes) is valid wasm; the engine takes it, so must we.
  const padded = Uint8Array.of(...header(), 0, 0x85, 0x80, 0x80, 0x80, 0x00, 4, 0x70, 0x61, 0x64, 0x73);
  validateWasiModule(Uint8Array.of(...buildModule(minimal), ...padded.subarray(8)));
  // A fifth byte with bits above 2^32, or a sixth byte, is malformed.
  rejects(Uint8Array.of(...header(), 0, 0x85, 0x80, 0x80, 0x80, 0x10), 'ERR_WASM_INVALID', /valid u32/);
  rejects(Uint8Array.of(...header(), 0, 0x85, 0x80, 0x80, 0x80, 0x80, 0x00), 'ERR_WASM_INVALID', /valid u32/);
});

test('validateWasiModule() rejects trailing bytes inside a section and bad names', () => {
  rejects(Uint8Array.of(...header(), 1, 5, 1, 0x60, 0, 0, 0xff), 'ERR_WASM_INVALID', /trailing/);
  rejects(Uint8Array.of(...header(), 0, 3, 2, 0xc3, 0x28), 'ERR_WASM_INVALID', /UTF-8/);
});

test('validateWasiModule() rejects a function count that differs from the code count', () => {
  const bytes = buildModule({ funcs: [startFunc([]), { body: [] }] });
  // Drop the code section's second body by lying in the function section: rebuild with one body only.
  const oneBody = buildModule({ funcs: [startFunc([])] });
  validateWasiModule(oneBody);
  const codeAt = bytes.lastIndexOf(10);
  const tampered = Uint8Array.of(...bytes.subarray(0, codeAt), ...oneBody.subarray(oneBody.lastIndexOf(10)));
  rejects(tampered, 'ERR_WASM_INVALID', /bodies/);
});

test('validateWasiModule() rejects duplicate export names', () => {
  const bytes = buildModule({ funcs: [startFunc([]), { body: [], export: '_start' }] });
  rejects(bytes, 'ERR_WASM_INVALID', /duplicated/);
});

test('validateWasiModule() refuses imports that are not preview1 functions of the right type', () => {
  const withImport = (imp: ModuleDef['imports']): Uint8Array =>
    buildModule({ ...minimal, imports: imp ?? [] });
  rejects(
    withImport([{ module: 'env', name: 'f', params: [], results: [] }]),
    'ERR_WASM_IMPORT_UNSUPPORTED',
    /outside/,
  );
  rejects(withImport([wasiImport('fd_frobnicate', 'i:i')]), 'ERR_WASM_IMPORT_UNSUPPORTED', /not a WASI/);
  rejects(withImport([wasiImport('fd_write', 'iiiI:i')]), 'ERR_WASM_IMPORT_UNSUPPORTED', /with type/);
  rejects(withImport([wasiImport('proc_exit', 'i:i')]), 'ERR_WASM_IMPORT_UNSUPPORTED', /with type/);
  rejects(withImport([wasiImport('__proto__', 'i:i')]), 'ERR_WASM_IMPORT_UNSUPPORTED', /not a WASI/);
  // An imported memory (kind 2) and an imported global (kind 3), written by hand.
  const memImport = [
    1,
    22,
    ...new TextEncoder().encode('wasi_snapshot_preview1'),
    3,
    0x6d,
    0x65,
    0x6d,
    2,
    0,
    1,
  ];
  rejects(
    Uint8Array.of(...header(), 2, memImport.length, ...memImport),
    'ERR_WASM_IMPORT_UNSUPPORTED',
    /its memory/,
  );
  const globalImport = [1, 1, 0x65, 1, 0x67, 3, 0x7f, 0];
  rejects(
    Uint8Array.of(...header(), 2, globalImport.length, ...globalImport),
    'ERR_WASM_IMPORT_UNSUPPORTED',
    /not a function/,
  );
});

test('validateWasiModule() accepts every preview1 function with its own type', () => {
  const imports = Object.entries(PREVIEW1_SIGNATURES).map(([n, s]) => wasiImport(n, s));
  const bytes = buildModule({ ...minimal, imports });
  assert.deepEqual([...inspectWasiModule(bytes).imports].sort(), Object.keys(PREVIEW1_SIGNATURES).sort());
  new wasm.Module(bytes);
});

test('validateWasiModule() requires a _start function (else a default export "") that takes nothing', () => {
  rejects(buildModule({ funcs: [{ body: [], export: 'main' }] }), 'ERR_WASM_NOT_COMMAND', /no _start/);
  rejects(buildModule({ memory: { min: 1, export: '_start' } }), 'ERR_WASM_NOT_COMMAND', /no _start/);
  rejects(buildModule({ funcs: [{ body: [] }] }), 'ERR_WASM_NOT_COMMAND', /no _start/);
  rejects(
    buildModule({ funcs: [{ params: ['i32'], body: [], export: '_start' }] }),
    'ERR_WASM_NOT_COMMAND',
    /takes parameters/,
  );
  // As wasmtime (and Enarx's tests/wasm return_1.wat, wasi_snapshot1.wat): results are ignored, and the
  // default export "" is the entry of a module without _start. Both were refused.
  validateWasiModule(buildModule({ funcs: [{ results: ['i32'], body: op.i32Const(1), export: '_start' }] }));
  validateWasiModule(buildModule({ funcs: [{ body: [], export: '' }] }));
  // _start may be a re-exported import of the right type (odd, but a command all the same).
  validateWasiModule(buildModule({ imports: [wasiImport('sched_yield', ':i')], funcs: [startFunc([])] }));
});

test('validateWasiModule() refuses shared, 64-bit and multiple memories', () => {
  const withMemory = (payload: number[]): Uint8Array => {
    const good = buildModule({ funcs: [startFunc([])] });
    // Insert a memory section (id 5) after the function section (id 3), before exports (id 7).
    const at = good.indexOf(7, 8);
    return Uint8Array.of(...good.subarray(0, at), 5, payload.length, ...payload, ...good.subarray(at));
  };
  validateWasiModule(withMemory([1, 0x01, 1, 2]));
  rejects(withMemory([1, 0x03, 1, 2]), 'ERR_WASM_UNSUPPORTED', /shared/);
  rejects(withMemory([1, 0x04, 1]), 'ERR_WASM_UNSUPPORTED', /64-bit/);
  rejects(withMemory([2, 0x00, 1, 0x00, 1]), 'ERR_WASM_UNSUPPORTED', /2 memories/);
  rejects(withMemory([1, 0x01, 2, 1]), 'ERR_WASM_INVALID', /out of range/);
  rejects(withMemory([1, 0x00, ...uleb(65537)]), 'ERR_WASM_INVALID', /out of range/);
  rejects(withMemory([1, 0x08, 1]), 'ERR_WASM_INVALID', /limits flags/);
});

test('validateWasiModule() throws TypeError for a non-Uint8Array', () => {
  assert.throws(() => validateWasiModule('\0asm' as unknown as Uint8Array), TypeError);
});

test('limitModuleMemory() sets the maximum of a memory that has none, and the engine enforces it', () => {
  const bytes = buildModule({
    funcs: [
      startFunc([]),
      { params: ['i32'], results: ['i32'], body: [...op.localGet(0), ...op.memoryGrow], export: 'grow' },
    ],
    memory: { min: 200 },
  });
  const info = inspectWasiModule(bytes);
  assert.deepEqual(info.memory && { min: info.memory.min, max: info.memory.max }, {
    min: 200,
    max: undefined,
  });
  const limited = limitModuleMemory(bytes, info, 300);
  const after = inspectWasiModule(limited).memory;
  assert.equal(after?.min, 200);
  assert.equal(after?.max, 300);
  const grow = new wasm.Instance(new wasm.Module(limited), {}).exports['grow'] as (n: number) => number;
  assert.equal(grow(101), -1);
  assert.equal(grow(100), 200);
  assert.equal(grow(1), -1);
});

test('limitModuleMemory() lowers a larger maximum and keeps a smaller one byte for byte', () => {
  const big = buildModule({ ...minimal, memory: { min: 1, max: 65536 } });
  assert.equal(inspectWasiModule(limitModuleMemory(big, inspectWasiModule(big), 16)).memory?.max, 16);
  const small = buildModule({ ...minimal, memory: { min: 1, max: 8 } });
  assert.equal(limitModuleMemory(small, inspectWasiModule(small), 16), small);
  const none = buildModule({ funcs: [startFunc([])] });
  assert.equal(limitModuleMemory(none, inspectWasiModule(none), 0), none);
});

test('limitModuleMemory() refuses a module whose initial memory exceeds the limit', () => {
  const bytes = buildModule({ ...minimal, memory: { min: 17 } });
  assert.throws(
    () => limitModuleMemory(bytes, inspectWasiModule(bytes), 16),
    (e: unknown) =>
      isWasiError(e, 'ERR_WASM_MEMORY_LIMIT') && /1114112 bytes exceeds the limit of 1048576/.test(e.message),
  );
  limitModuleMemory(bytes, inspectWasiModule(bytes), 17);
});

test('limitModuleMemory() keeps the module valid for any memory shape and limit', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 65536 }),
      fc.option(fc.integer({ min: 0, max: 65536 }), { nil: undefined }),
      fc.integer({ min: 0, max: 65536 }),
      (min, maybeMax, limit) => {
        const max = maybeMax === undefined ? undefined : Math.max(min, maybeMax);
        const memory = max === undefined ? { min } : { min, max };
        const bytes = buildModule({ funcs: [startFunc([])], memory, data: [{ offset: 0, bytes: [] }] });
        const info = inspectWasiModule(bytes);
        if (min > limit) {
          assert.throws(
            () => limitModuleMemory(bytes, info, limit),
            (e: unknown) => isWasiError(e, 'ERR_WASM_MEMORY_LIMIT'),
          );
          return;
        }
        const limited = limitModuleMemory(bytes, info, limit);
        new wasm.Module(limited);
        const out = inspectWasiModule(limited).memory;
        assert.equal(out?.min, min);
        assert.equal(out?.max, max === undefined ? limit : Math.min(max, limit));
      },
    ),
    { numRuns: 300 },
  );
});

test('validateWasiModule() throws only WasiError for arbitrary bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
      try {
        validateWasiModule(Uint8Array.of(...header(), ...bytes));
      } catch (e) {
        assert.ok(isWasiError(e), `unexpected ${String(e)}`);
      }
      try {
        validateWasiModule(bytes);
      } catch (e) {
        assert.ok(isWasiError(e), `unexpected ${String(e)}`);
      }
    }),
    { numRuns: 2000 },
  );
});

test('validateWasiModule() throws only WasiError for mutations of a real module', () => {
  const base = examples[0]!;
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat({ max: base.length - 1 }), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      }),
      fc.option(fc.nat({ max: base.length }), { nil: undefined }),
      (flips, cut) => {
        const bytes = base.slice(0, cut);
        for (const [at, value] of flips) if (at < bytes.length) bytes[at] = value;
        try {
          validateWasiModule(bytes);
        } catch (e) {
          assert.ok(isWasiError(e), `unexpected ${String(e)}`);
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('validateWasiModule() never accepts a type section the engine refuses', () => {
  // Differential check of the part the reader decodes: random function types in front of a fixed _start.
  const valtypes = [0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f, 0x40, 0x00, 0x63];
  const functype = fc.tuple(
    fc.constantFrom(0x60, 0x60, 0x60, 0x5f),
    fc.array(fc.constantFrom(...valtypes), { maxLength: 3 }),
    fc.array(fc.constantFrom(...valtypes), { maxLength: 2 }),
  );
  const rest = buildModule({ funcs: [startFunc([])] });
  const afterTypes = rest.subarray(8 + 2 + rest[9]!);
  const outcomes = new Set<string>();
  fc.assert(
    fc.property(
      fc.array(functype, { minLength: 1, maxLength: 4 }),
      fc.integer({ min: -1, max: 1 }),
      (types, skew) => {
        // The first type is _start's, whose body is empty: results there would be refused for the body,
        // which the reader leaves to the engine (an entry's results are allowed, as in wasmtime).
        const entries = types.flatMap(([form, p, r], i) =>
          i === 0 ? [form, p.length, ...p, 0] : [form, p.length, ...p, r.length, ...r],
        );
        const payload = [types.length + skew, ...entries];
        const bytes = Uint8Array.of(...header(), 1, ...uleb(payload.length), ...payload, ...afterTypes);
        let engine = true;
        try {
          new wasm.Module(bytes);
        } catch {
          engine = false;
        }
        let ours = true;
        try {
          validateWasiModule(bytes);
        } catch (e) {
          assert.ok(isWasiError(e));
          ours = false;
        }
        if (ours) assert.ok(engine, 'accepted a module the engine refuses');
        outcomes.add(`${ours}/${engine}`);
      },
    ),
    { numRuns: 500 },
  );
  // Both verdicts must have occurred, or the property checked nothing.
  assert.ok(outcomes.has('true/true') && outcomes.has('false/false'), [...outcomes].join(' '));
});
