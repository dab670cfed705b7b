import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { KeepManagerClient, measureRuntime, runWorkload } from '../../src/client/index.ts';
import { API_ERRORS, API_ROUTES, KeepManager, loadOrCreateSimRoot } from '../../src/host/index.ts';
import { builtFile } from '../../src/paths.ts';
import { encode } from '../../src/protocol/cbor.ts';
import { decodeMessageBytes, encodeMessage } from '../../src/protocol/messages.ts';
import { example, testHome } from '../helpers.ts';

let manager: KeepManager;
let url: string;

before(async () => {
  const root = await loadOrCreateSimRoot(testHome);
  manager = new KeepManager({
    runtimePath: builtFile('keep.cjs'),
    keepldrPath: builtFile('keepldr.cjs'),
    simRootPath: root.path,
    maxBodyBytes: 4096,
    runDir: mkdtempSync(join(tmpdir(), 'donjon-test-')),
  });
  url = await manager.listen();
});

after(() => manager.close());

async function call(method: string, path: string, body?: Uint8Array, type = 'application/cbor') {
  const res = await fetch(`${url}${path}`, {
    method,
    ...(body ? { body, headers: { 'content-type': type } } : {}),
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  return { status: res.status, message: decodeMessageBytes(bytes) };
}

function expectError(r: { status: number; message: { type: string } }, code: keyof typeof API_ERRORS): void {
  assert.equal(r.message.type, 'error');
  assert.equal((r.message as unknown as { code: string }).code, code);
  assert.equal(r.status, API_ERRORS[code].status);
}

const createBody = (backend = 'sim') =>
  encodeMessage({
    v: 1,
    type: 'create-keep',
    backend: backend as 'sim',
  });

describe('Keep Manager API', () => {
  test('refuses a body that is not CBOR by media type', async () => {
    expectError(
      await call('POST', '/v1/keeps', new TextEncoder().encode('{}'), 'application/json'),
      'ERR_API_MEDIA_TYPE',
    );
  });

  test('refuses malformed CBOR and unknown message fields', async () => {
    expectError(await call('POST', '/v1/keeps', new Uint8Array([0xff, 0x00])), 'ERR_API_BODY_INVALID');
    const extra = encode({ v: 1, type: 'create-keep', backend: 'sim', extra: 1 });
    expectError(await call('POST', '/v1/keeps', extra), 'ERR_API_BODY_INVALID');
    const badLimits = encode({ v: 1, type: 'create-keep', backend: 'sim', limits: { memoryBytes: -1 } });
    expectError(await call('POST', '/v1/keeps', badLimits), 'ERR_API_BODY_INVALID');
  });

  test('refuses a body over the size limit', async () => {
    expectError(await call('POST', '/v1/keeps', new Uint8Array(5000)), 'ERR_API_BODY_TOO_LARGE');
  });

  test('refuses a backend this host does not offer', async () => {
    expectError(await call('POST', '/v1/keeps', createBody('cvm')), 'ERR_API_BACKEND_UNAVAILABLE');
  });

  test('refuses an sgx-sim Keep when it has no simulated Intel platform', async () => {
    expectError(await call('POST', '/v1/keeps', createBody('sgx-sim')), 'ERR_API_BACKEND_UNAVAILABLE');
  });

  test('answers unknown routes, methods and Keeps with their codes', async () => {
    expectError(await call('GET', '/v2/keeps'), 'ERR_API_ROUTE_NOT_FOUND');
    expectError(await call('PUT', '/v1/keeps'), 'ERR_API_METHOD_NOT_ALLOWED');
    expectError(await call('GET', '/v1/keeps/0123456789abcdef'), 'ERR_KEEP_NOT_FOUND');
    await assert.rejects(
      new KeepManagerClient(url).openChannel('nope'),
      (e: unknown) => (e as { hostCode?: string }).hostCode === 'ERR_KEEP_NOT_FOUND',
    );
  });

  test('creates a Keep that is ready, lists it, and stops it', async () => {
    const client = new KeepManagerClient(url);
    const keep = await client.createKeep('sim');
    assert.equal(keep.state, 'ready');
    assert.ok((await client.listKeeps()).some((k) => k.id === keep.id));
    await client.stopKeep(keep.id);
    for (let i = 0; i < 100; i++) {
      const k = await client.getKeep(keep.id);
      if (k.state === 'stopped') return;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail('the Keep did not stop');
  });

  test('answers random bodies with a 4xx error and keeps serving', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (body) => {
        const r = await call('POST', '/v1/keeps', body);
        assert.ok(r.status >= 400 && r.status < 500, `status ${r.status}`);
        assert.equal(r.message.type, 'error');
      }),
      { numRuns: 150 },
    );
    const list = await call('GET', '/v1/keeps');
    assert.equal(list.status, 200);
  });
});

