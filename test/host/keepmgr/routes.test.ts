import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { KeepManager } from '../../../src/host/keepmgr/keepmgr.ts';
import { API_ROUTES, type KeepApi } from '../../../src/host/keepmgr/routes.ts';
import { type DeploymentRecord, type KeepRecord, MemoryStore } from '../../../src/host/keepmgr/store.ts';
import { builtFile } from '../../../src/paths.ts';
import { decodeMessageAs, decodeMessageBytes } from '../../../src/protocol/messages.ts';

function record(i: number): KeepRecord {
  return {
    id: i.toString(16).padStart(16, '0'),
    owner: 'local',
    backend: 'sim',
    state: 'ready',
    createdAt: 1000 + i,
    updatedAt: 1000 + i,
    socketPath: `/run/${i}.sock`,
    limits: {},
  };
}

/** A store that counts the reads a list makes. */
class CountingStore extends MemoryStore {
  lists = 0;
  deploymentLists = 0;
  override list(owner?: string): KeepRecord[] {
    this.lists++;
    return super.list(owner);
  }
  override listDeployments(owner?: string): DeploymentRecord[] {
    this.deploymentLists++;
    return super.listDeployments(owner);
  }
}

describe('API routes', () => {
  test('GET /v1/keeps reads the store once for a whole list, and not again until something changes', async () => {
    const store = new CountingStore();
    for (let i = 0; i < 300; i++) store.insert(record(i));
    const m = new KeepManager({
      runtimePath: builtFile('keep.cjs'),
      keepldrPath: builtFile('keepldr.cjs'),
      runDir: mkdtempSync(join(tmpdir(), 'donjon-t-')),
      store,
    });
    const url = await m.listen();
    const list = async () => {
      const res = await fetch(`${url}/v1/keeps`);
      assert.equal(res.status, 200);
      const bytes = new Uint8Array(await res.arrayBuffer());
      return { bytes, keeps: decodeMessageAs(decodeMessageBytes(bytes), 'keep-list').keeps };
    };
    try {
      const first = await list();
      assert.equal(first.keeps.length, 300);
      assert.deepEqual([store.lists, store.deploymentLists], [1, 1]);
      const again = await list();
      assert.deepEqual(again.bytes, first.bytes);
      assert.deepEqual([store.lists, store.deploymentLists], [1, 1]);

      // A Keep's change is seen by the next list.
      store.update(record(0).id, { state: 'stopped' });
      assert.equal((await list()).keeps[0]!.state, 'stopped');
      assert.equal(store.lists, 2);

      // So is a deployment's.
      store.insertDeployment({
        id: 'd01',
        owner: 'local',
        state: 'active',
        createdAt: 1,
        updatedAt: 1,
        keepId: record(1).id,
        restarts: 3,
        spec: {
          reference: 'r@sha256:00',
          backend: 'sim',
          restart: 'always',
          args: [],
          env: {},
          keys: [],
        },
      });
      const shown = await list();
      assert.deepEqual(shown.keeps[1]!.deployment, {
        id: 'd01',
        reference: 'r@sha256:00',
        restart: 'always',
        restarts: 3,
      });
      assert.equal(shown.keeps[0]!.deployment, undefined);
      assert.deepEqual([store.lists, store.deploymentLists], [3, 3]);
    } finally {
      await m.close();
    }
  });

  test('GET /v1/keeps/{id} shows the deployment of its one Keep', async () => {
    const deployment = { id: 'd00', reference: 'r@sha256:00', restart: 'always' as const, restarts: 2 };
    const api = {
      ownKeep: (_tenant: string, id: string) => record(Number.parseInt(id, 16)),
      deploymentOf: (id: string) => (id === record(1).id ? deployment : undefined),
    } as unknown as KeepApi;
    const route = API_ROUTES.find((r) => r.method === 'GET' && r.path === '/v1/keeps/{id}')!;
    const answer = await route.handle(api, {
      req: {} as IncomingMessage,
      url: new URL(`http://h/v1/keeps/${record(1).id}`),
      params: { id: record(1).id },
      tenant: 'local',
    });
    assert.ok('message' in answer && answer.message.type === 'keep');
    assert.deepEqual(answer.message.deployment, deployment);
  });
});
