// Small checks of decoded values' shape (JSON, CBOR maps, TOML tables), shared by every decoder that reads
// a record field by field. They answer; the caller words the error in its own area's code, so a refusal
// still says which policy, collateral or certificate field was wrong. Imports nothing of the project.

/**
 * Whether `value` is a plain record: an object made by a decoder (`JSON.parse`, the CBOR reader, a TOML
 * parser) or a literal, whose prototype is `Object.prototype` or null. Arrays, byte arrays, dates, maps and
 * class instances are not records, so a field that should hold a table cannot be given one of those.
 */
export function isRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** The first own key of `record` that `allowed` does not list, or undefined when there is none. */
export function unknownKey(record: Record<string, unknown>, allowed: readonly string[]): string | undefined {
  return Object.keys(record).find((k) => !allowed.includes(k));
}

/** The first key of `required` that `record` does not hold as its own, or undefined when it holds them all. */
export function missingKey(record: Record<string, unknown>, required: readonly string[]): string | undefined {
  return required.find((k) => !Object.hasOwn(record, k));
}
