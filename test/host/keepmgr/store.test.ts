import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { KeepManagerError } from '../../../src/host/keepmgr/errors.ts';
import { decodeKeepRow, type KeepRecord, SqliteStore } from '../../../src/host/keepmgr/store.ts';

const require = createRequire(import.meta.url);
const Sqlite = require('better-sqlite3') as typeof import('better-sqlite3');

const record: KeepRecord = {
  id: '0123456789abcdef',
  owner: 'tenant',
  backend: 'sim',
  state: 'running',
  createdAt: 1000,
  updatedAt: 2000,
  socketPath: '/run/x.sock',
  limits: { memoryBytes: 1 << 20 },
};

function freshStore(): { path: string; store: SqliteStore; damaged: KeepManagerError[] } {
  const path = join(mkdtempSync(join(tmpdir(), 'donjon-store-')), 'keepmgr.db');
  const damaged: KeepManagerError[] = [];
  return { path, store: new SqliteStore(path, { onDamaged: (e) => damaged.push(e) }), damaged };
}

/** Changes a row behind the store's back, as another program (or a damaged disk) would. */
function tamper(path: string, sql: string): void {
  const db = new Sqlite(path);
  db.exec(sql);
  db.close();
}

describe('SqliteStore', () => {
  test('reads back what it stored, optional fields absent rather than null', () => {
    const { store } = freshStore();
    store.insert(record);
    store.update(record.id, { keepPid: 12, ports: [{ name: 'web', port: 8080 }], exitCode: -1 });
    assert.deepEqual(store.get(record.id), {
      ...record,
      keepPid: 12,
      ports: [{ name: 'web', port: 8080 }],
      exitCode: -1,
    });
    store.close();
  });

  test('get() reports a damaged row with an error naming the Keep and the field, not a crash', () => {
    const { path, store } = freshStore();
    store.insert(record);
    tamper(path, `UPDATE keeps SET state = 'exploded' WHERE id = '${record.id}'`);
    assert.throws(
      () => store.get(record.id),
      (e: unknown) =>
        e instanceof KeepManagerError &&
        e.code === 'ERR_STORE_ROW_DAMAGED' &&
        e.message.startsWith(`Cannot read the record of Keep ${record.id}: `) &&
        e.message.includes('state'),
    );
    store.close();
  });

  test('list() leaves out and reports a damaged row, and returns the others', () => {
    const { path, store, damaged } = freshStore();
    store.insert(record);
    store.insert({ ...record, id: 'fedcba9876543210' });
    tamper(path, `UPDATE keeps SET limits = '{not json' WHERE id = '${record.id}'`);
    assert.deepEqual(
      store.list().map((r) => r.id),
      ['fedcba9876543210'],
    );
    assert.equal(damaged.length, 1);
    assert.match(
      damaged[0]!.message,
      /^Cannot read the record of Keep 0123456789abcdef: limits is not JSON$/,
    );
    store.close();
  });

  test('a row changed by another connection after it was read is read again', () => {
    const { path, store, damaged } = freshStore();
    store.insert(record);
    store.insert({ ...record, id: 'fedcba9876543210' });
    assert.equal(store.list().length, 2);
    assert.equal(store.get(record.id)?.state, 'running');
    tamper(path, `UPDATE keeps SET state = 'exited', exit_code = 3 WHERE id = '${record.id}'`);
    assert.equal(store.get(record.id)?.state, 'exited');
    assert.equal(store.get(record.id)?.exitCode, 3);
    tamper(path, `DELETE FROM keeps WHERE id = 'fedcba9876543210'`);
    assert.deepEqual(
      store.list().map((r) => r.id),
      [record.id],
    );
    tamper(path, `UPDATE keeps SET state = 'exploded' WHERE id = '${record.id}'`);
    assert.deepEqual(store.list(), []);
    assert.equal(damaged.length, 1);
    store.close();
  });

  test('its own changes are seen at once, and what it hands out is a copy', () => {
    const { store } = freshStore();
    store.insert(record);
    store.list();
    store.update(record.id, { state: 'stopped', ports: [{ name: 'web', port: 8080 }] });
    const got = store.get(record.id)!;
    assert.equal(got.state, 'stopped');
    got.state = 'failed';
    got.limits.memoryBytes = 1;
    got.ports![0]!.port = 1;
    assert.deepEqual(store.get(record.id), {
      ...record,
      state: 'stopped',
      ports: [{ name: 'web', port: 8080 }],
    });
    store.remove(record.id);
    assert.equal(store.get(record.id), undefined);
    assert.deepEqual(store.list(), []);
    store.close();
  });

  test('list() keeps the order of created_at, then insertion, and filters by owner', () => {
    const { path, store } = freshStore();
    store.insert({ ...record, id: 'b', createdAt: 2000 });
    store.insert({ ...record, id: 'c', createdAt: 2000, owner: 'other' });
    store.list();
    // Inserted after the others were read, but created before them (a Keep adopted from the pool keeps its time).
    store.insert({ ...record, id: 'a', createdAt: 1500 });
    store.insert({ ...record, id: 'd', createdAt: 2000 });
    assert.deepEqual(
      store.list().map((r) => r.id),
      ['a', 'b', 'c', 'd'],
    );
    assert.deepEqual(
      store.list('tenant').map((r) => r.id),
      ['a', 'b', 'd'],
    );
    // The same order as a store that reads every row afresh.
    const reopened = new SqliteStore(path);
    assert.deepEqual(
      reopened.list().map((r) => r.id),
      ['a', 'b', 'c', 'd'],
    );
    reopened.close();
    store.close();
  });

  test('flushes tokens and deployments to the disk before they are acknowledged, not each Keep change', () => {
    // Every write as SQLite runs it, with the connection's `synchronous` at that moment (1 NORMAL, 2 FULL).
    const probe = new Sqlite(':memory:');
    const Statement = Object.getPrototypeOf(probe.prepare('SELECT 1'));
    probe.close();
    const run = Statement.run;
    const writes: [string, number][] = [];
    Statement.run = function (this: import('better-sqlite3').Statement, ...args: unknown[]) {
      const sync = this.database.pragma('synchronous', { simple: true }) as number;
      writes.push([this.source.trim().split(' ').slice(0, 3).join(' '), sync]);
      return run.apply(this, args);
    };
    try {
      const { store } = freshStore();
      store.insert(record);
      store.update(record.id, { state: 'exited' });
      store.addEvent(record.id, { at: 1, state: 'exited' });
      store.createToken('ops');
      const spec = { reference: 'r@sha256:00', backend: 'sim' as const, restart: 'always' as const };
      const d = { id: 'd1', owner: 't', state: 'active' as const, createdAt: 1, updatedAt: 1, restarts: 0 };
      store.insertDeployment({ ...d, spec: { ...spec, args: [], env: {}, keys: [] } });
      store.updateDeployment('d1', { restarts: 1 });
      store.removeDeployment('d1');
      store.remove(record.id);
      store.close();
    } finally {
      Statement.run = run;
    }
    assert.deepEqual(writes, [
      ['INSERT INTO keeps', 1],
      ['UPDATE keeps SET', 1],
      ['INSERT INTO events', 1],
      ['INSERT INTO tokens', 2],
      ['INSERT INTO deployments', 2],
      ['UPDATE deployments SET', 2],
      ['DELETE FROM deployments', 2],
      ['BEGIN', 1],
      ['DELETE FROM events', 1],
      ['DELETE FROM keeps', 1],
      ['COMMIT', 1],
    ]);
  });

  test("generation moves with every write of a Keep or a deployment, its own or another connection's", () => {
    const { path, store } = freshStore();
    const seen = [store.generation];
    const moved = (): void => {
      assert.notEqual(store.generation, seen.at(-1));
      seen.push(store.generation);
    };
    store.insert(record);
    moved();
    store.list();
    assert.equal(store.generation, seen.at(-1));
    store.update(record.id, { state: 'exited' });
    moved();
    tamper(path, `UPDATE keeps SET exit_code = 1 WHERE id = '${record.id}'`);
    moved();
    const spec = { reference: 'r@sha256:00', backend: 'sim' as const, restart: 'always' as const };
    store.insertDeployment({
      id: 'd1',
      owner: 't',
      state: 'active',
      createdAt: 1,
      updatedAt: 1,
      restarts: 0,
      spec: { ...spec, args: [], env: {}, keys: [] },
    });
    moved();
    store.updateDeployment('d1', { keepId: record.id });
    moved();
    tamper(path, `UPDATE deployments SET restarts = 4 WHERE id = 'd1'`);
    moved();
    store.removeDeployment('d1');
    moved();
    store.remove(record.id);
    moved();
    store.close();
  });

  test('decodeKeepRow() refuses unknown limit keys, negative pids and wrong types', () => {
    const row = {
      id: 'a',
      owner: '',
      backend: 'nil',
      state: 'ready',
      created_at: 1,
      updated_at: 1,
      exit_code: null,
      error: null,
      keepldr_pid: null,
      keep_pid: null,
      socket_path: '/s',
      limits: '{}',
      ports: null,
    };
    assert.equal(decodeKeepRow(row).state, 'ready');
    for (const bad of [
      { limits: '{"cpu":1}' },
      { keepldr_pid: -4 },
      { created_at: 'yesterday' },
      { backend: 'sgx' },
      { ports: '[{"name":"x"}]' },
    ]) {
      assert.throws(
        () => decodeKeepRow({ ...row, ...bad }),
        /ERR_STORE_ROW_DAMAGED|Cannot read the record of Keep a: /,
      );
    }
  });
});
