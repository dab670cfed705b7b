// Over 400 lines: a canonical CBOR encoder and decoder with limits, one profile in one file.
import { ProtocolError } from './errors.ts';

/**
 * A value of Donjon's CBOR data model: what {@link decode} returns and {@link encode} accepts. Integers are
 * JS numbers while they are safe integers and bigints beyond; maps have text keys only.
 */
export type CborValue = null | boolean | number | bigint | string | Uint8Array | CborValue[] | CborMap;

/** A CBOR map with text keys. Decoded maps have a null prototype, so no key can reach `Object.prototype`. */
export interface CborMap {
  [key: string]: CborValue;
}

/**
 * Bounds a decoder enforces before it allocates, so a peer cannot make it spend memory or stack it did
 * not agree to.
 */
export interface DecodeLimits {
  /** Largest input accepted, in bytes. */
  readonly maxBytes: number;
  /** Deepest nesting of arrays and maps; a top-level map is depth 1. At most 256. */
  readonly maxDepth: number;
  /** Largest element count of one array, or entry count of one map. */
  readonly maxItems: number;
  /** Largest byte string, or text string in UTF-8 bytes. */
  readonly maxStringBytes: number;
}

const MiB = 1024 * 1024;
const DEPTH_CEILING = 256;

/**
 * The limits used when a caller gives none: large enough for a Deploy message carrying a big Wasm module,
 * shallow enough that no message needs more than a few levels. Callers facing untrusted peers with small
 * messages (the keepmgr API) should pass tighter ones.
 */
export const defaultLimits: Readonly<DecodeLimits> = Object.freeze({
  maxBytes: 64 * MiB,
  maxDepth: 16,
  maxItems: 65_536,
  maxStringBytes: 64 * MiB,
});

/**
 * Fills in and checks decode limits. Exported for the framing layer, which must agree with the decoder
 * on the byte limit.
 */
export function resolveLimits(limits: Partial<DecodeLimits> = {}): DecodeLimits {
  const resolved: DecodeLimits = { ...defaultLimits, ...limits };
  for (const key of ['maxBytes', 'maxDepth', 'maxItems', 'maxStringBytes'] as const) {
    const value = resolved[key];
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`Cannot use decode limit ${key}: ${String(value)} is not a non-negative integer`);
    }
  }
  if (resolved.maxDepth > DEPTH_CEILING) {
    throw new RangeError(`Cannot use decode limit maxDepth: ${resolved.maxDepth} exceeds ${DEPTH_CEILING}`);
  }
  return resolved;
}

const UINT64_MAX = (1n << 64n) - 1n;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

// --- decoding -------------------------------------------------------------------------------------------

function malformed(state: string, cause?: unknown): ProtocolError {
  return new ProtocolError(
    'ERR_CBOR_MALFORMED',
    `Cannot decode CBOR: ${state}`,
    cause === undefined ? undefined : { cause },
  );
}

function nonCanonical(state: string): ProtocolError {
  return new ProtocolError('ERR_CBOR_NONCANONICAL', `Cannot decode CBOR: ${state}`);
}

function unsupported(state: string): ProtocolError {
  return new ProtocolError('ERR_CBOR_UNSUPPORTED', `Cannot decode CBOR: ${state}`);
}

