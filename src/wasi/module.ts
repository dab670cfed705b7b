// Over 400 lines: the whole static check of a module (sections, imports, exports, memories) in one pass.
import { PREVIEW1_MODULE, PREVIEW1_SIGNATURES } from './abi.ts';
import { WasiError, type WasiErrorCode } from './errors.ts';

// A reader of the WebAssembly binary format, just deep enough to check what the host relies on: the
// framing of every section, the types, imports, functions, memories and exports. Code, data and the other
// sections are framed but not decoded; the engine validates them when it compiles the module. LEB128 is
// read as the core specification defines it (at most ceil(N/7) bytes, unused bits zero), so this reader
// refuses nothing the engine accepts on those grounds and accepts nothing it refuses.

/** Bytes per WebAssembly page. */
export const WASM_PAGE = 65536;
/** Most pages a 32-bit memory can have. */
const MAX_PAGES = 65536;

/** What {@link inspectWasiModule} learned about a module. */
export interface WasiModuleInfo {
  /** Preview1 function names the module imports. */
  readonly imports: readonly string[];
  /** The module's own memory, if it defines one, with where its section lies in the bytes. */
  readonly memory?: {
    readonly min: number;
    readonly max?: number;
    /** Offset of the memory section's id byte. */
    readonly sectionStart: number;
    /** Offset just past the memory section. */
    readonly sectionEnd: number;
  };
}

const SECTION_RANK: ReadonlyMap<number, number> = new Map([
  [1, 1], // type
  [2, 2], // import
  [3, 3], // function
  [4, 4], // table
  [5, 5], // memory
  [13, 6], // tag (exception handling)
  [6, 7], // global
  [7, 8], // export
  [8, 9], // start
  [9, 10], // element
  [12, 11], // data count
  [10, 12], // code
  [11, 13], // data
]);

const VALTYPES: ReadonlyMap<number, string> = new Map([
  [0x7f, 'i'],
  [0x7e, 'I'],
  [0x7d, 'f'],
  [0x7c, 'F'],
  [0x7b, 'v'],
  [0x70, 'r'],
  [0x6f, 'x'],
]);

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function invalid(message: string): WasiError {
  return new WasiError('ERR_WASM_INVALID', `Cannot read the module: ${message}`);
}

class Reader {
  readonly #bytes: Uint8Array;
  pos: number;
  end: number;

  constructor(bytes: Uint8Array, pos: number, end: number) {
    this.#bytes = bytes;
    this.pos = pos;
    this.end = end;
  }

  u8(what: string): number {
    if (this.pos >= this.end) throw invalid(`${what} runs past the end of its section`);
    return this.#bytes[this.pos++]!;
  }

  u32(what: string): number {
    let result = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.u8(what);
      if (i === 4) {
        // The fifth byte carries the top 4 bits; anything above them, or a continuation, is malformed.
        if (b > 0x0f) throw invalid(`${what} is not a valid u32`);
        return (result + b * 2 ** 28) >>> 0;
      }
      result += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) return result;
    }
    throw invalid(`${what} is not a valid u32`);
  }

  name(what: string): string {
    const length = this.u32(`${what} length`);
    const bytes = this.take(length, what);
    try {
      return utf8.decode(bytes);
    } catch (error) {
      throw new WasiError('ERR_WASM_INVALID', `Cannot read the module: ${what} is not valid UTF-8`, {
        cause: error,
      });
    }
  }

  take(length: number, what: string): Uint8Array {
    if (length > this.end - this.pos) throw invalid(`${what} runs past the end of its section`);
    const out = this.#bytes.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  limits(what: string): { flags: number; min: number; max?: number } {
    const flags = this.u8(`${what} limits`);
    if (flags > 0x07) throw invalid(`${what} has unknown limits flags ${flags}`);
    // Bit 2 (memory64) makes the bounds u64; such memories are refused later, so read them as such here.
    const read = (label: string): number => ((flags & 0x04) !== 0 ? this.u64(label) : this.u32(label));
    const min = read(`${what} minimum`);
    if ((flags & 0x01) === 0) return { flags, min };
    return { flags, min, max: read(`${what} maximum`) };
  }

  u64(what: string): number {
    let result = 0;
    for (let i = 0; i < 10; i++) {
      const b = this.u8(what);
      if (i === 9) {
        if (b > 0x01) throw invalid(`${what} is not a valid u64`);
        return result + b * 2 ** 63;
      }
      result += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) return result;
    }
    throw invalid(`${what} is not a valid u64`);
  }

  valtype(what: string): string {
    const b = this.u8(what);
    const t = VALTYPES.get(b);
    if (t === undefined) throw invalid(`${what} has unknown value type 0x${b.toString(16)}`);
    return t;
  }

  done(what: string): void {
    if (this.pos !== this.end) throw invalid(`${what} has ${this.end - this.pos} trailing bytes`);
  }
}

