import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ProtocolError, protocolErrorCodes } from '../../src/protocol/errors.ts';

test('ProtocolError carries its code, name and cause', () => {
  const cause = new TypeError('inner');
  const err = new ProtocolError('ERR_CBOR_MALFORMED', 'Cannot decode CBOR: the input is empty', { cause });
  assert.ok(err instanceof Error);
  assert.equal(err.code, 'ERR_CBOR_MALFORMED');
  assert.equal(err.name, 'ProtocolError');
  assert.equal(err.cause, cause);
  assert.equal(err.message, 'Cannot decode CBOR: the input is empty');
});

test('protocolErrorCodes are unique and well-formed', () => {
  assert.equal(new Set(protocolErrorCodes).size, protocolErrorCodes.length);
  for (const code of protocolErrorCodes) assert.match(code, /^ERR_[A-Z0-9_]+$/);
});

test('every protocol error code is documented in docs/protocol.md, and no other', () => {
  const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Protocol error codes'));
  const documented = [...section.matchAll(/^\| `(ERR_[A-Z0-9_]+)` +\|/gm)].map((m) => m[1]);
  assert.deepStrictEqual([...documented].sort(), [...protocolErrorCodes].sort());
});
