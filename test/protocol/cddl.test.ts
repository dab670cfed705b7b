// Holds docs/protocol.cddl and src/protocol/messages.ts together: both declare the same message types,
// and every message the code encodes, decoded back to the CBOR data model, matches its CDDL rule.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type CborMap, type CborValue, decode, encode } from '../../src/protocol/cbor.ts';
import { ProtocolError } from '../../src/protocol/errors.ts';
import { decodeMessage, encodeMessage, type MessageType, messageTypes } from '../../src/protocol/messages.ts';
import { anyMessageArb, cborValueArb, messageArb } from './support/arbitraries.ts';
import { messageTypesOf, parseCddl, type Spec, validate } from './support/cddl.ts';
import { samples } from './support/samples.ts';

const spec: Spec = parseCddl(readFileSync(new URL('../../docs/protocol.cddl', import.meta.url), 'utf8'));

// What goes over the wire, as the receiver sees it before any message check.
const onTheWire = (m: Parameters<typeof encodeMessage>[0]): CborValue => decode(encodeMessage(m));

function assertMatches(rule: string, value: CborValue): void {
  const why = validate(spec, rule, value);
  assert.equal(why, undefined, `${rule}: ${why}`);
}

function assertMismatch(rule: string, value: CborValue, pattern: RegExp): void {
  const why = validate(spec, rule, value);
  assert.notEqual(why, undefined, `${rule} accepted a value it should refuse`);
  assert.match(why!, pattern);
}

function withKey(value: CborValue, key: string, v: CborValue | undefined): CborMap {
  const out: CborMap = Object.assign(Object.create(null), value);
  if (v === undefined) delete out[key];
  else out[key] = v;
  return out;
}

describe('docs/protocol.cddl', () => {
  test('the CDDL declares exactly the message types of messages.ts', () => {
    const declared = messageTypesOf(spec);
    assert.deepStrictEqual([...new Set(declared.values())].sort(), [...messageTypes].sort());
  });

  test('each CDDL message rule is named after its type', () => {
    for (const [rule, type] of messageTypesOf(spec)) assert.equal(rule, type);
  });

  test('the message rule and the four transport groups cover every type once per transport', () => {
    const groups: Record<string, readonly MessageType[]> = {
      'keepmgr-body': [
        'create-keep',
        'keep',
        'keep-list',
        'keep-events',
        'create-deployment',
        'deployment',
        'deployment-list',
        'error',
      ],
      'keep-channel-message': [
        'channel-hello',
        'deploy',
        'attach',
        'notice',
        'stdin',
        'stdin-end',
        'started',
        'stdout',
        'stderr',
        'exit',
        'trap',
        'limit',
        'error',
      ],
      'control-message': ['evidence-request', 'collateral-request', 'evidence', 'keep-event'],
      'loader-message': ['ldr-channel', 'ldr-watch', 'ldr-stop', 'ldr-drain', 'ldr-event'],
    };
    for (const [group, types] of Object.entries(groups)) {
      for (const type of messageTypes) {
        const sample = onTheWire(samples[type][0]!);
        const why = validate(spec, group, sample);
        assert.equal(why === undefined, types.includes(type), `${group} and ${type}: ${why}`);
      }
    }
  });

  for (const type of messageTypes) {
    test(`every ${type} sample matches the CDDL rule ${type} and the message rule`, () => {
      for (const m of samples[type]) {
        const wire = onTheWire(m);
        assertMatches(type, wire);
        assertMatches('message', wire);
      }
    });

    test(`generated ${type} messages match the CDDL rule ${type}`, () => {
      fc.assert(
        fc.property(messageArb(type), (m) => {
          assertMatches(type, onTheWire(m));
        }),
        { numRuns: 60 },
      );
    });
  }

  test('a message does not match the rule of another type', () => {
    for (const type of messageTypes) {
      const wire = onTheWire(samples[type][0]!);
      for (const other of messageTypes) {
        if (other !== type) assertMismatch(other, wire, /./);
      }
    }
  });
});

