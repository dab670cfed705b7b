// The Keep as its Keep Loader sees it: its lifecycle events, when it exits, and the limits it sets its
// workload. Each test starts a real Keep from the runtime bundle (see harness.ts).
import assert from 'node:assert/strict';
import { Duplex, PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Policy } from '../../src/attestation/index.ts';
import { Keep } from '../../src/keep/keep.ts';
import { DEFAULT_DESCRIPTORS } from '../../src/keep/workload.ts';
import type { Message } from '../../src/protocol/messages.ts';
import { readFrames } from '../../src/protocol/stream.ts';
import { within } from './deploy.ts';
import { deployOver, type KeepUnderTest, startKeep, testPolicy } from './harness.ts';
import { floodModule, openLoopModule } from './modules.ts';

let policy: Policy;
const keeps: KeepUnderTest[] = [];

async function keepWith(limits: Record<string, number>): Promise<KeepUnderTest> {
  const keep = await startKeep({ limits });
  keeps.push(keep);
  return keep;
}

function alive(keep: KeepUnderTest): boolean {
  return keep.child.exitCode === null && keep.child.signalCode === null;
}

/** A pre-opened, empty root directory: what the open loop opens its file in. */
const ROOT = [{ guest: '/', entries: [] }];

before(async () => {
  policy = await testPolicy();
});

after(() => {
  for (const k of keeps) k.child.kill('SIGKILL');
});

describe('the Keep', () => {
  test('reports ready, deployed and exited, and exits 0 only once its client has closed the channel', async () => {
    const keep = await keepWith({});
    const { tls, outcome } = await deployOver(keep, policy, floodModule(), {
      limits: { outputBytes: 64 * 1024 },
    });
    const end = await within(outcome, 'the outcome');
    assert.equal(end.type, 'limit');
    assert.equal(end.type === 'limit' && end.limit, 'output');
    // The result is on its way to the client (through relays that drop what they hold when the Keep ends): the
    // Keep waits for the client's end of the channel, the proof that it has read it.
    await sleep(500);
    assert.ok(alive(keep), 'the Keep waits for its client');
    assert.deepEqual(keep.events, ['ready', 'deployed', 'exited']);
    tls.end();
    assert.deepEqual(await within(keep.exited, 'the Keep to exit'), { code: 0, signal: null });
  });

  test(`stops a workload that opens descriptors in a loop at ${DEFAULT_DESCRIPTORS}, without being told to`, async () => {
    const keep = await keepWith({});
    const { tls, outcome } = await deployOver(keep, policy, openLoopModule(), {
      // A backstop: without a descriptor limit the loop would run until this.
      limits: { wallTimeMs: 20_000 },
      dirs: ROOT,
    });
    const end = await within(outcome, 'the outcome', 30_000);
    assert.equal(end.type, 'limit', JSON.stringify(end));
    assert.equal(end.type === 'limit' && end.limit, 'fds');
    assert.match(end.type === 'limit' ? end.message : '', new RegExp(`limit of ${DEFAULT_DESCRIPTORS}\\b`));
    tls.end();
  });

  test("the host's ceiling and the tenant's limit lower the descriptor limit; the lower one holds", async () => {
    for (const [tenant, expected] of [
      [undefined, 12],
      [8, 8],
      [100, 12],
    ] as const) {
      // One workload per Keep: each case gets a fresh one, with the host's ceiling of 12.
      const keep = await keepWith({ descriptors: 12 });
      const { tls, outcome } = await deployOver(keep, policy, openLoopModule(), {
        limits: { wallTimeMs: 20_000, ...(tenant === undefined ? {} : { descriptors: tenant }) },
        dirs: ROOT,
      });
      const end = await within(outcome, 'the outcome', 30_000);
      assert.equal(end.type === 'limit' && end.limit, 'fds', JSON.stringify(end));
      assert.match(end.type === 'limit' ? end.message : '', new RegExp(`limit of ${expected}\\b`));
      tls.end();
    }
  });

  test('refuses a deploy whose own descriptor table is over its descriptor limit', async () => {
    const keep = await keepWith({});
    const { tls, outcome } = await deployOver(keep, policy, openLoopModule(), {
      limits: { descriptors: 3 },
      dirs: ROOT,
    });
    const end = await within(outcome, 'the refusal');
    assert.equal(end.type, 'error');
    assert.equal(end.type === 'error' && end.code, 'ERR_DEPLOY_CONFIG_INVALID');
    assert.match(end.type === 'error' ? end.message : '', /4 descriptors are over the limit of 3/);
    tls.destroy();
    assert.ok(alive(keep), 'a refused deploy leaves the Keep ready for another');
  });
});

/** Two ends of a pipe: the Keep's and the Keep Loader's. */
function pipePair(): [Duplex, Duplex] {
  const toLoader = new PassThrough();
  const toKeep = new PassThrough();
  const keep = Duplex.from({ readable: toKeep, writable: toLoader });
  const loader = Duplex.from({ readable: toLoader, writable: toKeep });
  for (const s of [toLoader, toKeep, keep, loader]) s.on('error', () => {});
  return [keep, loader];
}

/** A Keep in this process, on pipes this test holds, whose exit is recorded rather than done. */
function keepInProcess() {
  const [control, loaderControl] = pipePair();
  const [pipe, loaderPipe] = pipePair();
  const events: Message[] = [];
  readFrames(loaderControl, (m) => events.push(m), { onError: () => {} });
  let exited: (code: number) => void = () => {};
  const exit = new Promise<number>((resolve) => {
    exited = resolve;
  });
  const keep = new Keep(
    { limits: {} },
    {
      control,
      pipe,
      workerUrl: new URL('../wasi/fixtures/worker.mjs', import.meta.url),
      exit: (code) => exited(code),
    },
  );
  return { keep, events, exit, loaderControl, loaderPipe, pipe };
}

describe('the Keep’s lifecycle', () => {
  test('starts creating, and is ready once started', () => {
    const k = keepInProcess();
    assert.equal(k.keep.state, 'creating');
    k.keep.start();
    assert.equal(k.keep.state, 'ready');
    k.keep.start();
    assert.equal(k.keep.state, 'ready', 'a second start changes nothing');
    k.loaderControl.end();
  });

  test('a broken channel pipe fails the Keep: it tells its Keep Loader why and exits 1', async () => {
    const k = keepInProcess();
    k.keep.start();
    k.pipe.destroy(new Error('EPIPE'));
    assert.equal(await within(k.exit, 'the exit'), 1);
    assert.equal(k.keep.state, 'failed');
    assert.deepEqual(
      k.events.map((m) => (m.type === 'keep-event' ? [m.event, m.message] : m.type)),
      [
        ['ready', undefined],
        ['failed', 'the channel pipe broke'],
      ],
    );
  });

  test('a pipe that breaks the mux framing fails the Keep', async () => {
    const k = keepInProcess();
    k.keep.start();
    k.loaderPipe.write(Buffer.alloc(9, 0xee));
    assert.equal(await within(k.exit, 'the exit'), 1);
    assert.equal(k.keep.state, 'failed');
    const last = k.events.at(-1);
    assert.equal(last?.type === 'keep-event' && last.message, 'the channel pipe broke its framing');
  });

  test('without its Keep Loader the Keep fails and exits 1 at once', async () => {
    const k = keepInProcess();
    k.keep.start();
    k.loaderControl.end();
    assert.equal(await within(k.exit, 'the exit'), 1);
    assert.equal(k.keep.state, 'failed');
  });
});
