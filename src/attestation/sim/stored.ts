// Reading the JSON files the simulators keep (the simulated AMD root, the simulated Intel platform): one strict
// reader, failing with ERR_SIM_ROOT_INVALID and a message naming what was being loaded.
import { isRecord, missingKey, unknownKey } from '../../lib/json.ts';
import { tryFromBase64 } from '../bytes.ts';
import { AttestationError } from '../errors.ts';

/** The checks of one kind of stored simulator file; `what` names it in messages ("simulated root"). */
export interface StoredReader {
  /** Fails with ERR_SIM_ROOT_INVALID: "Cannot load <what>: <state>". */
  invalid(state: string, cause?: unknown): never;
  /** Fails unless `value` has exactly `keys`; `where` prefixes the field named ("tcb."). */
  exactKeys(value: Record<string, unknown>, keys: readonly string[], where: string): void;
  /** The non-empty canonical base64 bytes of `doc[key]`. */
  base64Field(doc: Record<string, unknown>, key: string): Uint8Array;
  /** The top-level object of a file: UTF-8 JSON, exactly `keys`, `format` as given. */
  document(bytes: Uint8Array, keys: readonly string[], format: string): Record<string, unknown>;
}

/** A reader for stored files of the kind `what`. */
export function storedReader(what: string): StoredReader {
  const invalid = (state: string, cause?: unknown): never => {
    throw new AttestationError(
      'ERR_SIM_ROOT_INVALID',
      `Cannot load ${what}: ${state}`,
      cause === undefined ? undefined : { cause },
    );
  };
  const exactKeys = (value: Record<string, unknown>, keys: readonly string[], where: string): void => {
    const unknown = unknownKey(value, keys);
    if (unknown !== undefined) invalid(`unknown field ${where}${unknown}`);
    const missing = missingKey(value, keys);
    if (missing !== undefined) invalid(`missing field ${where}${missing}`);
  };
  return {
    invalid,
    exactKeys,
    base64Field(doc, key) {
      const v = doc[key];
      const bytes = typeof v === 'string' ? tryFromBase64(v) : undefined;
      if (bytes === undefined || bytes.byteLength === 0) return invalid(`${key} is not base64`);
      return bytes;
    },
    document(bytes, keys, format) {
      if (!(bytes instanceof Uint8Array)) throw new TypeError(`Cannot load ${what}: expected a Uint8Array`);
      let doc: unknown;
      try {
        doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
      } catch (cause) {
        return invalid('not UTF-8 JSON', cause);
      }
      if (!isRecord(doc)) return invalid('not a JSON object');
      exactKeys(doc, keys, '');
      if (doc['format'] !== format) invalid(`format is not ${format}`);
      return doc;
    },
  };
}
