import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProtocolError } from '../../src/protocol/errors.ts';
import {
  arrayOf,
  bstrOfSize,
  checkValue,
  type Infer,
  int,
  message,
  oneOf,
  optional,
  struct,
  textMap,
  tstr,
} from '../../src/protocol/schema.ts';

const ctx = { action: 'decode', type: 'probe' };
const probe = message('probe', {
  name: tstr,
  mode: oneOf('a', 'b'),
  key: bstrOfSize(4),
  tags: arrayOf(tstr),
  env: textMap,
  inner: optional(struct({ n: optional(int) })),
});

// Compile-time checks of the inferred type: these lines fail `tsc` if Infer drifts.
type Probe = Infer<typeof probe>;
const typed: Probe = { v: 1, type: 'probe', name: 'x', mode: 'a', key: new Uint8Array(4), tags: [], env: {} };
// @ts-expect-error a required field cannot be left out
const missing: Probe = { v: 1, type: 'probe', name: 'x', mode: 'a', key: new Uint8Array(4), tags: [] };
// @ts-expect-error an optional field is absent, never undefined, under exactOptionalPropertyTypes
const undef: Probe = { ...typed, inner: undefined };
// @ts-expect-error an enumeration admits only its values
const badMode: Probe = { ...typed, mode: 'c' };
void missing;
void undef;
void badMode;

test('checkValue() returns a copy holding only declared fields', () => {
  const input = { ...typed, inner: { n: -3 } };
  const out = checkValue(ctx, '', input, probe) as Probe;
  assert.deepStrictEqual(out, input);
  assert.notEqual(out, input);
  assert.notEqual(out.inner, input.inner);
});

test('checkValue() names the path of the first bad field', () => {
  const cases: [unknown, RegExp][] = [
    [{ ...typed, inner: { n: 'x' } }, /^Cannot decode probe message: inner\.n must be an integer/],
    [{ ...typed, tags: ['a', 'b', 3] }, /tags\[2\] must be a text string/],
    [{ ...typed, key: new Uint8Array(5) }, /key must be 4 bytes long, not 5/],
    [{ ...typed, mode: 'c' }, /mode must be one of "a", "b"/],
    [{ ...typed, type: 'other' }, /type must be "probe"/],
    [{ ...typed, [Symbol('s')]: 1 }, /has symbol keys/],
  ];
  for (const [value, pattern] of cases) {
    assert.throws(
      () => checkValue(ctx, '', value, probe),
      (err: unknown) =>
        err instanceof ProtocolError && err.code === 'ERR_MESSAGE_INVALID' && pattern.test(err.message),
    );
  }
});

test('checkValue() copies keys named __proto__ and constructor as ordinary keys, leaving prototypes alone', () => {
  // As the CBOR decoder gives maps: null prototype, every key an own data property.
  const env = Object.assign(
    Object.create(null),
    JSON.parse('{"__proto__":"a","constructor":"b","PATH":"/bin"}'),
  );
  const out = checkValue(ctx, '', env, textMap) as Record<string, string>;
  assert.equal(Object.getPrototypeOf(out), Object.prototype);
  assert.deepEqual(Object.keys(out), ['__proto__', 'constructor', 'PATH']);
  assert.equal(Object.getOwnPropertyDescriptor(out, '__proto__')?.value, 'a');
  assert.equal(Object.getOwnPropertyDescriptor(out, 'constructor')?.value, 'b');
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
});
