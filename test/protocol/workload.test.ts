import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { encode } from '../../src/protocol/cbor.ts';
import { ProtocolError } from '../../src/protocol/errors.ts';
import { fileSchema } from '../../src/protocol/messages.ts';
import { configDigest, DEFAULT_FILE_SPECS, normalizeFiles } from '../../src/protocol/workload.ts';
import { arbitraryFor } from './support/arbitraries.ts';

test('normalizeFiles() fills in Enarx defaults: tls, port 443, addr ::, a connect named after its host', () => {
  assert.deepEqual(normalizeFiles([...DEFAULT_FILE_SPECS, { kind: 'null', name: 'quiet' }]), [
    { kind: 'stdin', name: 'stdin' },
    { kind: 'stdout', name: 'stdout' },
    { kind: 'stderr', name: 'stderr' },
    { kind: 'null', name: 'quiet' },
  ]);
  assert.deepEqual(normalizeFiles([{ kind: 'listen', name: 'web' }]), [
    { kind: 'listen', name: 'web', prot: 'tls', port: 443, addr: '::' },
  ]);
  assert.deepEqual(normalizeFiles([{ kind: 'connect', host: 'db.example', prot: 'tcp', port: 5432 }]), [
    { kind: 'connect', name: 'db.example', prot: 'tcp', port: 5432, host: 'db.example' },
  ]);
});

test('normalizeFiles() refuses a listen without a name, a connect without a host, bad ports and names', () => {
  const refuse = (f: Parameters<typeof normalizeFiles>[0][number], pattern: RegExp): void => {
    assert.throws(
      () => normalizeFiles([f]),
      (e: unknown) =>
        e instanceof ProtocolError && e.code === 'ERR_MESSAGE_INVALID' && pattern.test(e.message),
    );
  };
  refuse({ kind: 'listen' }, /needs a name/);
  refuse({ kind: 'connect' }, /needs a host/);
  refuse({ kind: 'listen', name: 'a', port: 65536 }, /over 65535/);
  refuse({ kind: 'connect', host: 'h', port: 0 }, /not 1 to 65535/);
  refuse({ kind: 'stdin', name: 'a:b' }, /":"/);
  refuse({ kind: 'null', name: '' }, /empty/);
  refuse({ kind: 'stdout', port: 1 }, /has no port/);
  refuse({ kind: 'listen', name: 'a', host: 'x' }, /has no host/);
  assert.throws(
    () => normalizeFiles(Array.from({ length: 65 }, () => ({ kind: 'null' as const }))),
    ProtocolError,
  );
});

test('normalizeFiles() lets only ProtocolError escape for any schema-valid table', () => {
  fc.assert(
    fc.property(fc.array(arbitraryFor(fileSchema), { maxLength: 6 }), (files) => {
      try {
        const out = normalizeFiles(files as Parameters<typeof normalizeFiles>[0]);
        assert.equal(out.length, files.length);
        for (const f of out) assert.ok(f.name !== '' && !f.name.includes(':'));
      } catch (error) {
        assert.ok(error instanceof ProtocolError, String(error));
      }
    }),
    { numRuns: 400 },
  );
});

test('configDigest() is the SHA-256 of the deterministic CBOR of args, env and files (and dirs)', () => {
  const files = normalizeFiles(DEFAULT_FILE_SPECS);
  const input = { args: ['app.wasm', '-v'], env: { B: '2', A: '1' }, files };
  const expected = createHash('sha256')
    .update(encode({ args: input.args, env: { A: '1', B: '2' }, files }))
    .digest();
  assert.deepEqual(Buffer.from(configDigest(input)), expected);
  assert.notDeepEqual(configDigest(input), configDigest({ ...input, args: ['app.wasm'] }));
  assert.notDeepEqual(configDigest(input), configDigest({ ...input, env: { A: '1', B: '3' } }));
  const dirs = [{ guest: '/d', entries: [{ path: 'a', data: Uint8Array.of(1) }] }];
  assert.notDeepEqual(configDigest(input), configDigest({ ...input, dirs }));
  assert.deepEqual(configDigest(input), configDigest({ ...input, dirs: [] }), 'no dirs is no dirs');
});
