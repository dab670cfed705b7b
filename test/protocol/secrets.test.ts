import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BROKER_CATEGORIES } from '../../src/broker/errors.ts';
import { ProtocolError } from '../../src/protocol/errors.ts';
import type { SecretSpec } from '../../src/protocol/messages.ts';
import {
  brokerAddress,
  checkSecrets,
  SECRET_REFUSALS,
  secretFileOf,
  secretRefusalCategory,
} from '../../src/protocol/secrets.ts';
import { configDigest, normalizeFiles } from '../../src/protocol/workload.ts';

const FP = 'ab'.repeat(32);
const db: SecretSpec = { name: 'db', broker: 'https://127.0.0.1:8788', fingerprint: FP, path: '/secrets/db' };

const invalid = (pattern: RegExp) => (e: unknown) =>
  e instanceof ProtocolError && e.code === 'ERR_MESSAGE_INVALID' && pattern.test(e.message);

test('checkSecrets() takes files and variables, each given once', () => {
  checkSecrets([db, { name: 'key', broker: db.broker, fingerprint: FP, env: 'API_KEY' }]);
  checkSecrets([]);
});

test('checkSecrets() refuses what a Keep could not honour, naming the entry', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ name: '../db' }, /secrets\[0\]: name/],
    [{ broker: 'http://127.0.0.1:1' }, /not an https URL/],
    [{ broker: 'https://127.0.0.1:1/kbs' }, /without a path/],
    [{ broker: 'https://u:p@127.0.0.1:1' }, /credentials/],
    [{ broker: 'not a url' }, /is not a URL/],
    [{ fingerprint: FP.toUpperCase() }, /64 hex digits/],
    [{ fingerprint: 'ab'.repeat(20) }, /64 hex digits/],
    [{ env: 'DB' }, /exactly one of path/],
    [{ path: undefined }, /exactly one of path/],
    [{ path: 'secrets/db' }, /absolute path/],
    [{ path: '/secrets/../etc' }, /absolute path/],
    [{ path: '/' }, /absolute path/],
    [{ path: '/secrets/' }, /absolute path/],
    [{ path: undefined, env: 'FD_NAMES' }, /the Keep's own/],
    [{ path: undefined, env: '1X' }, /not a variable name/],
  ];
  for (const [change, pattern] of bad) {
    const s = Object.fromEntries(
      Object.entries({ ...db, ...change }).filter(([, v]) => v !== undefined),
    ) as unknown as SecretSpec;
    assert.throws(() => checkSecrets([s]), invalid(pattern), JSON.stringify(change));
  }
  assert.throws(() => checkSecrets([db, { ...db, name: 'other' }]), invalid(/given to two secrets/));
  const env = { name: 'a', broker: db.broker, fingerprint: FP, env: 'A' };
  assert.throws(() => checkSecrets([env, { ...env, name: 'b' }]), invalid(/env A is given to two/));
  assert.throws(
    () => checkSecrets([db, { ...db, name: 'x', path: '/secrets/db/x' }]),
    invalid(/is a file and a folder/),
  );
  assert.throws(() => checkSecrets(Array.from({ length: 65 }, () => db)), invalid(/over the limit of 64/));
});

test('brokerAddress() gives the host and port the Keep asks the host to connect to', () => {
  assert.deepEqual(brokerAddress('https://127.0.0.1:8788'), { host: '127.0.0.1', port: 8788 });
  assert.deepEqual(brokerAddress('https://broker.example'), { host: 'broker.example', port: 443 });
  assert.deepEqual(brokerAddress('https://[::1]:9'), { host: '::1', port: 9 });
});

test('secretFileOf() splits a path into the read-only folder and its file', () => {
  assert.deepEqual(secretFileOf('/secrets/db'), { dir: '/secrets', file: 'db' });
  assert.deepEqual(secretFileOf('/db'), { dir: '/', file: 'db' });
  assert.deepEqual(secretFileOf('/a/b/c'), { dir: '/a/b', file: 'c' });
});

test('the client meets a secret refusal under the category the broker gives its code', () => {
  for (const [code, category] of Object.entries(SECRET_REFUSALS)) {
    assert.equal(category, BROKER_CATEGORIES[code as keyof typeof BROKER_CATEGORIES], code);
  }
  assert.equal(secretRefusalCategory('ERR_SECRET_DENIED'), 'refused');
  assert.equal(secretRefusalCategory('ERR_BROKER_UNREACHABLE'), 'host');
  assert.equal(secretRefusalCategory('ERR_DEPLOY_CONFIG_INVALID'), undefined);
  assert.equal(secretRefusalCategory('toString'), undefined);
});

test('the configuration digest covers the secrets: no broker, fingerprint or place can be swapped', () => {
  const base = { args: ['cat.wasm'], env: {}, files: normalizeFiles([{ kind: 'stdout' }]) };
  const hex = (secrets?: SecretSpec[]) =>
    Buffer.from(configDigest({ ...base, ...(secrets ? { secrets } : {}) })).toString('hex');
  const digests = [
    hex(),
    hex([db]),
    hex([{ ...db, broker: 'https://127.0.0.1:8789' }]),
    hex([{ ...db, fingerprint: 'cd'.repeat(32) }]),
    hex([{ ...db, path: '/secrets/other' }]),
    hex([{ ...db, name: 'other' }]),
  ];
  assert.equal(new Set(digests).size, digests.length);
  // No secrets is the digest of before the table existed.
  assert.equal(hex([]), hex());
});