function overLimit(state: string): ProtocolError {
  return new ProtocolError('ERR_CBOR_LIMIT', `Cannot decode CBOR: ${state}`);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

class Decoder {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #limits: DecodeLimits;
  readonly #text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  #pos = 0;

  constructor(bytes: Uint8Array, limits: DecodeLimits) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#limits = limits;
  }

  get done(): boolean {
    return this.#pos === this.#bytes.length;
  }

  get remaining(): number {
    return this.#bytes.length - this.#pos;
  }

  #need(n: number): void {
    if (n > this.remaining) throw malformed('the input ends inside an item');
  }

  // Reads the argument of a head whose additional information is 0..27, insisting on the shortest form
  // (RFC 8949 section 4.2.1), which also makes every length and integer have exactly one encoding.
  #argument(ai: number): number | bigint {
    if (ai < 24) return ai;
    switch (ai) {
      case 24: {
        this.#need(1);
        const v = this.#view.getUint8(this.#pos);
        this.#pos += 1;
        if (v < 24) throw nonCanonical(`${v} is not in its shortest form`);
        return v;
      }
      case 25: {
        this.#need(2);
        const v = this.#view.getUint16(this.#pos);
        this.#pos += 2;
        if (v < 0x100) throw nonCanonical(`${v} is not in its shortest form`);
        return v;
      }
      case 26: {
        this.#need(4);
        const v = this.#view.getUint32(this.#pos);
        this.#pos += 4;
        if (v < 0x10000) throw nonCanonical(`${v} is not in its shortest form`);
        return v;
      }
      case 27: {
        this.#need(8);
        const v = this.#view.getBigUint64(this.#pos);
        this.#pos += 8;
        if (v < 0x100000000n) throw nonCanonical(`${v} is not in its shortest form`);
        return v <= MAX_SAFE ? Number(v) : v;
      }
      default:
        throw malformed(`additional information ${ai} is reserved`);
    }
  }

  #length(ai: number, what: string, max: number, limitName: string): number {
    if (ai === 31) throw nonCanonical(`an indefinite-length ${what} is not allowed`);
    const n = this.#argument(ai);
    if (typeof n === 'bigint' || n > max) {
      throw overLimit(`a ${what} of length ${n} exceeds ${limitName} (${max})`);
    }
    return n;
  }

  item(depth: number): CborValue {
    this.#need(1);
    const initial = this.#bytes[this.#pos]!;
    this.#pos += 1;
    const major = initial >> 5;
    const ai = initial & 0x1f;
    switch (major) {
      case 0: {
        if (ai === 31) throw malformed('an unsigned integer cannot have indefinite length');
        return this.#argument(ai);
      }
      case 1: {
        if (ai === 31) throw malformed('a negative integer cannot have indefinite length');
        const n = this.#argument(ai);
        if (typeof n === 'number' && n < Number.MAX_SAFE_INTEGER) return -1 - n;
        return -1n - BigInt(n);
      }
      case 2: {
        const len = this.#length(ai, 'byte string', this.#limits.maxStringBytes, 'maxStringBytes');
        this.#need(len);
        const out = this.#bytes.slice(this.#pos, this.#pos + len);
        this.#pos += len;
        return out;
      }
      case 3: {
        const len = this.#length(ai, 'text string', this.#limits.maxStringBytes, 'maxStringBytes');
        this.#need(len);
        const raw = this.#bytes.subarray(this.#pos, this.#pos + len);
        this.#pos += len;
        try {
          return this.#text.decode(raw);
        } catch (cause) {
          throw malformed('a text string is not valid UTF-8', cause);
        }
      }
      case 4: {
        const count = this.#length(ai, 'array', this.#limits.maxItems, 'maxItems');
        this.#enter(depth);
        // Every element takes at least one byte: refuse impossible counts before allocating for them.
        if (count > this.remaining) throw malformed('the input ends inside an array');
        const out: CborValue[] = [];
        for (let i = 0; i < count; i++) out.push(this.item(depth + 1));
        return out;
      }
      case 5:
        return this.#map(ai, depth);
      case 6:
        throw unsupported('tags are not part of the profile');
      default:
        return this.#simple(ai);
    }
  }

  #enter(depth: number): void {
    if (depth + 1 > this.#limits.maxDepth) {
      throw overLimit(`nesting exceeds maxDepth (${this.#limits.maxDepth})`);
    }
  }

  #map(ai: number, depth: number): CborMap {
    const count = this.#length(ai, 'map', this.#limits.maxItems, 'maxItems');
    this.#enter(depth);
    if (count * 2 > this.remaining) throw malformed('the input ends inside a map');
    const out: CborMap = Object.create(null);
    const seen = new Set<string>();
    let previous: Uint8Array | undefined;
    for (let i = 0; i < count; i++) {
      const start = this.#pos;
      const key = this.item(depth + 1);
      if (typeof key !== 'string') throw unsupported('map keys must be text strings');
      const encodedKey = this.#bytes.subarray(start, this.#pos);
      if (seen.has(key)) {
        throw new ProtocolError(
          'ERR_CBOR_DUPLICATE_KEY',
          `Cannot decode CBOR: the key ${JSON.stringify(key)} repeats`,
        );
      }
      if (previous !== undefined && compareBytes(previous, encodedKey) > 0) {
        throw nonCanonical(`the key ${JSON.stringify(key)} is out of order`);
      }
      seen.add(key);
      previous = encodedKey;
      // A null-prototype object takes `__proto__` as an ordinary own key.
      out[key] = this.item(depth + 1);
    }
    return out;
  }

  #simple(ai: number): CborValue {
    switch (ai) {
      case 20:
        return false;
      case 21:
        return true;
      case 22:
        return null;
      case 23:
        throw unsupported('undefined is not part of the profile');
      case 24: {
        this.#need(1);
        const v = this.#bytes[this.#pos]!;
        this.#pos += 1;
        if (v < 32) throw malformed(`simple value ${v} uses the two-byte form`);
        throw unsupported(`simple value ${v} is not part of the profile`);
      }
      case 25:
      case 26:
      case 27:
        throw unsupported('floating-point numbers are not part of the profile');
      case 28:
      case 29:
      case 30:
        throw malformed(`additional information ${ai} is reserved`);
      case 31:
        throw malformed('a break code stands outside an indefinite-length item');
      default:
        throw unsupported(`simple value ${ai} is not part of the profile`);
    }
  }
}

