// Property tests of the parsers that read what a registry or a user hands over: only our own typed errors
// may escape them, and what we write reads back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  formatReference,
  parseChallenge,
  parseManifest,
  parseReference,
  parseSimpleSigningPayload,
  RegistryError,
} from '../../src/registry/index.ts';

const component = fc.stringMatching(/^[a-z0-9]+(?:[._-][a-z0-9]+)?$/);
const reference = fc.record({
  registry: fc.oneof(
    fc.constant('localhost'),
    fc
      .tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,8}[a-z0-9]$/), fc.constantFrom('.io', '.example', '.com'))
      .map(([a, b]) => a + b),
    fc.integer({ min: 1, max: 65535 }).map((p) => `127.0.0.1:${p}`),
  ),
  repository: fc.array(component, { minLength: 1, maxLength: 3 }).map((c) => c.join('/')),
  tag: fc.option(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}$/), { nil: undefined }),
  digest: fc.option(
    fc.stringMatching(/^[a-f0-9]{64}$/).map((h) => `sha256:${h}`),
    { nil: undefined },
  ),
});

test('parseReference() reads back every reference formatReference() writes', () => {
  fc.assert(
    fc.property(reference, (r) => {
      const ref = {
        registry: r.registry,
        repository: r.repository,
        ...(r.tag === undefined ? {} : { tag: r.tag }),
        ...(r.digest === undefined ? {} : { digest: r.digest }),
      };
      assert.deepEqual(parseReference(formatReference(ref)), ref);
    }),
  );
});

test('parseReference() throws only RegistryError on any text', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), (text) => {
      try {
        parseReference(text);
      } catch (error) {
        assert.ok(error instanceof RegistryError, String(error));
      }
    }),
  );
});

test('parseManifest() throws only RegistryError on any bytes or JSON', () => {
  const anyJson = fc.jsonValue().map((v) => new Uint8Array(Buffer.from(JSON.stringify(v))));
  fc.assert(
    fc.property(
      fc.oneof(fc.uint8Array({ maxLength: 200 }), anyJson),
      fc.string({ maxLength: 40 }),
      (bytes, type) => {
        try {
          parseManifest(bytes, type, 'm');
        } catch (error) {
          assert.ok(error instanceof RegistryError, String(error));
        }
      },
    ),
  );
});

test('parseChallenge() and parseSimpleSigningPayload() never throw', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 120 }), fc.jsonValue(), (header, payload) => {
      parseChallenge(header);
      parseSimpleSigningPayload(new Uint8Array(Buffer.from(JSON.stringify(payload) ?? '')));
    }),
  );
});