describe('Keep Manager API: routes, headers, pool and quotas', () => {
  test('serves every route it documents', async () => {
    const client = new KeepManagerClient(url);
    const keep = await client.createKeep('sim');
    for (const route of API_ROUTES) {
      const path = route.path.replace('{id}', keep.id);
      const res = await fetch(`${url}${path}`, {
        method: route.method,
        ...(route.method === 'POST' && path === '/v1/keeps'
          ? { body: createBody(), headers: { 'content-type': 'application/cbor' } }
          : {}),
      });
      const body = new Uint8Array(await res.arrayBuffer());
      if (res.status === 404) {
        const m = decodeMessageBytes(body) as { code?: string };
        assert.notEqual(m.code, 'ERR_API_ROUTE_NOT_FOUND', `${route.method} ${route.path}`);
      }
    }
  });

  test('answers random headers with a 4xx error or a normal answer, and keeps serving', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ maxLength: 60 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
        fc.string({ maxLength: 60 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
        fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'PATCH'),
        async (type, auth, method) => {
          const res = await fetch(`${url}/v1/keeps`, {
            method,
            headers: { 'content-type': type, authorization: auth },
            ...(method === 'GET' ? {} : { body: new Uint8Array([0xa0]) }),
          });
          await res.arrayBuffer();
          assert.ok(res.status < 500, `status ${res.status}`);
        },
      ),
      { numRuns: 80 },
    );
    assert.equal((await call('GET', '/v1/keeps')).status, 200);
  });

  /** A Keep Manager with a pool of one sim Keep, its replacement started after `poolRefill` ms at the latest. */
  async function pooledKeepManager(
    poolRefill: number,
    poolRefillRunning?: number,
  ): Promise<{ pooled: KeepManager; base: string }> {
    const root = await loadOrCreateSimRoot(testHome);
    const pooled = new KeepManager({
      runtimePath: builtFile('keep.cjs'),
      keepldrPath: builtFile('keepldr.cjs'),
      simRootPath: root.path,
      runDir: mkdtempSync(join(tmpdir(), 'donjon-test-')),
      pool: { sim: 1 },
      timeouts: { poolRefill, ...(poolRefillRunning === undefined ? {} : { poolRefillRunning }) },
    });
    return { pooled, base: await pooled.listen() };
  }

  /** The pool's ready Keeps (owned by nobody), once there is one or after 10 s. */
  async function poolReady(pooled: KeepManager): Promise<number> {
    const ready = () => pooled.store.list('').filter((k) => k.state === 'ready').length;
    for (let i = 0; i < 400 && ready() < 1; i++) await new Promise((r) => setTimeout(r, 25));
    return ready();
  }

  test('hands out pre-started Keeps from the pool and refills it', async () => {
    // The Keep handed out never runs here: its replacement starts after 300 ms.
    const { pooled, base } = await pooledKeepManager(300);
    try {
      const client = new KeepManagerClient(base);
      await poolReady(pooled);
      const keep = await client.createKeep('sim');
      const events = (await client.keepEvents(keep.id)).events;
      assert.equal(events.at(-1)?.message, 'assigned from the pool');
      assert.equal(keep.state, 'ready');
      // The pool refills in the background.
      assert.equal(await poolReady(pooled), 1);
    } finally {
      await pooled.close();
    }
  });

  test("starts a pooled Keep's replacement once the Keep handed out has run or ended, not while it starts", async () => {
    const { pooled, base } = await pooledKeepManager(60_000);
    const unowned = () => pooled.store.list('');
    try {
      const client = new KeepManagerClient(base);
      await poolReady(pooled);
      const keep = await client.createKeep('sim');
      assert.equal((await client.keepEvents(keep.id)).events.at(-1)?.message, 'assigned from the pool');
      // Still ready (no workload yet): no Keep Loader is started beside it.
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(unowned(), []);
      assert.equal(pooled.store.list().length, 1);
      // Ended (as it would be once run): the replacement starts.
      await client.stopKeep(keep.id);
      assert.equal(await poolReady(pooled), 1);
    } finally {
      await pooled.close();
    }
  });

  test("starts a running pooled Keep's replacement after poolRefillRunning, not as its workload starts", async () => {
    const { pooled, base } = await pooledKeepManager(60_000, 1_500);
    const unowned = () => pooled.store.list('');
    const root = await loadOrCreateSimRoot(testHome);
    const stdin = new PassThrough();
    try {
      const client = new KeepManagerClient(base);
      await poolReady(pooled);
      const keep = client.createKeep('sim');
      // cat waits on its stdin: the Keep runs until stdin ends.
      const run = runWorkload({
        host: client,
        keep,
        backend: 'sim',
        wasm: new Uint8Array(readFileSync(example('cat'))),
        args: ['cat'],
        env: {},
        stdin,
        stdout: new PassThrough(),
        stderr: new PassThrough(),
        policy: { measurements: [measureRuntime()], trustSimulatedRoots: [root.fingerprint] },
      });
      const id = (await keep).id;
      for (let i = 0; i < 400 && pooled.store.get(id)?.state !== 'running'; i++)
        await new Promise((r) => setTimeout(r, 25));
      assert.equal(pooled.store.get(id)?.state, 'running');
      const running = Date.now();
      await new Promise((r) => setTimeout(r, 600));
      assert.deepEqual(unowned(), [], 'no replacement while the workload has just started');
      assert.equal(await poolReady(pooled), 1);
      assert.ok(Date.now() - running >= 1_400, 'the replacement waited for poolRefillRunning');
      stdin.end();
      assert.deepEqual((await run).outcome, { kind: 'exit', code: 0 });
    } finally {
      stdin.destroy();
      await pooled.close();
    }
  });

  test('refuses Keeps over the quotas and limits with their codes', async () => {
    const root = await loadOrCreateSimRoot(testHome);
    const strict = new KeepManager({
      runtimePath: builtFile('keep.cjs'),
      keepldrPath: builtFile('keepldr.cjs'),
      simRootPath: root.path,
      runDir: mkdtempSync(join(tmpdir(), 'donjon-test-')),
      limits: { memoryBytes: 64 << 20 },
      quotas: { maxKeepsPerTenant: 1, createsPerMinute: 2 },
    });
    const base = await strict.listen();
    try {
      const client = new KeepManagerClient(base);
      await assert.rejects(
        client.createKeep('nil', { memoryBytes: 128 << 20 }),
        (e: unknown) => (e as { hostCode?: string }).hostCode === 'ERR_API_LIMIT_EXCEEDED',
      );
      const first = await client.createKeep('nil');
      await assert.rejects(
        client.createKeep('nil'),
        (e: unknown) => (e as { hostCode?: string }).hostCode === 'ERR_API_QUOTA_EXCEEDED',
      );
      await client.stopKeep(first.id);
      await client.createKeep('nil').then((k) => client.stopKeep(k.id));
      await assert.rejects(
        client.createKeep('nil'),
        (e: unknown) => (e as { hostCode?: string }).hostCode === 'ERR_API_RATE_LIMITED',
      );
    } finally {
      await strict.close();
    }
  });
});
