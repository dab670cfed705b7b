// A small deterministic YAML writer for plain JSON values (the generated objects), rather than a YAML library:
// the objects hold only strings, integers, booleans, arrays and maps, and their output must be the same
// bytes for the same objects. Keys keep their insertion order; a scalar is written plain only when YAML 1.1
// and 1.2 both read it back as the same string, else double-quoted (JSON's escapes are valid YAML); text of
// several lines (an Enarx.toml, a PEM key) is a literal block when that keeps it exact.
import type { Json, JsonObject } from './objects.ts';

/** Words that YAML 1.1 (which many Kubernetes tools still follow) reads as booleans or null. */
const RESERVED = /^(?:y|n|yes|no|true|false|on|off|null|~)$/i;
/** A plain scalar that no YAML reader takes for a number, a date, an alias or syntax. */
const PLAIN = /^[A-Za-z_/][A-Za-z0-9_./@+-]*$/;

/** Whether `text` can be written without quotes and read back as the same string. */
export function isPlainSafe(text: string): boolean {
  return PLAIN.test(text) && !RESERVED.test(text) && !/^[.]?inf$|^nan$/i.test(text);
}

function scalar(text: string): string {
  return isPlainSafe(text) ? text : JSON.stringify(text);
}

/**
 * The header of a literal block for `text` (`|`, `|-` or `|+`), or undefined when a literal block would not
 * keep it exact: a carriage return or another control character, a line of spaces only, a leading space on
 * the first line (it would set the indentation), or no line break at all.
 */
function blockHeader(text: string): string | undefined {
  if (!text.includes('\n')) return undefined;
  if (/[\u0000-\u0008\u000b-\u001f\u007f\u0085\u2028\u2029\ufeff]/.test(text)) return undefined;
  const body = text.replace(/\n+$/, '');
  if (body === '' || body.startsWith(' ') || body.startsWith('\t')) return undefined;
  if (body.split('\n').some((line) => line !== '' && /^[ \t]+$/.test(line))) return undefined;
  const trailing = text.length - body.length;
  return trailing === 0 ? '|-' : trailing === 1 ? '|' : '|+';
}

function isMap(value: Json): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function leaf(value: Json, indent: string): string | undefined {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new TypeError(`Cannot write ${value} as YAML: not an integer`);
    return String(value);
  }
  if (typeof value === 'string') {
    const header = blockHeader(value);
    if (header === undefined) return scalar(value);
    const lines = value.replace(/\n+$/, '').split('\n');
    const extra = header === '|+' ? value.slice(value.replace(/\n+$/, '').length + 1).split('\n') : [];
    return [header, ...lines.map((l) => (l === '' ? '' : `${indent}${l}`)), ...extra.slice(0, -1)].join('\n');
  }
  if (Array.isArray(value) && value.length === 0) return '[]';
  if (isMap(value) && Object.keys(value).length === 0) return '{}';
  return undefined;
}

function write(value: Json, indent: string, out: string[]): void {
  if (Array.isArray(value)) {
    for (const item of value as readonly Json[]) {
      const simple = leaf(item, `${indent}  `);
      if (simple !== undefined) {
        out.push(`${indent}- ${simple}`);
        continue;
      }
      // The item's first line follows the dash; the rest are indented under it.
      const inner: string[] = [];
      write(item, `${indent}  `, inner);
      out.push(`${indent}- ${inner[0]!.slice(indent.length + 2)}`, ...inner.slice(1));
    }
    return;
  }
  if (!isMap(value)) throw new TypeError('Cannot write YAML: expected a map or a list');
  for (const [key, item] of Object.entries(value)) {
    const simple = leaf(item, `${indent}  `);
    if (simple !== undefined) out.push(`${indent}${scalar(key)}: ${simple}`);
    else {
      out.push(`${indent}${scalar(key)}:`);
      write(item, `${indent}  `, out);
    }
  }
}

/** One object as a YAML document body (no `---`), ending in a line break. */
export function toYaml(value: JsonObject): string {
  const out: string[] = [];
  write(value, '', out);
  return `${out.join('\n')}\n`;
}

/** Several objects as a YAML stream: each document starts with `---`. */
export function toYamlStream(values: readonly JsonObject[]): string {
  return values.map((v) => `---\n${toYaml(v)}`).join('');
}