interface Parsed {
  types: string[];
  imports: { module: string; name: string; kind: number; type?: number }[];
  functions: number[];
  codeCount: number;
  memories: { flags: number; min: number; max?: number }[];
  memorySection?: { start: number; end: number };
  exports: Map<string, { kind: number; index: number }>;
}

function parse(input: Uint8Array): Parsed {
  if (!(input instanceof Uint8Array)) throw new TypeError('Cannot read the module: expected a Uint8Array');
  // TextDecoder refuses views of shared memory, and another thread could change them under the reader.
  const bytes = input.buffer instanceof SharedArrayBuffer ? new Uint8Array(input) : input;
  if (bytes.length < 8) throw invalid('it is shorter than the 8-byte header');
  if (bytes[0] !== 0x00 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw invalid('the magic number is not \\0asm');
  }
  if (bytes[4] !== 0x01 || bytes[5] !== 0x00 || bytes[6] !== 0x00 || bytes[7] !== 0x00) {
    throw invalid('the binary format version is not 1');
  }
  const parsed: Parsed = {
    types: [],
    imports: [],
    functions: [],
    codeCount: 0,
    memories: [],
    exports: new Map(),
  };
  const top = new Reader(bytes, 8, bytes.length);
  let lastRank = 0;
  let sawFunctionSection = false;
  let sawCodeSection = false;
  while (top.pos < top.end) {
    const start = top.pos;
    const id = top.u8('section id');
    const size = top.u32('section size');
    if (size > top.end - top.pos) throw invalid(`section ${id} runs past the end of the module`);
    const r = new Reader(bytes, top.pos, top.pos + size);
    top.pos += size;
    if (id === 0) {
      r.name('custom section name');
      continue;
    }
    const rank = SECTION_RANK.get(id);
    if (rank === undefined) throw invalid(`section id ${id} is unknown`);
    if (rank <= lastRank) throw invalid(`section ${id} is duplicated or out of order`);
    lastRank = rank;
    switch (id) {
      case 1: {
        const count = r.u32('type count');
        for (let i = 0; i < count; i++) {
          const form = r.u8('type form');
          if (form !== 0x60) throw invalid(`type ${i} is not a function type`);
          let sig = '';
          const params = r.u32('parameter count');
          for (let j = 0; j < params; j++) sig += r.valtype('parameter');
          sig += ':';
          const results = r.u32('result count');
          for (let j = 0; j < results; j++) sig += r.valtype('result');
          parsed.types.push(sig);
        }
        break;
      }
      case 2: {
        const count = r.u32('import count');
        for (let i = 0; i < count; i++) {
          const module = r.name('import module name');
          const name = r.name('import name');
          const kind = r.u8('import kind');
          switch (kind) {
            case 0: {
              const type = r.u32('import type index');
              if (type >= parsed.types.length) throw invalid(`import ${module}.${name} names type ${type}`);
              parsed.imports.push({ module, name, kind, type });
              break;
            }
            case 1:
              r.valtype('table element type');
              r.limits('imported table');
              parsed.imports.push({ module, name, kind });
              break;
            case 2:
              r.limits('imported memory');
              parsed.imports.push({ module, name, kind });
              break;
            case 3:
              r.valtype('imported global type');
              if (r.u8('imported global mutability') > 1)
                throw invalid('an imported global has bad mutability');
              parsed.imports.push({ module, name, kind });
              break;
            case 4:
              if (r.u8('tag attribute') !== 0) throw invalid('an imported tag has a bad attribute');
              if (r.u32('tag type index') >= parsed.types.length)
                throw invalid('an imported tag names no type');
              parsed.imports.push({ module, name, kind });
              break;
            default:
              throw invalid(`import ${module}.${name} has unknown kind ${kind}`);
          }
        }
        break;
      }
      case 3: {
        sawFunctionSection = true;
        const count = r.u32('function count');
        for (let i = 0; i < count; i++) {
          const type = r.u32('function type index');
          if (type >= parsed.types.length) throw invalid(`function ${i} names type ${type}`);
          parsed.functions.push(type);
        }
        break;
      }
      case 5: {
        const count = r.u32('memory count');
        for (let i = 0; i < count; i++) parsed.memories.push(r.limits('memory'));
        parsed.memorySection = { start, end: top.pos };
        break;
      }
      case 7: {
        const count = r.u32('export count');
        for (let i = 0; i < count; i++) {
          const name = r.name('export name');
          const kind = r.u8('export kind');
          if (kind > 4) throw invalid(`export ${name} has unknown kind ${kind}`);
          const index = r.u32('export index');
          if (parsed.exports.has(name)) throw invalid(`export ${name} is duplicated`);
          parsed.exports.set(name, { kind, index });
        }
        break;
      }
      case 10: {
        sawCodeSection = true;
        parsed.codeCount = r.u32('code count');
        // Function bodies are the engine's to validate; skip them.
        r.pos = r.end;
        break;
      }
      default:
        // Tables, tags, globals, start, elements, data count and data: framed above, validated by the engine.
        r.pos = r.end;
    }
    r.done(`section ${id}`);
  }
  if (
    parsed.functions.length !== parsed.codeCount ||
    (parsed.codeCount > 0 && !(sawFunctionSection && sawCodeSection))
  ) {
    throw invalid(`it declares ${parsed.functions.length} functions but has ${parsed.codeCount} bodies`);
  }
  return parsed;
}

