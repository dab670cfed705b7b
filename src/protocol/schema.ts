import { ProtocolError } from './errors.ts';

// A small schema language for messages: one declaration gives the TypeScript type (through Infer), the
// checks run on decode and on encode, and the generators the tests build. It covers exactly what the
// protocol uses; docs/protocol.cddl is the normative form and a test holds the two together.

/** A text string. */
export interface TstrSchema {
  readonly kind: 'tstr';
}
/** One of a fixed set of text strings. */
export interface EnumSchema<V extends string = string> {
  readonly kind: 'enum';
  readonly values: readonly V[];
}
/** A byte string, of exactly `size` bytes when given. */
export interface BstrSchema {
  readonly kind: 'bstr';
  readonly size?: number;
}
/** An unsigned integer no larger than `Number.MAX_SAFE_INTEGER`. */
export interface UintSchema {
  readonly kind: 'uint';
}
/** An integer within the safe range of JS numbers. */
export interface IntSchema {
  readonly kind: 'int';
}
/** `true` or `false`. */
export interface BoolSchema {
  readonly kind: 'bool';
}
/** An array whose every element matches `items`. */
export interface ArraySchema<I extends Schema = Schema> {
  readonly kind: 'array';
  readonly items: I;
}
/** A map from text to text (an environment). */
export interface TextMapSchema {
  readonly kind: 'text-map';
}
/** A field that may be absent; it is never present as null or undefined. */
export interface OptionalSchema<I extends Schema = Schema> {
  readonly kind: 'optional';
  readonly inner: I;
}
/** The fields of a map, by key. */
export type Fields = { readonly [key: string]: Schema | OptionalSchema };
/** A closed map: exactly the declared fields, nothing else. */
export interface StructSchema<F extends Fields = Fields> {
  readonly kind: 'struct';
  readonly fields: F;
}
/** A closed map carrying `v: 1` and `type` besides its fields: a protocol message. */
export interface MessageSchema<F extends Fields = Fields, T extends string = string> {
  readonly kind: 'message';
  readonly type: T;
  readonly fields: F;
}

/** Any schema node a field can hold. */
export type Schema =
  | TstrSchema
  | EnumSchema
  | BstrSchema
  | UintSchema
  | IntSchema
  | BoolSchema
  | ArraySchema
  | TextMapSchema
  | StructSchema
  | MessageSchema;

/** The protocol version every message carries as `v`. */
export const PROTOCOL_VERSION = 1;

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type RequiredKeys<F> = { [K in keyof F]: F[K] extends OptionalSchema ? never : K }[keyof F];
type OptionalKeys<F> = { [K in keyof F]: F[K] extends OptionalSchema ? K : never }[keyof F];
type InferFields<F extends Fields> = { -readonly [K in RequiredKeys<F>]: Infer<F[K]> } & {
  -readonly [K in OptionalKeys<F>]?: F[K] extends OptionalSchema<infer I> ? Infer<I> : never;
};

/** The TypeScript type of the values a schema accepts. */
export type Infer<S> = S extends TstrSchema
  ? string
  : S extends EnumSchema<infer V>
    ? V
    : S extends BstrSchema
      ? Uint8Array
      : S extends UintSchema | IntSchema
        ? number
        : S extends BoolSchema
          ? boolean
          : S extends ArraySchema<infer I>
            ? Infer<I>[]
            : S extends TextMapSchema
              ? Record<string, string>
              : S extends StructSchema<infer F>
                ? Simplify<InferFields<F>>
                : S extends MessageSchema<infer F, infer T>
                  ? Simplify<{ v: typeof PROTOCOL_VERSION; type: T } & InferFields<F>>
                  : never;

/** Schema constructors, named after the CDDL types they stand for. */
export const tstr: TstrSchema = { kind: 'tstr' };
/** See {@link BstrSchema}. */
export const bstr: BstrSchema = { kind: 'bstr' };
/** See {@link UintSchema}. */
export const uint: UintSchema = { kind: 'uint' };
/** See {@link IntSchema}. */
export const int: IntSchema = { kind: 'int' };
/** See {@link BoolSchema}. */
export const bool: BoolSchema = { kind: 'bool' };
/** See {@link TextMapSchema}. */
export const textMap: TextMapSchema = { kind: 'text-map' };

/** A byte string of exactly `size` bytes (CDDL `bstr .size n`). */
export function bstrOfSize(size: number): BstrSchema {
  return { kind: 'bstr', size };
}
/** One of the given text literals (CDDL `"a" / "b"`). */
export function oneOf<const V extends string>(...values: V[]): EnumSchema<V> {
  return { kind: 'enum', values };
}
/** An array of `items` (CDDL `[* items]`). */
export function arrayOf<I extends Schema>(items: I): ArraySchema<I> {
  return { kind: 'array', items };
}
/** Marks a field optional (CDDL `? key: type`). */
export function optional<I extends Schema>(inner: I): OptionalSchema<I> {
  return { kind: 'optional', inner };
}
/** A closed map of fields that is not itself a message. */
export function struct<const F extends Fields>(fields: F): StructSchema<F> {
  return { kind: 'struct', fields };
}
/** A message: `v`, `type` and the given fields. */
export function message<const T extends string, const F extends Fields>(
  type: T,
  fields: F,
): MessageSchema<F, T> {
  return { kind: 'message', type, fields };
}

// --- checking -------------------------------------------------------------------------------------------

