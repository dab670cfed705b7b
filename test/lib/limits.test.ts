import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { lowerLimits } from '../../src/lib/limits.ts';

test('lowerLimits() takes the lower of each limit, and a limit only one side sets', () => {
  assert.deepEqual(lowerLimits({ memoryBytes: 100, wallTimeMs: 5 }, { memoryBytes: 50, outputBytes: 7 }), {
    memoryBytes: 50,
    wallTimeMs: 5,
    outputBytes: 7,
  });
  assert.deepEqual(lowerLimits({}, {}), {});
});

test('lowerLimits() never lets a tenant raise a host ceiling', () => {
  const limits = fc.dictionary(fc.constantFrom('a', 'b', 'c'), fc.nat());
  fc.assert(
    fc.property(limits, limits, (host, tenant) => {
      const out = lowerLimits<Record<string, number>>(host, tenant);
      for (const [k, v] of Object.entries(host)) assert.ok(out[k]! <= v);
      for (const [k, v] of Object.entries(tenant)) assert.ok(out[k]! <= v);
      assert.deepEqual(
        Object.keys(out).sort(),
        [...new Set([...Object.keys(host), ...Object.keys(tenant)])].sort(),
      );
    }),
  );
});