function refuse(code: WasiErrorCode, message: string): WasiError {
  return new WasiError(code, message);
}

/**
 * Reads and checks a module the way the host needs it: well framed, a `_start: [] -> [...]` export (else a
 * default export `""`, as wasmtime runs), only
 * `wasi_snapshot_preview1` function imports of the right types, at most one memory, neither shared nor
 * 64-bit. Does not compile it. Throws {@link WasiError} and nothing else for any byte string.
 */
export function inspectWasiModule(bytes: Uint8Array): WasiModuleInfo {
  const p = parse(bytes);
  const names: string[] = [];
  let importedFunctions = 0;
  const importedTypes: number[] = [];
  for (const imp of p.imports) {
    const what = `${imp.module}.${imp.name}`;
    if (imp.kind === 2) {
      throw refuse('ERR_WASM_IMPORT_UNSUPPORTED', `Cannot run the module: it imports its memory (${what})`);
    }
    if (imp.kind !== 0) {
      throw refuse(
        'ERR_WASM_IMPORT_UNSUPPORTED',
        `Cannot run the module: it imports ${what}, which is not a function`,
      );
    }
    if (imp.module !== PREVIEW1_MODULE) {
      throw refuse(
        'ERR_WASM_IMPORT_UNSUPPORTED',
        `Cannot run the module: it imports ${what} from outside WASI preview1`,
      );
    }
    const expected = Object.hasOwn(PREVIEW1_SIGNATURES, imp.name) ? PREVIEW1_SIGNATURES[imp.name] : undefined;
    if (expected === undefined) {
      throw refuse(
        'ERR_WASM_IMPORT_UNSUPPORTED',
        `Cannot run the module: ${imp.name} is not a WASI preview1 function`,
      );
    }
    const actual = p.types[imp.type!]!;
    if (actual !== expected) {
      throw refuse(
        'ERR_WASM_IMPORT_UNSUPPORTED',
        `Cannot run the module: it imports ${imp.name} with type (${actual}) instead of (${expected})`,
      );
    }
    names.push(imp.name);
    importedTypes.push(imp.type!);
    importedFunctions++;
  }
  // The entry wasmtime runs: `_start`, else the default export `""`; its results are ignored.
  const start = p.exports.get('_start')?.kind === 0 ? p.exports.get('_start') : p.exports.get('');
  if (start === undefined || start.kind !== 0) {
    throw refuse('ERR_WASM_NOT_COMMAND', 'Cannot run the module: it exports no _start function');
  }
  const startType =
    start.index < importedFunctions
      ? importedTypes[start.index]
      : p.functions[start.index - importedFunctions];
  if (startType === undefined) throw invalid(`_start names function ${start.index}, which does not exist`);
  if (!p.types[startType]!.startsWith(':')) {
    throw refuse('ERR_WASM_NOT_COMMAND', 'Cannot run the module: its _start function takes parameters');
  }
  if (p.memories.length > 1) {
    throw refuse('ERR_WASM_UNSUPPORTED', `Cannot run the module: it defines ${p.memories.length} memories`);
  }
  const mem = p.memories[0];
  if (mem === undefined || p.memorySection === undefined) return { imports: names };
  if ((mem.flags & 0x04) !== 0)
    throw refuse('ERR_WASM_UNSUPPORTED', 'Cannot run the module: its memory is 64-bit');
  if ((mem.flags & 0x02) !== 0)
    throw refuse('ERR_WASM_UNSUPPORTED', 'Cannot run the module: its memory is shared');
  if (mem.min > MAX_PAGES || (mem.max !== undefined && (mem.max > MAX_PAGES || mem.max < mem.min))) {
    throw invalid('its memory limits are out of range');
  }
  const memory = {
    min: mem.min,
    sectionStart: p.memorySection.start,
    sectionEnd: p.memorySection.end,
    ...(mem.max === undefined ? {} : { max: mem.max }),
  };
  return { imports: names, memory };
}

