import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, test } from 'node:test';
import { type FetchLike, httpGet, MAX_RETRY_DELAY_MS } from '../../../src/host/collateral/index.ts';
import { FakeServices } from './fake-services.ts';

let fake: FakeServices;
const sleeps: number[] = [];

function options(over: { timeoutMs?: number; maxBytes?: number } = {}) {
  return {
    timeoutMs: over.timeoutMs ?? 2_000,
    retryDelayMs: 250,
    maxBytes: over.maxBytes ?? 1024,
    fetch: ((url, init) => fetch(url, init)) as FetchLike,
    sleep: async (ms: number) => {
      sleeps.push(ms);
    },
  };
}

before(async () => {
  fake = await FakeServices.start({
    '/ok': { headers: { 'X-Chain': 'abc' }, body: 'hello' },
    '/flaky': (n) => (n === 0 ? { status: 503, body: 'busy' } : { body: 'second time' }),
    '/down': { status: 500, body: 'no' },
    '/bad-request': { status: 400, body: 'no' },
    '/slow-down': { status: 429, headers: { 'Retry-After': '120' }, body: 'later' },
    '/polite': (n) => (n === 0 ? { status: 429, headers: { 'Retry-After': '2' }, body: '' } : { body: 'ok' }),
    '/hang': 'hang',
    '/big': { body: 'x'.repeat(2000) },
  });
});

after(() => fake.close());

test('httpGet() returns the body and lower-cased headers of a 200', async () => {
  const r = await httpGet(`${fake.url}/ok`, options());
  assert.equal(Buffer.from(r.body).toString(), 'hello');
  assert.equal(r.headers['x-chain'], 'abc');
});

test('httpGet() retries a 5xx once after the backoff and succeeds', async () => {
  sleeps.length = 0;
  const r = await httpGet(`${fake.url}/flaky`, options());
  assert.equal(Buffer.from(r.body).toString(), 'second time');
  assert.equal(fake.count('/flaky'), 2);
  assert.deepEqual(sleeps, [250]);
});

test('httpGet() makes at most two attempts when the service keeps failing', async () => {
  await assert.rejects(httpGet(`${fake.url}/down`, options()), {
    code: 'ERR_COLLATERAL_FETCH_FAILED',
    status: 500,
  });
  assert.equal(fake.count('/down'), 2);
});

test('httpGet() does not retry a 404 or a 400', async () => {
  await assert.rejects(httpGet(`${fake.url}/missing`, options()), {
    code: 'ERR_COLLATERAL_NOT_FOUND',
    status: 404,
  });
  assert.equal(fake.count('/missing'), 1);
  await assert.rejects(httpGet(`${fake.url}/bad-request`, options()), {
    code: 'ERR_COLLATERAL_FETCH_FAILED',
    status: 400,
  });
  assert.equal(fake.count('/bad-request'), 1);
});

test('httpGet() honours a short Retry-After and gives up on a long one', async () => {
  sleeps.length = 0;
  await httpGet(`${fake.url}/polite`, options());
  assert.deepEqual(sleeps, [2000]);
  await assert.rejects(httpGet(`${fake.url}/slow-down`, options()), {
    code: 'ERR_COLLATERAL_FETCH_FAILED',
    status: 429,
  });
  assert.equal(fake.count('/slow-down'), 1);
  assert.ok(120_000 > MAX_RETRY_DELAY_MS);
});

test('httpGet() times out a silent service, once per attempt', async () => {
  const t0 = Date.now();
  await assert.rejects(httpGet(`${fake.url}/hang`, options({ timeoutMs: 150 })), {
    code: 'ERR_COLLATERAL_TIMEOUT',
  });
  assert.equal(fake.count('/hang'), 2);
  assert.ok(Date.now() - t0 < 5_000);
});

test('httpGet() refuses an answer over the size limit', async () => {
  await assert.rejects(httpGet(`${fake.url}/big`, options({ maxBytes: 1000 })), {
    code: 'ERR_COLLATERAL_MALFORMED',
  });
});

test('httpGet() reports a refused connection as a fetch failure after one retry', async () => {
  // A port that was just free: nothing listens there.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise((resolve) => probe.close(resolve));
  sleeps.length = 0;
  await assert.rejects(httpGet(`http://127.0.0.1:${port}/x`, options()), {
    code: 'ERR_COLLATERAL_FETCH_FAILED',
  });
  assert.equal(sleeps.length, 1);
});

test('httpGet() refuses URLs that are not http or https', async () => {
  await assert.rejects(httpGet('file:///etc/passwd', options()), TypeError);
  await assert.rejects(httpGet('not a url', options()), TypeError);
});
