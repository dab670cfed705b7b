import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { KeepManagerClient } from '../../src/client/index.ts';
import { API_ERRORS } from '../../src/host/errors.ts';
import { KeepManager } from '../../src/host/keepmgr/keepmgr.ts';
import { loadOrCreateSimRoot } from '../../src/host/simroot.ts';
import { builtFile } from '../../src/paths.ts';
import { encode } from '../../src/protocol/cbor.ts';
import { decodeMessageBytes, encodeMessage } from '../../src/protocol/messages.ts';
import { testHome } from '../helpers.ts';

let manager: KeepManager;
let url: string;

before(async () => {
  const root = await loadOrCreateSimRoot(testHome);
  manager = new KeepManager({
    runtimePath: builtFile('keep.js'),
    keepldrPath: builtFile('keepldr.js'),
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
  assert.equal(r.status, API_ERRORS[code]);
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