/**
 * Cheap client-side check that `bytes` is a WASI preview1 command the host will accept: the magic and
 * version, a `_start` export, and imports only from `wasi_snapshot_preview1`. The host compiles the
 * module later; this catches the common mistakes before anything is sent. Throws {@link WasiError}.
 */
export function validateWasiModule(bytes: Uint8Array): void {
  inspectWasiModule(bytes);
}

function leb(value: number): number[] {
  const out: number[] = [];
  let v = value;
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v > 0) b |= 0x80;
    out.push(b);
  } while (v > 0);
  return out;
}

/**
 * Returns the module with its memory's maximum lowered to `maxPages`, so `memory.grow` past the limit
 * fails inside the engine as wasm semantics say (it returns -1). The bytes are returned unchanged when
 * the declared maximum is already within the limit or the module has no memory. Throws
 * `ERR_WASM_MEMORY_LIMIT` when the initial size alone exceeds the limit.
 */
export function limitModuleMemory(bytes: Uint8Array, info: WasiModuleInfo, maxPages: number): Uint8Array {
  const mem = info.memory;
  if (mem === undefined) return bytes;
  if (mem.min > maxPages) {
    throw new WasiError(
      'ERR_WASM_MEMORY_LIMIT',
      `Cannot run the module: its initial memory of ${mem.min * WASM_PAGE} bytes exceeds the limit of ${maxPages * WASM_PAGE}`,
    );
  }
  if (mem.max !== undefined && mem.max <= maxPages) return bytes;
  const payload = [1, 0x01, ...leb(mem.min), ...leb(maxPages)];
  const section = [5, ...leb(payload.length), ...payload];
  const out = new Uint8Array(bytes.length - (mem.sectionEnd - mem.sectionStart) + section.length);
  out.set(bytes.subarray(0, mem.sectionStart), 0);
  out.set(section, mem.sectionStart);
  out.set(bytes.subarray(mem.sectionEnd), mem.sectionStart + section.length);
  return out;
}
