// A parser and validator for the subset of CDDL (RFC 8610) that docs/protocol.cddl uses: type rules and
// group rules, type choices, literal text and integers, the standard prelude types, integer ranges, the
// .size/.le/.lt/.ge/.gt/.eq/.ne controls, maps with bareword, literal or type keys, arrays, occurrence
// indicators and group references. Anything outside the subset is a parse error, so the spec cannot
// drift into constructs that would be validated loosely.
//
// The npm package `cddl` parses the file too, but its AST does not tell `{ ... }` from `( ... )` nor
// `tstr => x` from `"tstr" => x`, which are exactly the distinctions a validator needs.
//
// Values are the CBOR data model of src/protocol/cbor.ts: maps are plain or null-prototype objects with
// text keys, byte strings are Uint8Array, integers are numbers or bigints.

export type Occur = { readonly min: number; readonly max: number };

export type Type = readonly Type1[];

export type Type1 =
  | { readonly kind: 'prim'; readonly name: PrimName }
  | { readonly kind: 'ref'; readonly name: string }
  | { readonly kind: 'text'; readonly value: string }
  | { readonly kind: 'int'; readonly value: bigint }
  | { readonly kind: 'map'; readonly group: Group }
  | { readonly kind: 'array'; readonly group: Group }
  | { readonly kind: 'paren'; readonly type: Type }
  | { readonly kind: 'range'; readonly min: Type1; readonly max: Type1; readonly inclusive: boolean }
  | { readonly kind: 'control'; readonly target: Type1; readonly op: ControlOp; readonly arg: Type1 };

export type Group = readonly GroupChoice[];
export type GroupChoice = readonly Entry[];

export type Key =
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'type'; readonly type: Type1; readonly cut: boolean };

export type Entry =
  | { readonly kind: 'member'; readonly occur: Occur; readonly key: Key | undefined; readonly type: Type }
  | { readonly kind: 'group'; readonly occur: Occur; readonly group: Group };

export type Rule =
  | { readonly kind: 'type'; readonly type: Type }
  | { readonly kind: 'group'; readonly group: Group };

export type Spec = ReadonlyMap<string, Rule>;

const PRIMS = [
  'any',
  'uint',
  'nint',
  'int',
  'tstr',
  'text',
  'bstr',
  'bytes',
  'bool',
  'true',
  'false',
  'nil',
  'null',
];
type PrimName = (typeof PRIMS)[number];
const CONTROLS = ['size', 'le', 'lt', 'ge', 'gt', 'eq', 'ne'] as const;
type ControlOp = (typeof CONTROLS)[number];

// --- lexer ----------------------------------------------------------------------------------------------

type Token =
  | { readonly t: 'id'; readonly v: string; readonly at: number }
  | { readonly t: 'text'; readonly v: string; readonly at: number }
  | { readonly t: 'int'; readonly v: bigint; readonly at: number }
  | { readonly t: 'ctl'; readonly v: string; readonly at: number }
  | { readonly t: 'punct'; readonly v: string; readonly at: number }
  | { readonly t: 'eof'; readonly v: ''; readonly at: number };

const PUNCT = ['...', '..', '//', '=>', '=', '/', '(', ')', '{', '}', '[', ']', ',', ':', '?', '*', '+', '^'];

