import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect } from 'node:tls';
import { startBroker } from './support.ts';

test('close() drains: a request under way when the broker is told to stop is answered, then the broker closes', async () => {
  const b = await startBroker();
  let closed = false;
  const socket = connect({ host: '127.0.0.1', port: b.port, rejectUnauthorized: false });
  await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
  let answer = '';
  socket.on('data', (c: Buffer) => {
    answer += c.toString();
  });
  const value = 'drained-value';
  socket.write(
    `PUT /donjon/v1/secrets/late HTTP/1.1\r\nhost: broker\r\nauthorization: Bearer ${b.adminToken}\r\n` +
      `content-length: ${value.length}\r\n\r\n${value.slice(0, 4)}`,
  );
  await new Promise((r) => setTimeout(r, 100));
  const closing = b.server.close(5000).then(() => {
    closed = true;
  });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(closed, false, 'the broker waits for the request under way');
  socket.end(value.slice(4));
  await closing;
  assert.match(answer, /^HTTP\/1\.1 200 /);
  // The secret was stored before the database closed.
  const { BrokerStore } = await import('../../src/broker/store.ts');
  const store = new BrokerStore(b.dir);
  assert.equal(new TextDecoder().decode(store.getSecret('late')), value);
  store.close();
  await b.close();
});
