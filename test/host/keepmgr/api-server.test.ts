import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  API_ROUTES,
  KeepManager,
  type KeepManagerOptions,
  loadOrCreateHostIdentity,
} from '../../../src/host/index.ts';
import { builtFile } from '../../../src/paths.ts';
import { decodeMessageBytes } from '../../../src/protocol/messages.ts';

function manager(options: Partial<KeepManagerOptions> = {}): KeepManager {
  return new KeepManager({
    runtimePath: builtFile('keep.cjs'),
    keepldrPath: builtFile('keepldr.cjs'),
    runDir: mkdtempSync(join(tmpdir(), 'donjon-t-')),
    ...options,
  });
}

function open(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), hostname, () => resolve(s));
    s.once('error', reject);
  });
}

/** Everything the server sends until it closes the connection. */
function untilClosed(s: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1');
    });
    s.on('error', () => {});
    s.on('close', () => resolve(text));
  });
}

async function rawUpgrade(
  url: string,
  path: string,
  protocol: string,
): Promise<{ status: number; code: string }> {
  const s = await open(url);
  const closed = untilClosed(s);
  s.write(`GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: ${protocol}\r\n\r\n`);
  const text = await closed;
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
  const body = Buffer.from(text.slice(text.indexOf('\r\n\r\n') + 4), 'latin1');
  return { status, code: (decodeMessageBytes(new Uint8Array(body)) as { code: string }).code };
}

describe('ApiServer', () => {
  test('closes a connection that sends no request within requestHead, and one that stops mid-head', async () => {
    const m = manager({ timeouts: { requestHead: 150 } });
    const url = await m.listen();
    try {
      const silent = await open(url);
      assert.equal(await untilClosed(silent), '');
      const partial = await open(url);
      const closed = untilClosed(partial);
      partial.write('GET /v1/keeps HTTP/1.1\r\nhost: x\r\n');
      await closed;
      // A normal request is answered as ever.
      assert.equal((await fetch(`${url}/v1/keeps`)).status, 200);
    } finally {
      await m.close();
    }
  });

  test('closes a TLS connection that never sends a ClientHello', async () => {
    const m = manager({
      tls: loadOrCreateHostIdentity(mkdtempSync(join(tmpdir(), 'donjon-id-'))),
      timeouts: { handshake: 150, requestHead: 150 },
    });
    const url = await m.listen();
    try {
      assert.equal(await untilClosed(await open(url)), '');
    } finally {
      await m.close();
    }
  });

  test('drops connections beyond the cap, and counts them', async () => {
    const m = manager({ maxConnections: 2 });
    const url = await m.listen();
    try {
      const held = [await open(url), await open(url)];
      const third = await open(url);
      assert.equal(await untilClosed(third), '', 'the third connection is closed unanswered');
      for (const s of held) s.destroy();
      let metrics = '';
      for (let i = 0; i < 50 && !/^donjon_connections_refused_total 1$/m.test(metrics); i++) {
        await new Promise((r) => setTimeout(r, 20));
        metrics = await (await fetch(`${url}/metrics`)).text();
      }
      assert.match(metrics, /^donjon_connections_refused_total 1$/m);
    } finally {
      await m.close();
    }
  });

  test('refuses an upgrade on a route without one, and one asking for another protocol', async () => {
    const m = manager();
    const url = await m.listen();
    try {
      assert.deepEqual(await rawUpgrade(url, '/v1/keeps', 'donjon-channel/1'), {
        status: 404,
        code: 'ERR_API_ROUTE_NOT_FOUND',
      });
      assert.deepEqual(await rawUpgrade(url, '/v1/keeps/0123456789abcdef/channel', 'websocket'), {
        status: 400,
        code: 'ERR_API_BODY_INVALID',
      });
      assert.deepEqual(await rawUpgrade(url, '/v1/keeps/0123456789abcdef/channel', 'donjon-channel/1'), {
        status: 404,
        code: 'ERR_KEEP_NOT_FOUND',
      });
    } finally {
      await m.close();
    }
  });

  test('dispatches through API_ROUTES: each route answers, and a path outside it is not found', async () => {
    const m = manager();
    const url = await m.listen();
    try {
      for (const route of API_ROUTES) {
        const res = await fetch(`${url}${route.path.replace('{id}', '0123456789abcdef')}`, {
          method: route.method,
        });
        const body = new Uint8Array(await res.arrayBuffer());
        if (res.headers.get('content-type') === 'application/cbor' && res.status >= 400) {
          assert.notEqual((decodeMessageBytes(body) as { code: string }).code, 'ERR_API_ROUTE_NOT_FOUND');
        }
      }
      const res = await fetch(`${url}/v1/keeps/0123456789abcdef/logs`);
      assert.equal(res.status, 404);
      assert.equal(
        (decodeMessageBytes(new Uint8Array(await res.arrayBuffer())) as { code: string }).code,
        'ERR_API_ROUTE_NOT_FOUND',
      );
    } finally {
      await m.close();
    }
  });
});