function lex(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  const id = /[A-Za-z@_$](?:[A-Za-z0-9@_$]|-(?=[A-Za-z0-9@_$]))*/y;
  const int = /-?(?:0|[1-9][0-9]*)/y;
  const ctl = /\.([a-z]+)/y;
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    if (c === ';') {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    if (c === '"') {
      let v = '';
      let j = i + 1;
      for (;;) {
        const d = src[j];
        if (d === undefined || d === '\n') throw syntaxError(src, i, 'unterminated text literal');
        if (d === '"') break;
        if (d === '\\') {
          const e = src[j + 1];
          if (e !== '"' && e !== '\\') throw syntaxError(src, j, 'unsupported escape');
          v += e;
          j += 2;
          continue;
        }
        v += d;
        j++;
      }
      out.push({ t: 'text', v, at: i });
      i = j + 1;
      continue;
    }
    int.lastIndex = i;
    const m = int.exec(src);
    if (m !== null && (c !== '-' || /[0-9]/.test(src[i + 1] ?? ''))) {
      if (/[0-9A-Za-z]/.test(src[int.lastIndex] ?? '')) throw syntaxError(src, i, 'unsupported number');
      if (src.startsWith('.', int.lastIndex) && /[0-9]/.test(src[int.lastIndex + 1] ?? '')) {
        throw syntaxError(src, i, 'floating-point literals are not in the subset');
      }
      out.push({ t: 'int', v: BigInt(m[0]), at: i });
      i = int.lastIndex;
      continue;
    }
    ctl.lastIndex = i;
    const k = ctl.exec(src);
    if (k !== null) {
      out.push({ t: 'ctl', v: k[1]!, at: i });
      i = ctl.lastIndex;
      continue;
    }
    id.lastIndex = i;
    const n = id.exec(src);
    if (n !== null) {
      out.push({ t: 'id', v: n[0], at: i });
      i = id.lastIndex;
      continue;
    }
    const p = PUNCT.find((s) => src.startsWith(s, i));
    if (p === undefined) throw syntaxError(src, i, `unexpected character ${JSON.stringify(c)}`);
    out.push({ t: 'punct', v: p, at: i });
    i += p.length;
  }
  out.push({ t: 'eof', v: '', at: src.length });
  return out;
}

function syntaxError(src: string, at: number, what: string): Error {
  const before = src.slice(0, at);
  const line = before.split('\n').length;
  const col = at - before.lastIndexOf('\n');
  return new SyntaxError(`Cannot parse CDDL at ${line}:${col}: ${what}`);
}

// --- parser ---------------------------------------------------------------------------------------------

class Parser {
  readonly #src: string;
  readonly #tokens: Token[];
  #i = 0;

  constructor(src: string) {
    this.#src = src;
    this.#tokens = lex(src);
  }

