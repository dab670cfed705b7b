import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isBrokerError } from '../../src/broker/errors.ts';
import { BrokerStore } from '../../src/broker/store.ts';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'donjon-broker-store-'));
}

test('BrokerStore seals secrets at rest: no plaintext in the database files, the key file is 0600', () => {
  const dir = tmp();
  try {
    const value = `plaintext-${Math.random()}`;
    const s = new BrokerStore(dir);
    s.putSecret('db', new TextEncoder().encode(value), 1);
    assert.equal(new TextDecoder().decode(s.getSecret('db')), value);
    s.close();
    for (const f of readdirSync(dir)) assert.ok(!readFileSync(join(dir, f)).includes(value), f);
    assert.equal(statSync(join(dir, 'secrets.key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'broker.db')).mode & 0o777, 0o600);
    const again = new BrokerStore(dir);
    assert.equal(new TextDecoder().decode(again.getSecret('db')), value);
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a sealed secret moved to another name does not open', () => {
  const dir = tmp();
  try {
    const s = new BrokerStore(dir);
    s.putSecret('db', new TextEncoder().encode('value'), 1);
    s.close();
    const Sqlite = createRequire(import.meta.url)('better-sqlite3') as typeof import('better-sqlite3');
    const db = new Sqlite(join(dir, 'broker.db'));
    db.prepare("UPDATE secrets SET name = 'api' WHERE name = 'db'").run();
    db.close();
    const again = new BrokerStore(dir);
    assert.throws(
      () => again.getSecret('api'),
      (e) => isBrokerError(e, 'ERR_BROKER_STATE_INVALID'),
    );
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a sealing key readable by others is refused', () => {
  const dir = tmp();
  try {
    new BrokerStore(dir).close();
    chmodSync(join(dir, 'secrets.key'), 0o644);
    assert.throws(
      () => new BrokerStore(dir),
      (e) => isBrokerError(e, 'ERR_BROKER_STATE_INVALID'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a challenge is taken once, and not after its nonce expired', () => {
  const dir = tmp();
  try {
    const s = new BrokerStore(dir);
    const session = {
      id: 'x',
      state: 'challenged' as const,
      tee: 'snp',
      nonce: new Uint8Array(32),
      nonceExpiresAt: 1000,
      expiresAt: 1000,
    };
    s.insertSession(session);
    assert.equal(s.takeChallenge('x', 999)?.state, 'answered');
    assert.equal(s.takeChallenge('x', 999), undefined);
    s.insertSession({ ...session, id: 'y' });
    assert.equal(s.takeChallenge('y', 1000), undefined);
    s.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('admin tokens are kept as hashes only', () => {
  const dir = tmp();
  try {
    const s = new BrokerStore(dir);
    const { id, token } = s.createAdminToken(1);
    assert.equal(s.adminOf(token), id);
    assert.equal(s.adminOf(`${token}x`), undefined);
    s.close();
    for (const f of readdirSync(dir)) assert.ok(!readFileSync(join(dir, f)).includes(token), f);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
