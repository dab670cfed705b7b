import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import { API_ROUTES, type KeepApi } from '../../../src/host/keepmgr/routes.ts';
import type { KeepRecord } from '../../../src/host/keepmgr/store.ts';

function record(i: number): KeepRecord {
  return {
    id: i.toString(16).padStart(16, '0'),
    owner: 'tenant',
    backend: 'sim',
    state: 'ready',
    createdAt: 1000 + i,
    updatedAt: 1000 + i,
    socketPath: `/run/${i}.sock`,
    limits: {},
  };
}

const route = (method: string, path: string) => {
  const r = API_ROUTES.find((x) => x.method === method && x.path === path);
  if (!r) throw new Error(`no route ${method} ${path}`);
  return r;
};

const call = (params: Record<string, string> = {}) => ({
  req: {} as IncomingMessage,
  url: new URL('http://h/v1/keeps'),
  params,
  tenant: 'tenant',
});

/** A KeepApi whose every method counts its calls; `list` gives `n` Keeps, the second of which a deployment owns. */
function countingApi(n: number): { api: KeepApi; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const deployment = { id: 'd00', reference: 'r@sha256:00', restart: 'always' as const, restarts: 2 };
  const base: Partial<KeepApi> = {
    list: () => Array.from({ length: n }, (_, i) => record(i)),
    ownKeep: (_t, id) => record(Number.parseInt(id, 16)),
    deploymentOf: (id) => (id === record(1).id ? deployment : undefined),
    deploymentsByKeep: () => new Map([[record(1).id, deployment]]),
  };
  const api = new Proxy(base as KeepApi, {
    get(target, key: string) {
      const f = (target as unknown as Record<string, unknown>)[key];
      if (typeof f !== 'function') throw new Error(`unexpected use of ${key}`);
      return (...args: unknown[]) => {
        calls.set(key, (calls.get(key) ?? 0) + 1);
        return (f as (...a: unknown[]) => unknown)(...args);
      };
    },
  });
  return { api, calls };
}

describe('API routes', () => {
  test('GET /v1/keeps reads the deployments once for the whole list, not once per Keep', async () => {
    const { api, calls } = countingApi(300);
    const answer = await route('GET', '/v1/keeps').handle(api, call());
    assert.ok('message' in answer && answer.message.type === 'keep-list');
    const keeps = answer.message.keeps;
    assert.equal(keeps.length, 300);
    assert.deepEqual(keeps[1]!.deployment, {
      id: 'd00',
      reference: 'r@sha256:00',
      restart: 'always',
      restarts: 2,
    });
    assert.equal(keeps[0]!.deployment, undefined);
    assert.deepEqual(Object.fromEntries(calls), { list: 1, deploymentsByKeep: 1 });
  });

  test('GET /v1/keeps/{id} shows the deployment of its one Keep', async () => {
    const { api } = countingApi(3);
    const answer = await route('GET', '/v1/keeps/{id}').handle(api, call({ id: record(1).id }));
    assert.ok('message' in answer && answer.message.type === 'keep');
    assert.equal(answer.message.deployment?.id, 'd00');
  });
});
