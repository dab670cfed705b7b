import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import {
  DEFAULT_DESCRIPTORS,
  DEFAULT_MEMORY_BYTES,
  ownsWith,
  sameBytes,
  workloadLimits,
} from '../../src/keep/workload.ts';

test('every workload gets a memory and a descriptor limit, whatever host and tenant set', () => {
  assert.deepEqual(workloadLimits({}, undefined), {
    memoryBytes: DEFAULT_MEMORY_BYTES,
    maxFds: DEFAULT_DESCRIPTORS,
  });
  assert.equal(DEFAULT_DESCRIPTORS, 1024);
});

test('each limit is the lower of the host’s and the tenant’s', () => {
  assert.deepEqual(
    workloadLimits(
      { memoryBytes: 1 << 26, wallTimeMs: 5000, descriptors: 64 },
      { memoryBytes: 1 << 25, outputBytes: 100, descriptors: 128 },
    ),
    { memoryBytes: 1 << 25, wallTimeMs: 5000, outputBytes: 100, maxFds: 64 },
  );
  assert.equal(workloadLimits({}, { descriptors: 16 }).maxFds, 16);
  assert.equal(workloadLimits({ descriptors: 16 }, {}).maxFds, 16);
});

test('neither host nor tenant raises the descriptor limit above the Keep’s ceiling', () => {
  assert.equal(workloadLimits({ descriptors: 100_000 }, undefined).maxFds, DEFAULT_DESCRIPTORS);
  assert.equal(workloadLimits({}, { descriptors: 100_000 }).maxFds, DEFAULT_DESCRIPTORS);
});

test('ownsWith() accepts the secret whose SHA-256 is the owner, and nothing else', () => {
  const secret = new Uint8Array(32).fill(7);
  const real = new Uint8Array(createHash('sha256').update(secret).digest());
  const other = new Uint8Array(createHash('sha256').update(new Uint8Array(32)).digest());
  assert.ok(ownsWith(real, secret));
  assert.ok(!ownsWith(other, secret));
  assert.ok(!ownsWith(real.subarray(0, 31), secret));
  assert.ok(sameBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2])));
  assert.ok(!sameBytes(new Uint8Array([1, 2]), new Uint8Array([1, 2, 3])));
});
