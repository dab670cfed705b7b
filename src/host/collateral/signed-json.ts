// Intel PCS answers TCB info and QE identity requests with `{"tcbInfo":{...},"signature":"<hex>"}`, where
// the signature covers the exact bytes of the inner object as served. Re-serialising would change those
// bytes, so the inner text is cut out of the response by position, never rebuilt from a parsed value.
import { CollateralError } from './errors.ts';

function invalid(state: string, cause?: unknown): never {
  throw new CollateralError(
    'ERR_COLLATERAL_MALFORMED',
    `Cannot read signed JSON: ${state}`,
    cause === undefined ? undefined : { cause },
  );
}

const WS = new Set([' ', '\t', '\n', '\r']);

function skipWs(text: string, i: number): number {
  while (i < text.length && WS.has(text[i]!)) i++;
  return i;
}

/** End (exclusive) of the string token starting at `i` (an opening quote). */
function skipString(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    const c = text[j];
    if (c === '\\') j++;
    else if (c === '"') return j + 1;
  }
  return invalid('unterminated string');
}

/** End (exclusive) of the JSON value starting at `i`. The text is known to be valid JSON. */
function skipValue(text: string, i: number): number {
  const c = text[i];
  if (c === '"') return skipString(text, i);
  if (c === '{' || c === '[') {
    let depth = 0;
    for (let j = i; j < text.length; j++) {
      const d = text[j];
      if (d === '"') j = skipString(text, j) - 1;
      else if (d === '{' || d === '[') depth++;
      else if (d === '}' || d === ']') {
        depth--;
        if (depth === 0) return j + 1;
      }
    }
    return invalid('unbalanced brackets');
  }
  let j = i;
  while (j < text.length && !WS.has(text[j]!) && text[j] !== ',' && text[j] !== '}' && text[j] !== ']') j++;
  return j;
}

/**
 * The members of the top-level JSON object in `text`, each with the exact source text of its value.
 * Fails with ERR_COLLATERAL_MALFORMED when `text` is not a JSON object or repeats a member name (JSON
 * parsers disagree on which duplicate wins, so a signed document with one is ambiguous).
 */
export function rawJsonMembers(text: string): Map<string, string> {
  if (typeof text !== 'string') throw new TypeError('Cannot read signed JSON: expected a string');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    return invalid('not JSON', cause);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) invalid('not a JSON object');
  const members = new Map<string, string>();
  let i = skipWs(text, 0) + 1;
  for (;;) {
    i = skipWs(text, i);
    if (text[i] === '}') break;
    const keyEnd = skipString(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    i = skipWs(text, keyEnd) + 1; // the colon
    i = skipWs(text, i);
    const end = skipValue(text, i);
    if (members.has(key)) invalid(`member ${JSON.stringify(key)} appears twice`);
    members.set(key, text.slice(i, end));
    i = skipWs(text, end);
    if (text[i] === ',') i++;
  }
  return members;
}

/** A PCS signed document: which member held the body, its exact text and the signature (hex r‖s). */
export interface SignedJson {
  /** `tcbInfo`, `enclaveIdentity` or `qeIdentity`. */
  readonly member: string;
  /** The exact text of the signed object, as served. */
  readonly body: string;
  /** 128 lower-case hex digits: the raw ECDSA P-256 r‖s. */
  readonly signature: string;
  /** The body's `nextUpdate`, after which Intel no longer vouches for it. */
  readonly nextUpdate: Date;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;

/**
 * Splits a PCS response `{"<member>":{...},"signature":"..."}` (member one of `members`) into the exact
 * body text and the signature. Fails with ERR_COLLATERAL_MALFORMED on any other shape.
 *
 * @example
 * const { body, signature } = splitSignedJson(text, ['tcbInfo']);
 */
export function splitSignedJson(text: string, members: readonly string[]): SignedJson {
  const all = rawJsonMembers(text);
  const found = members.filter((m) => all.has(m));
  if (found.length !== 1) invalid(`expected exactly one of ${members.join(', ')}`);
  const member = found[0]!;
  for (const key of all.keys()) {
    if (key !== member && key !== 'signature') invalid(`unexpected member ${JSON.stringify(key)}`);
  }
  const body = all.get(member)!;
  if (!body.startsWith('{')) invalid(`${member} is not an object`);
  const sigText = all.get('signature');
  const signature = sigText === undefined ? undefined : (JSON.parse(sigText) as unknown);
  if (typeof signature !== 'string' || !/^[0-9a-fA-F]{128}$/.test(signature)) {
    invalid('signature must be 128 hex digits');
  }
  const next = (JSON.parse(body) as { nextUpdate?: unknown }).nextUpdate;
  const nextUpdate = typeof next === 'string' && RFC3339.test(next) ? new Date(next) : undefined;
  if (nextUpdate === undefined || Number.isNaN(nextUpdate.getTime())) {
    invalid(`${member}.nextUpdate must be an RFC 3339 time`);
  }
  return { member, body, signature: signature.toLowerCase(), nextUpdate };
}
