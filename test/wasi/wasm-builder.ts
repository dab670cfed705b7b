// A small assembler for test modules: enough of the binary format to write functions as opcode lists.

export type ValType = 'i32' | 'i64';

const VALTYPE: Record<ValType, number> = { i32: 0x7f, i64: 0x7e };

/** Unsigned LEB128. */
export function uleb(value: number | bigint): number[] {
  let v = BigInt(value);
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return out;
}

/** Signed LEB128. */
export function sleb(value: number | bigint): number[] {
  let v = BigInt(value);
  const out: number[] = [];
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    const done = (v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0);
    out.push(done ? b : b | 0x80);
    if (done) return out;
  }
}

function name(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function section(id: number, payload: number[]): number[] {
  return [id, ...uleb(payload.length), ...payload];
}

/** Instruction encoders. */
export const op = {
  unreachable: [0x00],
  nop: [0x01],
  drop: [0x1a],
  end: [0x0b],
  return: [0x0f],
  i32Const: (n: number): number[] => [0x41, ...sleb(n)],
  i64Const: (n: bigint): number[] => [0x42, ...sleb(n)],
  localGet: (i: number): number[] => [0x20, ...uleb(i)],
  localSet: (i: number): number[] => [0x21, ...uleb(i)],
  call: (i: number): number[] => [0x10, ...uleb(i)],
  i32Add: [0x6a],
  i32Store: (offset = 0): number[] => [0x36, 0x02, ...uleb(offset)],
  i32Load: (offset = 0): number[] => [0x28, 0x02, ...uleb(offset)],
  memoryGrow: [0x40, 0x00],
  memorySize: [0x3f, 0x00],
  loop: (body: number[]): number[] => [0x03, 0x40, ...body, 0x0b],
  br: (depth: number): number[] => [0x0c, ...uleb(depth)],
};

export interface ImportDef {
  module: string;
  name: string;
  params: ValType[];
  results: ValType[];
}

export interface FuncDef {
  params?: ValType[];
  results?: ValType[];
  locals?: ValType[];
  /** Instructions, without the final `end`. */
  body: number[];
  export?: string;
}

export interface ModuleDef {
  imports?: ImportDef[];
  funcs?: FuncDef[];
  /** Pages; `export` names the memory export (default "memory"). */
  memory?: { min: number; max?: number; export?: string | false };
  data?: { offset: number; bytes: Uint8Array | number[] }[];
  /** Index (in the function index space) of a start function. */
  start?: number;
}

/** Assembles a module. Function indices: imports first, then `funcs` in order. */
export function buildModule(def: ModuleDef): Uint8Array {
  const imports = def.imports ?? [];
  const funcs = def.funcs ?? [];
  const types: string[] = [];
  const typeIndex = (params: ValType[], results: ValType[]): number => {
    const key = `${params.join(',')}:${results.join(',')}`;
    let i = types.indexOf(key);
    if (i < 0) {
      types.push(key);
      i = types.length - 1;
    }
    return i;
  };
  const importEntries = imports.map((imp) => [
    ...name(imp.module),
    ...name(imp.name),
    0x00,
    ...uleb(typeIndex(imp.params, imp.results)),
  ]);
  const funcTypes = funcs.map((f) => uleb(typeIndex(f.params ?? [], f.results ?? [])));
  const typeEntries = types.map((key) => {
    const [p, r] = key.split(':') as [string, string];
    const list = (s: string): number[] => (s === '' ? [] : s.split(',').map((t) => VALTYPE[t as ValType]));
    return [0x60, ...uleb(list(p).length), ...list(p), ...uleb(list(r).length), ...list(r)];
  });
  const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  if (typeEntries.length > 0) out.push(...section(1, vec(typeEntries)));
  if (importEntries.length > 0) out.push(...section(2, vec(importEntries)));
  if (funcs.length > 0) out.push(...section(3, vec(funcTypes)));
  if (def.memory !== undefined) {
    const m = def.memory;
    const limits = m.max === undefined ? [0x00, ...uleb(m.min)] : [0x01, ...uleb(m.min), ...uleb(m.max)];
    out.push(...section(5, vec([limits])));
  }
  const exports: number[][] = [];
  funcs.forEach((f, i) => {
    if (f.export !== undefined) exports.push([...name(f.export), 0x00, ...uleb(imports.length + i)]);
  });
  if (def.memory !== undefined && def.memory.export !== false) {
    exports.push([...name(def.memory.export ?? 'memory'), 0x02, 0x00]);
  }
  if (exports.length > 0) out.push(...section(7, vec(exports)));
  if (def.start !== undefined) out.push(...section(8, uleb(def.start)));
  if (funcs.length > 0) {
    const bodies = funcs.map((f) => {
      const locals = (f.locals ?? []).map((t) => [0x01, VALTYPE[t]]);
      const body = [...vec(locals), ...f.body, 0x0b];
      return [...uleb(body.length), ...body];
    });
    out.push(...section(10, vec(bodies)));
  }
  if (def.data !== undefined && def.data.length > 0) {
    const segs = def.data.map((d) => [
      0x00,
      0x41,
      ...sleb(d.offset),
      0x0b,
      ...uleb(d.bytes.length),
      ...d.bytes,
    ]);
    out.push(...section(11, vec(segs)));
  }
  return Uint8Array.from(out);
}

const SIG: Record<string, ValType> = { i: 'i32', I: 'i64' };

/** Parses the compact `params:results` notation of the preview1 signature table. */
export function signature(compact: string): { params: ValType[]; results: ValType[] } {
  const [p, r] = compact.split(':') as [string, string];
  return { params: [...p].map((c) => SIG[c]!), results: [...r].map((c) => SIG[c]!) };
}

/** A preview1 import of `name` with the given compact signature. */
export function wasiImport(fn: string, compact: string): ImportDef {
  return { module: 'wasi_snapshot_preview1', name: fn, ...signature(compact) };
}

/** A `_start` that takes and returns nothing, running `body`. */
export function startFunc(body: number[], locals: ValType[] = []): FuncDef {
  return { body, locals, export: '_start' };
}