  get #peek(): Token {
    return this.#tokens[this.#i]!;
  }

  #next(): Token {
    const t = this.#tokens[this.#i]!;
    if (t.t !== 'eof') this.#i++;
    return t;
  }

  #isPunct(v: string, offset = 0): boolean {
    const t = this.#tokens[this.#i + offset];
    return t !== undefined && t.t === 'punct' && t.v === v;
  }

  #expect(v: string): void {
    const t = this.#next();
    if (t.t !== 'punct' || t.v !== v) throw this.#error(t, `expected ${JSON.stringify(v)}`);
  }

  #error(t: Token, what: string): Error {
    return syntaxError(
      this.#src,
      t.at,
      `${what}, found ${t.t === 'eof' ? 'the end' : JSON.stringify(String(t.v))}`,
    );
  }

  spec(): Map<string, Rule> {
    const rules = new Map<string, Rule>();
    while (this.#peek.t !== 'eof') {
      const name = this.#next();
      if (name.t !== 'id') throw this.#error(name, 'expected a rule name');
      if (this.#isPunct('/') || this.#isPunct('//'))
        throw this.#error(this.#peek, 'choice additions are not in the subset');
      this.#expect('=');
      if (rules.has(name.v)) throw this.#error(name, 'the rule is defined twice');
      rules.set(name.v, this.#ruleBody());
    }
    return rules;
  }

  // `name = ( ... )` is a group rule unless the parentheses hold a single bare type.
  #ruleBody(): Rule {
    if (this.#isPunct('(')) {
      const start = this.#i;
      this.#next();
      const group = this.#group(')');
      this.#expect(')');
      const only = group.length === 1 && group[0]!.length === 1 ? group[0]![0]! : undefined;
      const bareType =
        only !== undefined &&
        only.kind === 'member' &&
        only.key === undefined &&
        only.occur.min === 1 &&
        only.occur.max === 1;
      if (!bareType) return { kind: 'group', group };
      this.#i = start;
    }
    return { kind: 'type', type: this.#type() };
  }

  #type(): Type {
    const options: Type1[] = [this.#type1()];
    while (this.#isPunct('/')) {
      this.#next();
      options.push(this.#type1());
    }
    return options;
  }

  #type1(): Type1 {
    const first = this.#type2();
    if (this.#isPunct('..') || this.#isPunct('...')) {
      const inclusive = this.#next().v === '..';
      return { kind: 'range', min: first, max: this.#type2(), inclusive };
    }
    if (this.#peek.t === 'ctl') {
      const t = this.#next();
      if (!(CONTROLS as readonly string[]).includes(t.v as string)) {
        throw this.#error(t, 'this control operator is not in the subset');
      }
      return { kind: 'control', target: first, op: t.v as ControlOp, arg: this.#type2() };
    }
    return first;
  }

  #type2(): Type1 {
    const t = this.#next();
    switch (t.t) {
      case 'text':
        return { kind: 'text', value: t.v };
      case 'int':
        return { kind: 'int', value: t.v };
      case 'id':
        if (PRIMS.includes(t.v)) return { kind: 'prim', name: t.v };
        return { kind: 'ref', name: t.v };
      case 'punct':
        if (t.v === '{') {
          const group = this.#group('}');
          this.#expect('}');
          return { kind: 'map', group };
        }
        if (t.v === '[') {
          const group = this.#group(']');
          this.#expect(']');
          return { kind: 'array', group };
        }
        if (t.v === '(') {
          const type = this.#type();
          this.#expect(')');
          return { kind: 'paren', type };
        }
        throw this.#error(t, 'expected a type');
      default:
        throw this.#error(t, 'expected a type');
    }
  }

  #group(close: string): Group {
    const choices: GroupChoice[] = [];
    let entries: Entry[] = [];
    for (;;) {
      if (this.#isPunct(close)) break;
      if (this.#isPunct('//')) {
        this.#next();
        choices.push(entries);
        entries = [];
        continue;
      }
      entries.push(this.#entry());
      if (this.#isPunct(',')) this.#next();
    }
    choices.push(entries);
    return choices;
  }

  #occur(): Occur {
    if (this.#isPunct('?')) {
      this.#next();
      return { min: 0, max: 1 };
    }
    if (this.#isPunct('+')) {
      this.#next();
      return { min: 1, max: Number.POSITIVE_INFINITY };
    }
    let min = 0;
    if (this.#peek.t === 'int' && this.#isPunct('*', 1)) min = Number(this.#next().v);
    if (this.#isPunct('*')) {
      this.#next();
      let max = Number.POSITIVE_INFINITY;
      if (this.#peek.t === 'int') max = Number(this.#next().v);
      return { min, max };
    }
    return { min: 1, max: 1 };
  }

  #entry(): Entry {
    const occur = this.#occur();
    if (this.#isPunct('(')) {
      this.#next();
      const group = this.#group(')');
      this.#expect(')');
      return { kind: 'group', occur, group };
    }
    // A bareword or a text value followed by ':' is a member name.
    const t = this.#peek;
    if ((t.t === 'id' || t.t === 'text') && this.#isPunct(':', 1)) {
      this.#next();
      this.#next();
      return { kind: 'member', occur, key: { kind: 'name', name: t.v }, type: this.#type() };
    }
    const first = this.#type1();
    let cut = false;
    if (this.#isPunct('^')) {
      this.#next();
      cut = true;
    }
    if (this.#isPunct('=>')) {
      this.#next();
      return { kind: 'member', occur, key: { kind: 'type', type: first, cut }, type: this.#type() };
    }
    if (cut) throw this.#error(this.#peek, 'expected "=>" after "^"');
    const rest: Type1[] = [first];
    while (this.#isPunct('/')) {
      this.#next();
      rest.push(this.#type1());
    }
    return { kind: 'member', occur, key: undefined, type: rest };
  }
}

/** Parses CDDL source in the subset; throws a SyntaxError naming line and column otherwise. */
export function parseCddl(src: string): Spec {
  const spec = new Parser(src).spec();
  for (const [name, rule] of spec) checkRefs(spec, name, rule);
  return spec;
}

function checkRefs(spec: Spec, name: string, rule: Rule): void {
  const visitType = (type: Type): void => {
    for (const t of type) visitType1(t);
  };
  const visitType1 = (t: Type1): void => {
    switch (t.kind) {
      case 'ref':
        if (!spec.has(t.name))
          throw new SyntaxError(`Cannot parse CDDL: rule ${name} refers to undefined ${t.name}`);
        return;
      case 'map':
      case 'array':
        visitGroup(t.group);
        return;
      case 'paren':
        visitType(t.type);
        return;
      case 'range':
        visitType1(t.min);
        visitType1(t.max);
        return;
      case 'control':
        visitType1(t.target);
        visitType1(t.arg);
        return;
      default:
        return;
    }
  };
  const visitGroup = (group: Group): void => {
    for (const choice of group) {
      for (const e of choice) {
        if (e.kind === 'group') visitGroup(e.group);
        else {
          if (e.key?.kind === 'type') visitType1(e.key.type);
          visitType(e.type);
        }
      }
    }
  };
  if (rule.kind === 'type') visitType(rule.type);
  else visitGroup(rule.group);
}

// --- validator ------------------------------------------------------------------------------------------

/** Why a value does not match, or undefined when it does. */
export type Mismatch = string | undefined;

function isMap(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function isInteger(value: unknown): value is number | bigint {
  return typeof value === 'bigint' || (typeof value === 'number' && Number.isInteger(value));
}

const utf8 = new TextEncoder();

class Validator {
  readonly #spec: Spec;

  constructor(spec: Spec) {
    this.#spec = spec;
  }

  rule(name: string): Rule {
    const rule = this.#spec.get(name);
    if (rule === undefined) throw new Error(`No CDDL rule named ${name}`);
    return rule;
  }

  type(value: unknown, type: Type, path: string): Mismatch {
    const reasons: string[] = [];
    for (const t of type) {
      const r = this.type1(value, t, path);
      if (r === undefined) return undefined;
      reasons.push(r);
    }
    return reasons.length === 1 ? reasons[0] : `${path}: no choice matches (${reasons.join(' | ')})`;
  }

  // Resolves a range bound or control argument to a literal.
  #literal(t: Type1): Type1 {
    if (t.kind === 'ref') {
      const rule = this.rule(t.name);
      if (rule.kind === 'type' && rule.type.length === 1) return this.#literal(rule.type[0]!);
    }
    if (t.kind === 'paren' && t.type.length === 1) return this.#literal(t.type[0]!);
    if (t.kind !== 'int' && t.kind !== 'text')
      throw new Error('CDDL bound or control argument is not a literal');
    return t;
  }

  #intLiteral(t: Type1): bigint {
    const l = this.#literal(t);
    if (l.kind !== 'int') throw new Error('CDDL numeric bound is not an integer');
    return l.value;
  }

  type1(value: unknown, t: Type1, path: string): Mismatch {
    switch (t.kind) {
      case 'prim':
        return this.#prim(value, t.name, path);
      case 'ref': {
        const rule = this.rule(t.name);
        if (rule.kind === 'group') throw new Error(`CDDL group ${t.name} is used as a type`);
        const r = this.type(value, rule.type, path);
        return r === undefined ? undefined : `${r} (in ${t.name})`;
      }
      case 'text':
        return value === t.value ? undefined : `${path}: expected ${JSON.stringify(t.value)}`;
      case 'int':
        return isInteger(value) && BigInt(value) === t.value ? undefined : `${path}: expected ${t.value}`;
      case 'paren':
        return this.type(value, t.type, path);
      case 'range': {
        if (!isInteger(value)) return `${path}: expected an integer`;
        const v = BigInt(value);
        const min = this.#intLiteral(t.min);
        const max = this.#intLiteral(t.max);
        const ok = v >= min && (t.inclusive ? v <= max : v < max);
        return ok ? undefined : `${path}: ${v} is outside ${min}${t.inclusive ? '..' : '...'}${max}`;
      }
      case 'control':
        return this.#control(value, t.target, t.op, t.arg, path);
      case 'map':
        return this.#map(value, t.group, path);
      case 'array':
        return this.#array(value, t.group, path);
    }
  }

  #prim(value: unknown, name: PrimName, path: string): Mismatch {
    let ok: boolean;
    switch (name) {
      case 'any':
        ok = true;
        break;
      case 'uint':
        ok = isInteger(value) && BigInt(value) >= 0n;
        break;
      case 'nint':
        ok = isInteger(value) && BigInt(value) < 0n;
        break;
      case 'int':
        ok = isInteger(value);
        break;
      case 'tstr':
      case 'text':
        ok = typeof value === 'string';
        break;
      case 'bstr':
      case 'bytes':
        ok = value instanceof Uint8Array;
        break;
      case 'bool':
        ok = typeof value === 'boolean';
        break;
      case 'true':
        ok = value === true;
        break;
      case 'false':
        ok = value === false;
        break;
      default:
        ok = value === null;
    }
    return ok ? undefined : `${path}: expected ${name}`;
  }

  #control(value: unknown, target: Type1, op: ControlOp, arg: Type1, path: string): Mismatch {
    const base = this.type1(value, target, path);
    if (base !== undefined) return base;
    if (op === 'size') {
      let size: bigint;
      if (value instanceof Uint8Array) size = BigInt(value.length);
      else if (typeof value === 'string') size = BigInt(utf8.encode(value).length);
      else throw new Error('CDDL .size is only in the subset for bstr and tstr');
      if (arg.kind === 'range') {
        return this.type1(size, arg, `${path} size`);
      }
      const want = this.#intLiteral(arg);
      return size === want ? undefined : `${path}: size ${size}, expected ${want}`;
    }
    if (!isInteger(value)) throw new Error(`CDDL .${op} is only in the subset for integers`);
    const v = BigInt(value);
    const w = this.#intLiteral(arg);
    const ok = { le: v <= w, lt: v < w, ge: v >= w, gt: v > w, eq: v === w, ne: v !== w }[op];
    return ok ? undefined : `${path}: ${v} is not .${op} ${w}`;
  }

  // Flattens group references and parenthesised groups into one entry list (one choice each).
  #entries(group: Group): Entry[][] {
    let results: Entry[][] = [[]];
    const expandChoice = (choice: GroupChoice): Entry[][] => {
      let acc: Entry[][] = [[]];
      for (const e of choice) {
        let alternatives: Entry[][];
        const ref =
          e.kind === 'member' && e.key === undefined && e.type.length === 1 ? e.type[0]! : undefined;
        const groupRule = ref?.kind === 'ref' ? this.rule(ref.name) : undefined;
        if (e.kind === 'group') {
          if (e.occur.min !== 1 || e.occur.max !== 1)
            throw new Error('CDDL group occurrence is not in the subset');
          alternatives = this.#entries(e.group);
        } else if (groupRule?.kind === 'group') {
          if (e.occur.min !== 1 || e.occur.max !== 1)
            throw new Error('CDDL group occurrence is not in the subset');
          alternatives = this.#entries(groupRule.group);
        } else {
          alternatives = [[e]];
        }
        const next: Entry[][] = [];
        for (const a of acc) for (const b of alternatives) next.push([...a, ...b]);
        acc = next;
      }
      return acc;
    };
    results = group.flatMap(expandChoice);
    return results;
  }

  #map(value: unknown, group: Group, path: string): Mismatch {
    if (!isMap(value)) return `${path}: expected a map`;
    const reasons: string[] = [];
    for (const entries of this.#entries(group)) {
      const r = this.#mapChoice(value, entries, path);
      if (r === undefined) return undefined;
      reasons.push(r);
    }
    return reasons.length === 1 ? reasons[0] : `${path}: no group choice matches (${reasons.join(' | ')})`;
  }

  #mapChoice(value: Record<string, unknown>, entries: readonly Entry[], path: string): Mismatch {
    const remaining = new Set(Object.keys(value));
    for (const e of entries) {
      if (e.kind !== 'member' || e.key === undefined) return `${path}: a map entry has no key`;
      if (e.key.kind === 'name') {
        const at = path === '' ? e.key.name : `${path}.${e.key.name}`;
        if (!remaining.has(e.key.name)) {
          if (e.occur.min > 0) return `${at}: missing`;
          continue;
        }
        const r = this.type(value[e.key.name], e.type, at);
        if (r !== undefined) return r;
        remaining.delete(e.key.name);
        continue;
      }
      let count = 0;
      for (const k of [...remaining]) {
        if (this.type1(k, e.key.type, `${path} key`) !== undefined) continue;
        const at = path === '' ? k : `${path}.${k}`;
        const r = this.type(value[k], e.type, at);
        if (r !== undefined) return r;
        remaining.delete(k);
        count++;
      }
      if (count < e.occur.min || count > e.occur.max) return `${path}: ${count} entries match a computed key`;
    }
    if (remaining.size > 0) return `${path}: unexpected keys ${[...remaining].join(', ')}`;
    return undefined;
  }

  #array(value: unknown, group: Group, path: string): Mismatch {
    if (!Array.isArray(value)) return `${path}: expected an array`;
    const reasons: string[] = [];
    for (const entries of this.#entries(group)) {
      const r = this.#arrayChoice(value, entries, path);
      if (r === undefined) return undefined;
      reasons.push(r);
    }
    return reasons.length === 1 ? reasons[0] : `${path}: no group choice matches (${reasons.join(' | ')})`;
  }

  // Greedy matching: enough for the protocol's arrays, which each hold one repeated entry.
  #arrayChoice(value: readonly unknown[], entries: readonly Entry[], path: string): Mismatch {
    let pos = 0;
    for (const e of entries) {
      if (e.kind !== 'member') throw new Error('CDDL array group entry is not in the subset');
      let count = 0;
      let last: Mismatch;
      while (count < e.occur.max && pos < value.length) {
        last = this.type(value[pos], e.type, `${path}[${pos}]`);
        if (last !== undefined) break;
        pos++;
        count++;
      }
      if (count < e.occur.min) return last ?? `${path}: too few elements`;
    }
    if (pos !== value.length) return this.#firstMismatch(value, entries, pos, path);
    return undefined;
  }

  #firstMismatch(value: readonly unknown[], entries: readonly Entry[], pos: number, path: string): string {
    const e = entries[entries.length - 1];
    if (e?.kind === 'member') {
      const r = this.type(value[pos], e.type, `${path}[${pos}]`);
      if (r !== undefined) return r;
    }
    return `${path}: unexpected element ${pos}`;
  }
}

/** Checks `value` against the rule `name`; returns why it does not match, or undefined if it does. */
export function validate(spec: Spec, name: string, value: unknown): Mismatch {
  const v = new Validator(spec);
  const rule = v.rule(name);
  if (rule.kind === 'group') throw new Error(`CDDL rule ${name} is a group, not a type`);
  return v.type(value, rule.type, '');
}

/**
 * The `type` literal of every map rule that carries a `type: "<literal>"` member, by rule name: the
 * message types the spec declares.
 */
export function messageTypesOf(spec: Spec): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, rule] of spec) {
    if (rule.kind !== 'type' || rule.type.length !== 1) continue;
    const t = rule.type[0]!;
    if (t.kind !== 'map') continue;
    for (const choice of t.group) {
      for (const e of choice) {
        if (e.kind !== 'member' || e.key?.kind !== 'name' || e.key.name !== 'type') continue;
        const lit = e.type.length === 1 ? e.type[0]! : undefined;
        if (lit?.kind === 'text') out.set(name, lit.value);
      }
    }
  }
  return out;
}
