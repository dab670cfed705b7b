// fast-check generators built from the message schemas, so every message type (and every field of it)
// is covered without a second hand-kept list; plus a generator of arbitrary values of the CBOR data model.
import fc from 'fast-check';
import type { CborMap, CborValue } from '../../../src/protocol/cbor.ts';
import {
  type Message,
  type MessageType,
  messageSchemas,
  messageTypes,
} from '../../../src/protocol/messages.ts';
import type { Fields, Schema } from '../../../src/protocol/schema.ts';

/** Text including astral characters, never a lone surrogate. */
export const text = (maxLength = 12): fc.Arbitrary<string> =>
  fc.oneof(fc.string({ unit: 'binary', maxLength }), fc.constantFrom('', '__proto__', 'constructor', 'a'));

/** Integers biased towards the boundaries of CBOR's head encodings. */
export const uintArb: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(0, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER),
  fc.maxSafeNat(),
  fc.nat(1000),
);
export const intArb: fc.Arbitrary<number> = fc.oneof(
  uintArb,
  uintArb.map((n) => (n === 0 ? 0 : -n)),
);

function ownMap<V>(entries: readonly (readonly [string, V])[], nullProto: boolean): Record<string, V> {
  const out: Record<string, V> = nullProto ? Object.create(null) : {};
  for (const [k, v] of entries) {
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function fieldsArb(fields: Fields, extra: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<unknown> {
  const model: Record<string, fc.Arbitrary<unknown>> = { ...extra };
  const required: string[] = Object.keys(extra);
  for (const [key, field] of Object.entries(fields)) {
    if (field.kind === 'optional') model[key] = arbitraryFor(field.inner);
    else {
      model[key] = arbitraryFor(field);
      required.push(key);
    }
  }
  return fc.record(model, { requiredKeys: required, noNullPrototype: true });
}

/** Values a schema accepts, as a sender would build them (plain objects). */
export function arbitraryFor(schema: Schema): fc.Arbitrary<unknown> {
  switch (schema.kind) {
    case 'tstr':
      return text();
    case 'enum':
      return fc.constantFrom(...schema.values);
    case 'bstr':
      return schema.size === undefined
        ? fc.uint8Array({ maxLength: 40 })
        : fc.uint8Array({ minLength: schema.size, maxLength: schema.size });
    case 'uint':
      return uintArb;
    case 'int':
      return intArb;
    case 'bool':
      return fc.boolean();
    case 'array':
      return fc.array(arbitraryFor(schema.items), { maxLength: 4 });
    case 'text-map':
      return fc
        .uniqueArray(fc.tuple(text(), text()), { selector: ([k]) => k, maxLength: 5 })
        .map((entries) => ownMap(entries, false));
    case 'struct':
      return fieldsArb(schema.fields, {});
    case 'message':
      return fieldsArb(schema.fields, { v: fc.constant(1), type: fc.constant(schema.type) });
  }
}

/** Valid messages of one type. */
export function messageArb<T extends MessageType>(type: T): fc.Arbitrary<Message> {
  return arbitraryFor(messageSchemas[type]) as fc.Arbitrary<Message>;
}

/** Valid messages of every type. */
export const anyMessageArb: fc.Arbitrary<Message> = fc.oneof(...messageTypes.map((t) => messageArb(t)));

/**
 * Any value of the CBOR data model, shaped as decode() returns it: maps with null prototypes, bigints
 * only outside the safe-integer range. decode(encode(v)) must give back exactly v.
 */
export const cborValueArb: fc.Arbitrary<CborValue> = fc.letrec<{ value: CborValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    intArb,
    fc.oneof(
      fc.bigInt({ min: BigInt(Number.MAX_SAFE_INTEGER) + 1n, max: (1n << 64n) - 1n }),
      fc.bigInt({ min: -(1n << 64n), max: -BigInt(Number.MAX_SAFE_INTEGER) - 1n }),
    ),
    text(),
    fc.uint8Array({ maxLength: 30 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc
      .uniqueArray(fc.tuple(text(6), tie('value')), { selector: ([k]) => k, maxLength: 4 })
      .map((entries) => ownMap(entries, true) as CborMap),
  ),
})).value;
