import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ClientError } from '../../src/client/errors.ts';
import { KeepManagerClient, refusalCategory } from '../../src/client/keepmgr-client.ts';
import { loadOrCreateHostIdentity } from '../../src/host/keepmgr/identity.ts';
import { encodeMessage } from '../../src/protocol/messages.ts';

// A stand-in Keep Manager that refuses everything with the code the path names, as the real one answers.
let server: Server;
let base = '';

before(async () => {
  server = createServer((req, res) => {
    const code = decodeURIComponent(req.url!.split('/')[3] ?? 'ERR_HOST_INTERNAL');
    const body = encodeMessage({ v: 1, type: 'error', code, message: `refused with ${code}` });
    res.writeHead(code === 'ERR_KEEP_NOT_FOUND' ? 404 : 401, { 'content-type': 'application/cbor' });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

after(() => server.close());

async function refusal(call: Promise<unknown>): Promise<ClientError> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof ClientError, String(error));
    return error;
  }
  assert.fail('the call succeeded');
}

describe('KeepManagerClient refusals', () => {
  test("KeepManagerClient.getKeep() of an unknown Keep is a usage error carrying the host's code", async () => {
    const e = await refusal(new KeepManagerClient(base).getKeep('ERR_KEEP_NOT_FOUND'));
    assert.equal(e.code, 'ERR_HOST_REFUSED');
    assert.equal(e.hostCode, 'ERR_KEEP_NOT_FOUND');
    assert.equal(e.category, 'usage');
    assert.equal(e.detail, 'refused with ERR_KEEP_NOT_FOUND (ERR_KEEP_NOT_FOUND)');
  });

  test('KeepManagerClient refusals the host makes of its own accord are of category host, the channel too', async () => {
    const client = new KeepManagerClient(base);
    const e = await refusal(client.getKeep('ERR_API_UNAUTHORIZED'));
    assert.equal(e.hostCode, 'ERR_API_UNAUTHORIZED');
    assert.equal(e.category, 'host');
    const channel = await refusal(client.openChannel('ERR_KEEP_CHANNEL_BUSY'));
    assert.equal(channel.hostCode, 'ERR_KEEP_CHANNEL_BUSY');
    assert.equal(channel.category, 'host');
    const gone = await refusal(client.openChannel('ERR_KEEP_NOT_FOUND'));
    assert.equal(gone.category, 'usage');
  });

  test('KeepManagerClient reports a host it cannot reach as ERR_HOST_UNREACHABLE, category host', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const e = await refusal(new KeepManagerClient(`http://127.0.0.1:${port}`).listKeeps());
    assert.equal(e.code, 'ERR_HOST_UNREACHABLE');
    assert.equal(e.category, 'host');
  });

  test('refusalCategory() keeps usage for what the caller got wrong and makes everything else host', () => {
    assert.equal(refusalCategory('ERR_KEEP_NOT_FOUND'), 'usage');
    assert.equal(refusalCategory('ERR_KEEP_STILL_RUNNING'), 'usage');
    assert.equal(refusalCategory('ERR_API_RATE_LIMITED'), 'host');
    assert.equal(refusalCategory('ERR_HOST_INTERNAL'), 'host');
    assert.equal(refusalCategory('toString'), 'host');
    assert.equal(refusalCategory(undefined), 'host');
  });
});

describe('KeepManagerClient connections', () => {
  test('a new Keep and its channel take two pinned connections, the second opened during the first request and kept by the channel', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'donjon-client-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const identity = loadOrCreateHostIdentity(dir);
    const handshakes: number[] = [];
    const requests: string[] = [];
    const upgraded: { destroy(): void }[] = [];
    t.after(() => {
      for (const u of upgraded) u.destroy();
    });
    const keep = encodeMessage({
      v: 1,
      type: 'keep',
      id: '0123456789abcdef',
      backend: 'nil',
      state: 'ready',
      createdAt: 0,
    });
    const tlsServer = createHttpsServer({ key: identity.keyPem, cert: identity.certPem }, (req, res) => {
      requests.push(`${req.method} ${req.url}`);
      // The create answer waits: the spare connection is opened meanwhile, not after it.
      setTimeout(() => res.end(keep), 200);
    });
    tlsServer.on('secureConnection', () => handshakes.push(Date.now()));
    tlsServer.on('upgrade', (req, socket) => {
      requests.push(`${req.method} ${req.url} upgrade`);
      // The channel stays open until the test ends it.
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: donjon-channel/1\r\n\r\n',
      );
      upgraded.push(socket);
    });
    await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
    t.after(() => tlsServer.close());
    const port = (tlsServer.address() as { port: number }).port;
    const client = new KeepManagerClient(`https://127.0.0.1:${port}`, {
      trust: { fingerprint: identity.fingerprint },
    });
    const before = Date.now();
    const info = await client.createKeep('nil');
    const created = Date.now();
    assert.equal(info.id, '0123456789abcdef');
    assert.equal(handshakes.length, 2, 'the spare connection is open by the time the Keep is created');
    assert.ok(handshakes.every((h) => h - before < created - before));
    const channel = await client.openChannel(info.id);
    assert.equal(handshakes.length, 2, 'the channel went over the spare connection');
    // Taken, the connection is the channel's: it outlives the time an unused spare is kept.
    await new Promise((r) => setTimeout(r, 5_500));
    assert.equal(channel.destroyed, false, 'the channel is still open');
    channel.destroy();
    assert.deepEqual(requests, ['POST /v1/keeps', 'GET /v1/keeps/0123456789abcdef/channel upgrade']);
    // Another request has no spare to take: it connects again.
    assert.equal((await client.getKeep(info.id)).id, info.id);
    assert.equal(handshakes.length, 3);
  });
});