/**
 * Decodes exactly one CBOR data item under Donjon's profile: core deterministic encoding (RFC 8949
 * §4.2.1) with text map keys and no tags, floats, `undefined` or simple values other than false, true and
 * null. Anything else, and anything past a limit, throws a {@link ProtocolError}; it never returns a value
 * that has a second encoding.
 *
 * @example
 * decode(new Uint8Array([0xa1, 0x61, 0x76, 0x01])) // { v: 1 } (null prototype)
 */
export function decode(bytes: Uint8Array, limits?: Partial<DecodeLimits>): CborValue {
  if (!(bytes instanceof Uint8Array))
    throw new TypeError('Cannot decode CBOR: the input is not a Uint8Array');
  const resolved = resolveLimits(limits);
  if (bytes.length > resolved.maxBytes) {
    throw overLimit(`the input of ${bytes.length} bytes exceeds maxBytes (${resolved.maxBytes})`);
  }
  const decoder = new Decoder(bytes, resolved);
  const value = decoder.item(0);
  if (!decoder.done) {
    const n = decoder.remaining;
    throw malformed(`${n} ${n === 1 ? 'byte follows' : 'bytes follow'} the data item`);
  }
  return value;
}

// --- encoding -------------------------------------------------------------------------------------------

class Writer {
  #buf = new Uint8Array(256);
  #pos = 0;

