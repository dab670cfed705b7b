import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isWasiWorker, makeWorkerData, wasiWorkerMain } from '../../src/wasi/worker.ts';

test('isWasiWorker() recognises only data made for a WASI worker', () => {
  const data = makeWorkerData({
    module: {},
    args: [],
    env: {},
    stdin: 'null',
    stdinRing: new SharedArrayBuffer(80),
    outputRing: new SharedArrayBuffer(80),
    memoryBytes: 65536,
    checkMemoryAtCalls: false,
    preopens: { '/': { 'a.txt': Uint8Array.of(1) } },
    fsBytes: 65536,
  });
  assert.equal(isWasiWorker(data), true);
  assert.equal(isWasiWorker(structuredClone(data)), true, 'survives the copy into the worker');
  for (const other of [undefined, null, 'donjon/wasi-worker/v1', {}, { marker: 'other' }, []]) {
    assert.equal(isWasiWorker(other), false);
  }
});

test('wasiWorkerMain() refuses to run outside a WASI worker thread', () => {
  assert.throws(() => wasiWorkerMain(), TypeError);
});
