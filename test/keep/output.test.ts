import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DETACHED_OUTPUT_LIMIT, OutputBuffer } from '../../src/keep/output.ts';
import type { Message } from '../../src/protocol/messages.ts';

const out = (n: number): Message => ({ v: 1, type: 'stdout', data: new Uint8Array(n) });
const err = (n: number): Message => ({ v: 1, type: 'stderr', data: new Uint8Array(n) });

test('keeps output up to its limit, in order, and counts what it drops', () => {
  const b = new OutputBuffer(10);
  b.keep(out(4));
  b.keep(err(4));
  b.keep(out(3)); // would make 11: dropped
  b.keep(out(2));
  assert.equal(b.bytes, 10);
  assert.equal(b.dropped, 3);
  const drained = b.drain();
  assert.deepEqual(
    drained.map((m) => m.type),
    ['notice', 'stdout', 'stderr', 'stdout'],
  );
  assert.match((drained[0] as { message: string }).message, /^3 bytes of output were dropped/);
});

test('always keeps the result, even when output no longer fits', () => {
  const b = new OutputBuffer(1);
  b.keep(out(2));
  b.keep({ v: 1, type: 'limit', limit: 'output', message: 'Output exceeded the limit' });
  assert.deepEqual(
    b.drain().map((m) => m.type),
    ['notice', 'limit'],
  );
});

test('drain() starts afresh: nothing kept, nothing dropped, the whole limit free again', () => {
  const b = new OutputBuffer(4);
  b.keep(out(4));
  b.keep(out(1));
  b.drain();
  assert.deepEqual(b.drain(), []);
  b.keep(out(4));
  assert.equal(b.dropped, 0);
  assert.equal(b.bytes, 4);
});

test('keeps 4 MiB by default', () => {
  assert.equal(new OutputBuffer().limit, DETACHED_OUTPUT_LIMIT);
  assert.equal(DETACHED_OUTPUT_LIMIT, 4 << 20);
});