  #reserve(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#pos + n));
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
  }

  head(major: number, arg: number | bigint): void {
    const m = major << 5;
    if (typeof arg === 'number' && arg < 24) {
      this.#reserve(1);
      this.#buf[this.#pos++] = m | arg;
    } else if (typeof arg === 'number' && arg < 0x100) {
      this.#reserve(2);
      this.#buf[this.#pos++] = m | 24;
      this.#buf[this.#pos++] = arg;
    } else if (typeof arg === 'number' && arg < 0x10000) {
      this.#reserve(3);
      this.#buf[this.#pos++] = m | 25;
      new DataView(this.#buf.buffer).setUint16(this.#pos, arg);
      this.#pos += 2;
    } else if (typeof arg === 'number' && arg < 0x100000000) {
      this.#reserve(5);
      this.#buf[this.#pos++] = m | 26;
      new DataView(this.#buf.buffer).setUint32(this.#pos, arg);
      this.#pos += 4;
    } else {
      const big = BigInt(arg);
      if (big < 0x100000000n) {
        this.head(major, Number(big));
        return;
      }
      this.#reserve(9);
      this.#buf[this.#pos++] = m | 27;
      new DataView(this.#buf.buffer).setBigUint64(this.#pos, big);
      this.#pos += 8;
    }
  }

  bytes(b: Uint8Array): void {
    this.#reserve(b.length);
    this.#buf.set(b, this.#pos);
    this.#pos += b.length;
  }

  byte(b: number): void {
    this.#reserve(1);
    this.#buf[this.#pos++] = b;
  }

  result(): Uint8Array {
    return this.#buf.slice(0, this.#pos);
  }
}

const utf8 = new TextEncoder();
/** Whether `s` has no surrogate without its pair (ES2024's String.prototype.isWellFormed, in Node 20). */
const wellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed();

function describe(path: string): string {
  return path === '' ? 'the value' : `the value at ${path}`;
}

function encodeInto(w: Writer, value: unknown, path: string, ancestors: Set<object>): void {
  switch (typeof value) {
    case 'boolean':
      w.byte(value ? 0xf5 : 0xf4);
      return;
    case 'number':
      if (!Number.isInteger(value)) {
        throw new TypeError(
          `Cannot encode CBOR: ${describe(path)} is not an integer (floats are not in the profile)`,
        );
      }
      if (!Number.isSafeInteger(value)) {
        throw new RangeError(`Cannot encode CBOR: ${describe(path)} is not a safe integer (use a bigint)`);
      }
      if (value >= 0) w.head(0, value);
      else w.head(1, -1 - value);
      return;
    case 'bigint':
      if (value > UINT64_MAX || value < -1n - UINT64_MAX) {
        throw new RangeError(`Cannot encode CBOR: ${describe(path)} does not fit in 64 bits`);
      }
      if (value >= 0n) w.head(0, value);
      else w.head(1, -1n - value);
      return;
    case 'string': {
      if (!wellFormed(value)) {
        throw new TypeError(`Cannot encode CBOR: ${describe(path)} holds a lone surrogate`);
      }
      const b = utf8.encode(value);
      w.head(3, b.length);
      w.bytes(b);
      return;
    }
    case 'object':
      break;
    default:
      throw new TypeError(`Cannot encode CBOR: ${describe(path)} is a ${typeof value}`);
  }
  if (value === null) {
    w.byte(0xf6);
    return;
  }
  if (value instanceof Uint8Array) {
    w.head(2, value.length);
    w.bytes(value);
    return;
  }
  if (ancestors.has(value)) throw new TypeError(`Cannot encode CBOR: ${describe(path)} is cyclic`);
  ancestors.add(value);
  if (Array.isArray(value)) {
    w.head(4, value.length);
    for (let i = 0; i < value.length; i++) encodeInto(w, value[i], `${path}[${i}]`, ancestors);
  } else {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      throw new TypeError(`Cannot encode CBOR: ${describe(path)} is not a plain object`);
    }
    if (Object.getOwnPropertySymbols(value).length > 0) {
      throw new TypeError(`Cannot encode CBOR: ${describe(path)} has symbol keys`);
    }
    const entries = Object.keys(value).map((key) => ({ key, encoded: encodedKey(key) }));
    entries.sort((a, b) => compareBytes(a.encoded, b.encoded));
    w.head(5, entries.length);
    for (const { key, encoded } of entries) {
      const v = (value as Record<string, unknown>)[key];
      const at = `${path}.${key}`;
      if (v === undefined) throw new TypeError(`Cannot encode CBOR: ${describe(at)} is undefined`);
      w.bytes(encoded);
      encodeInto(w, v, at, ancestors);
    }
  }
  ancestors.delete(value);
}

/** Encoded map keys: messages use a few dozen names over and over. Bounded, so that odd keys only miss. */
const keyCache = new Map<string, Uint8Array>();
const KEY_CACHE_MAX = 1024;

function encodedKey(key: string): Uint8Array {
  let encoded = keyCache.get(key);
  if (encoded === undefined) {
    const w = new Writer();
    encodeInto(w, key, '', new Set());
    encoded = w.result();
    if (keyCache.size < KEY_CACHE_MAX) keyCache.set(key, encoded);
  }
  return encoded;
}

/**
 * Encodes a value in core deterministic CBOR (RFC 8949 section 4.2.1): shortest heads, definite lengths, map
 * keys sorted by their encoded bytes. Equal values always give equal bytes, so encodings can be hashed
 * and compared. Accepts the {@link CborValue} model; anything else (floats, `undefined`, class instances,
 * cycles) is a `TypeError` or `RangeError`.
 *
 * @example
 * encode({ v: 1 }) // Uint8Array [0xa1, 0x61, 0x76, 0x01]
 */
export function encode(value: unknown): Uint8Array {
  const w = new Writer();
  encodeInto(w, value, '', new Set());
  return w.result();
}
