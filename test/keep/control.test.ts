import assert from 'node:assert/strict';
import { Duplex, PassThrough } from 'node:stream';
import { test } from 'node:test';
import { Control } from '../../src/keep/control.ts';
import type { Message } from '../../src/protocol/messages.ts';
import { readFrames, writeFrame } from '../../src/protocol/stream.ts';

/** Two ends of a pipe: the Keep's and the Keep Loader's. */
function pipePair(): [Duplex, Duplex] {
  const toLoader = new PassThrough();
  const toKeep = new PassThrough();
  const keep = Duplex.from({ readable: toKeep, writable: toLoader });
  const loader = Duplex.from({ readable: toLoader, writable: toKeep });
  // A Keep that gives up on a broken pipe destroys its end, which aborts the streams behind it.
  for (const s of [toLoader, toKeep, keep, loader]) s.on('error', () => {});
  return [keep, loader];
}

function evidence(n: number): Message {
  return { v: 1, type: 'evidence', kind: 'sev-snp', report: new Uint8Array([n]), certs: [] };
}

test('answers evidence requests in the order they were made, and reports lifecycle events', async () => {
  const [keep, loader] = pipePair();
  const control = new Control(keep, () => assert.fail('not lost'));
  const seen: Message[] = [];
  readFrames(
    loader,
    (m) => {
      seen.push(m);
      // Answer each request with its own first byte, so the order shows.
      if (m.type === 'evidence-request') writeFrame(loader, evidence(m.reportData[0]!));
    },
    { onError: (e) => assert.fail(e) },
  );
  const answers = await Promise.all([1, 2, 3].map((n) => control.evidence(new Uint8Array(64).fill(n))));
  assert.deepEqual(
    answers.map((a) => a.report[0]),
    [1, 2, 3],
  );
  control.event('ready');
  control.event('failed', 'the channel pipe broke');
  await control.close();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(
    seen.filter((m) => m.type === 'keep-event'),
    [
      { v: 1, type: 'keep-event', event: 'ready' },
      { v: 1, type: 'keep-event', event: 'failed', message: 'the channel pipe broke' },
    ],
  );
});

test('tells the Keep once when its Keep Loader is gone, however the pipe ends', async () => {
  for (const end of ['end', 'garbage'] as const) {
    const [keep, loader] = pipePair();
    let lost = 0;
    new Control(keep, () => lost++);
    if (end === 'end') loader.end();
    else loader.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]));
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(lost, 1, end);
  }
});