/** Where a check runs, for the wording of its errors. */
export interface CheckContext {
  /** "decode" or "encode". */
  readonly action: string;
  /** The message type being checked. */
  readonly type: string;
}

function invalid(ctx: CheckContext, path: string, state: string): ProtocolError {
  const where = path === '' ? '' : `${path} `;
  return new ProtocolError(
    'ERR_MESSAGE_INVALID',
    `Cannot ${ctx.action} ${ctx.type} message: ${where}${state}`,
  );
}

/** True for the plain or null-prototype objects that stand for CBOR maps. */
export function isPlainMap(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

// Own data properties only: a getter could answer differently on the next read, after the check.
function readOwn(ctx: CheckContext, path: string, map: object, key: string): unknown {
  const d = Object.getOwnPropertyDescriptor(map, key);
  if (d === undefined) return undefined;
  if (!('value' in d)) throw invalid(ctx, path, 'is an accessor, not a data property');
  return d.value;
}

function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  // defineProperty rather than assignment for `__proto__`, so that it stays an ordinary key; assignment
  // otherwise, which makes the same own data property several times faster.
  if (key === '__proto__')
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function checkMap(
  ctx: CheckContext,
  path: string,
  value: unknown,
  fields: Fields,
  header: { readonly type: string } | undefined,
): Record<string, unknown> {
  if (!isPlainMap(value)) throw invalid(ctx, path, 'is not a map');
  if (Object.getOwnPropertySymbols(value).length > 0) throw invalid(ctx, path, 'has symbol keys');
  for (const key of Object.keys(value)) {
    const known = Object.hasOwn(fields, key) || (header !== undefined && (key === 'v' || key === 'type'));
    if (!known) throw invalid(ctx, path, `has the unknown key ${JSON.stringify(key)}`);
  }
  const out: Record<string, unknown> = {};
  if (header !== undefined) {
    if (readOwn(ctx, join(path, 'v'), value, 'v') !== PROTOCOL_VERSION) {
      throw invalid(ctx, join(path, 'v'), `must be ${PROTOCOL_VERSION}`);
    }
    if (readOwn(ctx, join(path, 'type'), value, 'type') !== header.type) {
      throw invalid(ctx, join(path, 'type'), `must be ${JSON.stringify(header.type)}`);
    }
    out['v'] = PROTOCOL_VERSION;
    out['type'] = header.type;
  }
  for (const [key, field] of Object.entries(fields)) {
    const at = join(path, key);
    const present = Object.hasOwn(value, key);
    if (field.kind === 'optional') {
      if (!present) continue;
      const v = readOwn(ctx, at, value, key);
      if (v === undefined || v === null)
        throw invalid(ctx, at, 'must be absent rather than null or undefined');
      setOwn(out, key, checkValue(ctx, at, v, field.inner));
    } else {
      if (!present) throw invalid(ctx, at, 'is missing');
      setOwn(out, key, checkValue(ctx, at, readOwn(ctx, at, value, key), field));
    }
  }
  return out;
}

/**
 * Checks `value` against `schema` and returns a fresh copy holding only what the schema declares, so the
 * caller never keeps a reference to unchecked structure. Throws `ERR_MESSAGE_INVALID` naming the path.
 */
export function checkValue(ctx: CheckContext, path: string, value: unknown, schema: Schema): unknown {
  switch (schema.kind) {
    case 'tstr':
      if (typeof value !== 'string') throw invalid(ctx, path, 'must be a text string');
      return value;
    case 'enum':
      if (typeof value !== 'string' || !(schema.values as readonly string[]).includes(value)) {
        throw invalid(ctx, path, `must be one of ${schema.values.map((v) => JSON.stringify(v)).join(', ')}`);
      }
      return value;
    case 'bstr':
      if (!(value instanceof Uint8Array)) throw invalid(ctx, path, 'must be a byte string');
      if (schema.size !== undefined && value.length !== schema.size) {
        throw invalid(ctx, path, `must be ${schema.size} bytes long, not ${value.length}`);
      }
      return value;
    case 'uint':
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
        throw invalid(ctx, path, 'must be an unsigned integer no larger than 2^53 - 1');
      }
      return value;
    case 'int':
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
        throw invalid(ctx, path, 'must be an integer between -(2^53 - 1) and 2^53 - 1');
      }
      return value;
    case 'bool':
      if (typeof value !== 'boolean') throw invalid(ctx, path, 'must be true or false');
      return value;
    case 'array': {
      if (!Array.isArray(value)) throw invalid(ctx, path, 'must be an array');
      const out: unknown[] = [];
      for (let i = 0; i < value.length; i++) {
        const at = `${path}[${i}]`;
        if (!Object.hasOwn(value, i)) throw invalid(ctx, at, 'is missing');
        out.push(checkValue(ctx, at, readOwn(ctx, at, value, String(i)), schema.items));
      }
      return out;
    }
    case 'text-map': {
      if (!isPlainMap(value)) throw invalid(ctx, path, 'must be a map');
      if (Object.getOwnPropertySymbols(value).length > 0) throw invalid(ctx, path, 'has symbol keys');
      const out: Record<string, string> = {};
      for (const key of Object.keys(value)) {
        const v = readOwn(ctx, join(path, key), value, key);
        if (typeof v !== 'string') throw invalid(ctx, join(path, key), 'must be a text string');
        setOwn(out, key, v);
      }
      return out;
    }
    case 'struct':
      return checkMap(ctx, path, value, schema.fields, undefined);
    case 'message':
      return checkMap(ctx, path, value, schema.fields, schema);
  }
}
