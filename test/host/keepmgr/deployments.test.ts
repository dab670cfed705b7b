import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Deployments, restartDelay } from '../../../src/host/keepmgr/deployments.ts';
import { KeepRecords } from '../../../src/host/keepmgr/records.ts';
import { type DeploymentRecord, MemoryStore, SqliteStore } from '../../../src/host/keepmgr/store.ts';

const require = createRequire(import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'donjon-deployments-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function deployment(id: string, extra: Partial<DeploymentRecord['spec']> = {}): DeploymentRecord {
  return {
    id,
    owner: 't',
    state: 'active',
    createdAt: 1,
    updatedAt: 1,
    keepId: `k-${id}`,
    restarts: 0,
    spec: {
      // Nothing listens on port 1: every pull fails at once.
      reference: `127.0.0.1:1/app@sha256:${'a'.repeat(64)}`,
      backend: 'nil',
      restart: 'always',
      args: [],
      env: {},
      keys: [],
      ...extra,
    },
  };
}

function setup(): { records: KeepRecords; deployments: Deployments; launched: string[] } {
  const records = new KeepRecords(new MemoryStore(), () => {});
  const launched: string[] = [];
  const deployments = new Deployments({
    records,
    launch: async (owner) => {
      launched.push(owner);
      throw new Error('no Keep here');
    },
    stop: async () => {},
    timeouts: { restartBackoff: 5, restartBackoffMax: 20, hostDeploy: 1_000 },
    log: () => {},
  });
  return { records, deployments, launched };
}

function keep(records: KeepRecords, id: string): void {
  records.insert({
    id,
    owner: 't',
    backend: 'nil',
    state: 'running',
    createdAt: 1,
    updatedAt: 1,
    socketPath: join(dir, `${id}.sock`),
    limits: {},
  });
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('restartDelay()', () => {
  test('doubles from the base for each restart made, up to the ceiling', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 10, 1000].map((n) => restartDelay(n, 1_000, 60_000)),
      [1_000, 2_000, 4_000, 8_000, 60_000, 60_000],
    );
  });
});

describe('Deployments', () => {
  test('a failed Keep is recreated after the back-off; after maxRestarts the deployment gives up', async () => {
    const { records, deployments } = setup();
    records.store.insertDeployment(deployment('d1', { maxRestarts: 2 }));
    keep(records, 'k-d1');
    records.setState('k-d1', 'failed', { error: 'the Keep ended (signal SIGKILL)' });
    assert.equal(records.store.getDeployment('d1')?.lastFailure, 'the Keep ended (signal SIGKILL)');
    await until(() => records.store.getDeployment('d1')?.state === 'given-up', 'the deployment to give up');
    const d = records.store.getDeployment('d1')!;
    assert.equal(d.restarts, 2);
    assert.match(d.lastFailure ?? '', /pull/);
    deployments.close();
  });

  test('on-failure: a Keep that exits ends the deployment; a stopped deployment is not recreated', async () => {
    const { records, deployments, launched } = setup();
    records.store.insertDeployment(deployment('d2', { restart: 'on-failure' }));
    keep(records, 'k-d2');
    records.setState('k-d2', 'exited');
    assert.equal(records.store.getDeployment('d2')?.state, 'stopped');
    assert.equal(deployments.resume(), 0);
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(launched, []);
    deployments.close();
  });

  test('a Keep its tenant stopped ends the deployment, even under always', async () => {
    const { records, deployments, launched } = setup();
    records.store.insertDeployment(deployment('d6'));
    keep(records, 'k-d6');
    records.setState('k-d6', 'stopped');
    assert.equal(records.store.getDeployment('d6')?.state, 'stopped');
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(launched, []);
    deployments.close();
  });

  test("another tenant's deployment is not found, and a reference not pinned to a digest is refused", async () => {
    const { records, deployments, launched } = setup();
    records.store.insertDeployment(deployment('d7'));
    assert.equal(deployments.own('t', 'd7').id, 'd7');
    assert.throws(() => deployments.own('u', 'd7'), { code: 'ERR_DEPLOYMENT_NOT_FOUND' });
    const { spec } = deployment('d8');
    await assert.rejects(deployments.create('t', { ...spec, reference: '127.0.0.1:1/app:1.0' }), {
      code: 'ERR_API_BODY_INVALID',
    });
    // A first Keep that cannot be made leaves no deployment behind, and says why.
    await assert.rejects(deployments.create('t', spec), /Cannot deploy .*: the pull failed/);
    assert.deepEqual(
      records.store.listDeployments('t').map((d) => d.id),
      ['d7'],
    );
    assert.deepEqual(launched, []);
    deployments.close();
  });

  test('resume() recreates active deployments whose Keep is gone, and leaves those with a live Keep', () => {
    const { records, deployments } = setup();
    records.store.insertDeployment(deployment('d3'));
    records.store.insertDeployment(deployment('d4'));
    keep(records, 'k-d4');
    assert.equal(deployments.resume(), 1);
    deployments.close();
  });
});

describe('SqliteStore deployments', () => {
  test('round-trip through the database, secrets table included, and a damaged row is named, not cast', () => {
    const store = new SqliteStore(join(dir, 'keepmgr.db'), { onDamaged: () => {} });
    const d = deployment('d5', {
      maxRestarts: 3,
      files: [{ kind: 'listen', name: 'echo', prot: 'tcp', port: 7000 }],
      // Where the Keep fetches its secrets, never their values: a restarted Keep proves itself to the broker again.
      secrets: [
        { name: 'db', broker: 'https://127.0.0.1:8788', fingerprint: 'ab'.repeat(32), path: '/secrets/db' },
      ],
    });
    store.insertDeployment(d);
    store.updateDeployment('d5', { restarts: 2, lastFailure: 'gone' });
    assert.deepEqual(store.getDeployment('d5'), { ...d, restarts: 2, lastFailure: 'gone' });
    assert.equal(store.listDeployments('t').length, 1);
    store.close();
    const raw = new (require('better-sqlite3'))(join(dir, 'keepmgr.db'));
    raw.prepare("UPDATE deployments SET spec = '{\"reference\":1}' WHERE id = 'd5'").run();
    raw.close();
    const again = new SqliteStore(join(dir, 'keepmgr.db'), { onDamaged: () => {} });
    assert.throws(() => again.getDeployment('d5'), /Cannot read the record of deployment d5/);
    assert.deepEqual(again.listDeployments(), []);
    again.close();
  });
});
