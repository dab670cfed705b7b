import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ALL_BACKENDS,
  BACKEND_REGISTRY,
  BACKENDS,
  backendEntry,
  createBackend,
  isBackendName,
} from '../../../src/host/backends/index.ts';
import { loadOrCreateSimRoot, loadOrCreateSimSgxRoot } from '../../../src/host/simroot.ts';
import { messageSchemas } from '../../../src/protocol/messages.ts';
import { testHome } from '../../helpers.ts';

const setup = { id: 'k', measurement: new Uint8Array(48), mrEnclave: new Uint8Array(32), warn: () => {} };

describe('backend registry', () => {
  test('the registry and the protocol’s backend enum name the same backends', () => {
    for (const schema of [messageSchemas['create-keep'].fields.backend, messageSchemas.keep.fields.backend]) {
      assert.equal(schema.kind, 'enum');
      assert.deepEqual([...schema.values].sort(), [...ALL_BACKENDS].sort());
    }
  });

  test('ALL_BACKENDS and BACKENDS come from the one table: sim, nil and sgx-sim offered by default, cvm not', () => {
    assert.deepEqual(ALL_BACKENDS, ['sim', 'nil', 'cvm', 'sgx-sim']);
    assert.deepEqual(
      BACKEND_REGISTRY.map((b) => [b.name, b.offeredByDefault]),
      [
        ['sim', true],
        ['nil', true],
        ['cvm', false],
        ['sgx-sim', true],
      ],
    );
    assert.deepEqual(BACKENDS, ['sim', 'nil', 'sgx-sim']);
    assert.equal(backendEntry('cvm').name, 'cvm');
  });

  test('isBackendName() knows the registry’s names and nothing else', () => {
    for (const name of ALL_BACKENDS) assert.equal(isBackendName(name), true);
    for (const name of ['sgx', 'snp', '', 'toString', '__proto__', 'SIM'])
      assert.equal(isBackendName(name), false);
  });

  test('createBackend() builds each backend under its own name', async () => {
    const root = await loadOrCreateSimRoot(testHome);
    const sim = createBackend('sim', { ...setup, simRootPath: root.path });
    assert.equal(sim.name, 'sim');
    const evidence = await sim.evidence(new Uint8Array(64).fill(7));
    assert.equal(evidence.kind, 'sev-snp');
    const nil = createBackend('nil', setup);
    assert.deepEqual([nil.name, await nil.evidence(new Uint8Array(64))], ['nil', { kind: 'none' }]);
    assert.equal(createBackend('cvm', setup).name, 'cvm');
    const platform = await loadOrCreateSimSgxRoot(testHome);
    const sgx = createBackend('sgx-sim', { ...setup, simSgxRootPath: platform.path });
    assert.equal(sgx.name, 'sgx-sim');
    const quoted = await sgx.evidence(new Uint8Array(64).fill(7));
    assert.equal(quoted.kind, 'sgx');
    assert.ok(quoted.kind === 'sgx' && quoted.collateral !== undefined);
  });

  test('createBackend() refuses an sgx-sim backend without a simulated Intel platform', () => {
    assert.throws(
      () => createBackend('sgx-sim', setup),
      /^Error: Cannot start an sgx-sim Keep: no simulated Intel platform was given$/,
    );
  });

  test('createBackend() refuses a sim backend without a simulated root', () => {
    assert.throws(
      () => createBackend('sim', setup),
      /^Error: Cannot start a sim Keep: no simulated root was given$/,
    );
  });
});