describe('the CDDL validator', () => {
  const base = onTheWire(samples['create-keep'][1]!);
  const hello = onTheWire(samples['channel-hello'][0]!);

  test('validate() rejects an unknown key', () => {
    assertMismatch('create-keep', withKey(base, 'extra', 1), /unexpected keys extra/);
  });
  test('validate() rejects a missing key', () => {
    assertMismatch('create-keep', withKey(base, 'backend', undefined), /backend: missing/);
  });
  test('validate() accepts a missing optional key', () => {
    assertMatches('create-keep', withKey(base, 'limits', undefined));
  });
  test('validate() rejects a wrong type', () => {
    assertMismatch('channel-hello', withKey(hello, 'nonce', 'x'), /nonce: expected bstr/);
    assertMismatch('create-keep', withKey(base, 'backend', 'sgx'), /backend/);
  });
  test('validate() rejects a wrong version', () => {
    assertMismatch('create-keep', withKey(base, 'v', 2), /v: expected 1/);
  });
  test('validate() rejects a wrong .size', () => {
    assertMismatch('channel-hello', withKey(hello, 'nonce', new Uint8Array(31)), /size 31, expected 32/);
  });
  test('validate() rejects a null optional field', () => {
    assertMismatch('create-keep', withKey(base, 'limits', null), /limits/);
  });
  test('validate() rejects integers outside the safe range', () => {
    const keep = onTheWire(samples.keep[0]!);
    assertMismatch('keep', withKey(keep, 'createdAt', 2n ** 53n), /\.le/);
    assertMismatch('keep', withKey(keep, 'createdAt', -1), /expected uint/);
    assertMismatch('keep', withKey(keep, 'exitCode', -(2n ** 53n)), /outside/);
    assertMatches('keep', withKey(keep, 'exitCode', -Number.MAX_SAFE_INTEGER));
  });
  test('validate() checks every element of an array and every entry of a text map', () => {
    const deploy = onTheWire(samples.deploy[0]!);
    assertMismatch('deploy', withKey(deploy, 'args', ['a', 1]), /args\[1\]/);
    assertMismatch(
      'deploy',
      withKey(deploy, 'env', Object.assign(Object.create(null), { A: 'x', B: 1 })),
      /env\.B/,
    );
    assertMismatch('deploy', withKey(deploy, 'env', []), /expected a map/);
    const list = onTheWire(samples['keep-list'][1]!) as CborMap;
    const keeps = list['keeps'] as CborValue[];
    assertMismatch(
      'keep-list',
      withKey(list, 'keeps', [keeps[0]!, withKey(keeps[1]!, 'state', 'gone')]),
      /keeps\[1\]/,
    );
  });

  test('parseCddl() reads a group rule and inlines it into maps and arrays', () => {
    const s = parseCddl('m = { hdr, ? x: int }\na = [ hdr, * tstr ]\nhdr = ( v: 1 )\n');
    assert.equal(validate(s, 'm', Object.assign(Object.create(null), { v: 1, x: 2 })), undefined);
    assert.notEqual(validate(s, 'm', Object.assign(Object.create(null), { x: 2 })), undefined);
    assert.equal(validate(s, 'a', [1, 'a', 'b']), undefined);
    assert.notEqual(validate(s, 'a', [2, 'a']), undefined);
  });

  test('parseCddl() tells a type key from a literal key', () => {
    const s = parseCddl('t = { * tstr => int }\nl = { "tstr" => int }\n');
    const m = Object.assign(Object.create(null), { a: 1, b: 2 });
    assert.equal(validate(s, 't', m), undefined);
    assert.notEqual(validate(s, 'l', m), undefined);
    assert.equal(validate(s, 'l', Object.assign(Object.create(null), { tstr: 1 })), undefined);
  });

  test('parseCddl() refuses constructs outside the subset and undefined names', () => {
    assert.throws(() => parseCddl('a = tstr .regexp "x"'), SyntaxError);
    assert.throws(() => parseCddl('a = 1.5'), SyntaxError);
    assert.throws(() => parseCddl('a = #6.1(int)'), SyntaxError);
    assert.throws(() => parseCddl('a /= int'), SyntaxError);
    assert.throws(() => parseCddl('a = b'), /undefined b/);
    assert.throws(() => parseCddl('a = int\na = tstr'), /defined twice/);
    assert.throws(() => parseCddl('a = { x: int'), SyntaxError);
  });
});

describe('the CDDL and decodeMessage() agree', () => {
  // Break a valid message one way (drop a key, add one, replace a value, including inside nested maps)
  // and check that the spec and the code reach the same verdict on the result.
  type Mutation = (m: CborMap, key: string, value: CborValue) => CborValue;
  const mutations: Mutation[] = [
    (m, key) => withKey(m, key, undefined),
    (m, key, value) => withKey(m, `${key}x`, value),
    (m, key, value) => withKey(m, key, value),
    (m, key, value) => {
      const inner = m[key];
      if (inner === null || typeof inner !== 'object' || inner instanceof Uint8Array)
        return withKey(m, key, value);
      if (Array.isArray(inner)) return withKey(m, key, [...inner, value]);
      const innerKeys = Object.keys(inner);
      const k = innerKeys[0] ?? 'k';
      return withKey(m, key, withKey(inner, k, value));
    },
  ];

  test('decodeMessage() accepts a mutated message exactly when the CDDL message rule does', () => {
    let accepted = 0;
    fc.assert(
      fc.property(
        anyMessageArb,
        fc.nat(mutations.length - 1),
        fc.nat(),
        fc.oneof(
          cborValueArb,
          fc.constantFrom<CborValue>(
            1,
            2,
            0,
            -1,
            'x',
            '',
            new Uint8Array(32),
            new Uint8Array(64),
            true,
            [],
            null,
          ),
        ),
        (m, which, pick, value) => {
          const wire = onTheWire(m) as CborMap;
          const keys = Object.keys(wire);
          const mutated = mutations[which]!(wire, keys[pick % keys.length]!, value);
          // Round-trip through CBOR so the value is in the form a receiver sees.
          const received = decode(encode(mutated));
          let codeAccepts: boolean;
          try {
            decodeMessage(received);
            codeAccepts = true;
          } catch (err) {
            if (!(err instanceof ProtocolError)) throw err;
            codeAccepts = false;
          }
          const why = validate(spec, 'message', received);
          assert.equal(
            codeAccepts,
            why === undefined,
            `decodeMessage ${codeAccepts ? 'accepts' : 'rejects'}, CDDL says ${why ?? 'ok'}`,
          );
          if (codeAccepts) accepted++;
        },
      ),
      { numRuns: 1500 },
    );
    assert.ok(accepted > 20, `only ${accepted} mutations were valid messages`);
  });
});
