import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BROKER_ERRORS, BrokerError, brokerErrorCodes } from '../../src/broker/errors.ts';
import { loadOrCreateBrokerIdentity } from '../../src/broker/identity.ts';
import { BrokerServer } from '../../src/broker/server.ts';
import { BrokerStore } from '../../src/broker/store.ts';
import { DonjonError } from '../../src/lib/errors.ts';
import { repoRoot } from '../helpers.ts';

const doc = readFileSync(join(repoRoot, 'docs', 'broker.md'), 'utf8');

test('docs/broker.md documents every broker error code with its status, and no other', () => {
  const documented = [...doc.matchAll(/^\| `(ERR_[A-Z0-9_]+)` \| ([^|]+) \|/gm)];
  assert.deepEqual(documented.map((m) => m[1]).sort(), [...brokerErrorCodes].sort());
  for (const [, code, status] of documented) {
    const s = BROKER_ERRORS[code as keyof typeof BROKER_ERRORS].status;
    assert.ok(status!.trim().startsWith(s === 0 ? 'client' : String(s)), `${code}: ${status}`);
  }
});

test('docs/broker.md lists every route of the server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'donjon-broker-routes-'));
  const store = new BrokerStore(dir);
  try {
    const server = new BrokerServer({
      store,
      identity: loadOrCreateBrokerIdentity(dir),
      defaultMeasurements: [],
    });
    assert.ok(server.routes.length >= 10);
    for (const r of server.routes) {
      const admin = r.admin ? 'admin' : 'Keep';
      const row = doc.split('\n').find((l) => l.startsWith(`| ${r.method} | \`${r.path}\` |`));
      assert.ok(row, `${r.method} ${r.path}`);
      assert.ok(row.includes(admin), `${r.method} ${r.path} is for ${admin}`);
    }
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('BrokerError is a DonjonError with its code, category and reason', () => {
  const e = new BrokerError('ERR_SECRET_DENIED', 'Cannot release secret db: no rule releases secret db');
  assert.ok(e instanceof DonjonError);
  assert.equal(e.category, 'refused');
  assert.equal(e.status, 403);
  assert.equal(e.detail, 'no rule releases secret db');
  assert.equal(new BrokerError('ERR_BROKER_UNREACHABLE', 'Cannot reach the broker: x').category, 'host');
});
