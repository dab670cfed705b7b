import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import { ApiError } from '../../../src/host/errors.ts';
import { Admission, LOCAL_TENANT } from '../../../src/host/keepmgr/admission.ts';
import { type KeepRecord, MemoryStore } from '../../../src/host/keepmgr/store.ts';

function keep(id: string, owner: string, state: KeepRecord['state'] = 'running'): KeepRecord {
  return {
    id,
    owner,
    backend: 'nil',
    state,
    createdAt: 1,
    updatedAt: 1,
    socketPath: `/${id}.sock`,
    limits: {},
  };
}

const request = (authorization?: string) =>
  ({ headers: authorization === undefined ? {} : { authorization } }) as IncomingMessage;

function refusedWith(code: string): (e: unknown) => boolean {
  return (e: unknown) => e instanceof ApiError && e.code === code;
}

describe('Admission', () => {
  test('tenant(): the local tenant without tokens; with tokens, only a known bearer token', () => {
    const store = new MemoryStore();
    assert.equal(new Admission(store, {}).tenant(request()), LOCAL_TENANT);
    const admission = new Admission(store, { requireTokens: true });
    const { id, token } = store.createToken('alice');
    assert.equal(admission.tenant(request(`Bearer ${token}`)), id);
    for (const bad of [undefined, token, `Bearer ${token}x`, `Basic ${token}`, 'Bearer ']) {
      assert.throws(() => admission.tenant(request(bad)), refusedWith('ERR_API_UNAUTHORIZED'));
    }
  });

  test("ownKeep(): another tenant's Keep answers exactly as a missing one", () => {
    const store = new MemoryStore();
    store.insert(keep('a', 'alice'));
    const admission = new Admission(store, {});
    assert.equal(admission.ownKeep('alice', 'a').id, 'a');
    assert.throws(
      () => admission.ownKeep('bob', 'a'),
      (e: unknown) =>
        e instanceof ApiError &&
        e.code === 'ERR_KEEP_NOT_FOUND' &&
        e.message === 'Cannot find Keep a: no such Keep',
    );
    assert.throws(
      () => admission.ownKeep('bob', 'zz'),
      (e: unknown) =>
        e instanceof ApiError &&
        e.code === 'ERR_KEEP_NOT_FOUND' &&
        e.message === 'Cannot find Keep zz: no such Keep',
    );
  });

  test('admitCreate(): quotas count Keeps not ended and owned; pooled and ended ones count against nobody', () => {
    const store = new MemoryStore();
    store.insert(keep('p', '', 'ready'));
    store.insert(keep('f', 'alice', 'failed'));
    store.insert(keep('c', 'alice', 'creating'));
    const admission = new Admission(store, { quotas: { maxKeepsPerTenant: 2, maxKeeps: 3 } });
    admission.admitCreate('alice');
    store.insert(keep('r', 'alice'));
    assert.throws(() => admission.admitCreate('alice'), refusedWith('ERR_API_QUOTA_EXCEEDED'));
    admission.admitCreate('bob');
    store.insert(keep('b', 'bob'));
    assert.throws(() => admission.admitCreate('carol'), refusedWith('ERR_API_QUOTA_EXCEEDED'));
  });

  test('admitCreate(): the rate counts per tenant over a minute', () => {
    const admission = new Admission(new MemoryStore(), { quotas: { createsPerMinute: 2 } });
    admission.admitCreate('alice', 0);
    admission.admitCreate('alice', 1_000);
    assert.throws(() => admission.admitCreate('alice', 2_000), refusedWith('ERR_API_RATE_LIMITED'));
    admission.admitCreate('bob', 2_000);
    admission.admitCreate('alice', 60_001);
  });

  test('checkLimits(): a tenant may lower the host ceilings, not raise them', () => {
    const admission = new Admission(new MemoryStore(), { limits: { memoryBytes: 100 } });
    admission.checkLimits({ memoryBytes: 100, wallTimeMs: 5 });
    assert.throws(() => admission.checkLimits({ memoryBytes: 101 }), refusedWith('ERR_API_LIMIT_EXCEEDED'));
  });
});
