import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeKeepLoaderConfig, type KeepLoaderConfig } from '../../../src/host/keepldr/config.ts';

const minimal: KeepLoaderConfig = {
  id: 'k',
  backend: 'nil',
  socketPath: '/s',
  runtimePath: '/r',
  limits: {},
};

describe('decodeKeepLoaderConfig()', () => {
  test('decodeKeepLoaderConfig() accepts every field the Keep Manager sets', () => {
    const full: KeepLoaderConfig = {
      ...minimal,
      backend: 'cvm',
      simRootPath: '/root',
      limits: { memoryBytes: 1, wallTimeMs: 2, outputBytes: 3 },
      maxWasmBytes: 4,
      collateralCacheDir: '/c',
      listenAddress: '127.0.0.1',
      hostPorts: 'same',
      denyConnect: true,
      connections: 'relay',
      maxConnectionsPerListener: 5,
      attached: true,
    };
    assert.deepEqual(decodeKeepLoaderConfig(JSON.stringify(full)), full);
    assert.deepEqual(decodeKeepLoaderConfig(JSON.stringify(minimal)), minimal);
  });

  test('decodeKeepLoaderConfig() refuses what it does not declare, with the field named', () => {
    const cases: [unknown, RegExp][] = [
      [{ ...minimal, extra: 1 }, /unknown key "extra"/],
      [{ ...minimal, backend: 'snp' }, /backend must be one of/],
      [{ ...minimal, hostPorts: 'all' }, /hostPorts must be one of "prefer", "same", "any"/],
      [{ ...minimal, connections: 'pass' }, /connections must be one of/],
      [{ ...minimal, attached: 'yes' }, /attached must be true or false/],
      [{ ...minimal, limits: { memoryBytes: 1.5 } }, /limits\.memoryBytes must be an unsigned integer/],
      [{ ...minimal, simRootPath: null }, /simRootPath must be absent/],
      [[minimal], /is not a map/],
    ];
    for (const [value, message] of cases) {
      assert.throws(() => decodeKeepLoaderConfig(JSON.stringify(value)), message, JSON.stringify(value));
    }
    assert.throws(
      () => decodeKeepLoaderConfig('{'),
      /Cannot decode Keep Loader configuration: it is not JSON/,
    );
  });
});
