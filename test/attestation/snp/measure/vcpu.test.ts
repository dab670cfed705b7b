import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  cpuSignature,
  VCPU_SIGNATURES,
  vcpuSignature,
} from '../../../../src/attestation/snp/measure/vcpu.ts';

describe('cpuSignature()', () => {
  test('cpuSignature() splits families above 0xF into base and extended family', () => {
    assert.equal(cpuSignature(23, 1, 2), 0x00800f12); // EPYC (Naples)
    assert.equal(cpuSignature(25, 1, 1), 0x00a00f11); // Milan
    assert.equal(cpuSignature(25, 17, 0), 0x00a10f10); // Genoa
    assert.equal(cpuSignature(26, 0, 0), 0x00b00f00); // Turin
    assert.equal(cpuSignature(6, 0x55, 4), 0x00050654);
  });

  test('cpuSignature() refuses values its fields cannot hold', () => {
    assert.throws(() => cpuSignature(0x10f, 0, 0), RangeError);
    assert.throws(() => cpuSignature(25, 256, 0), RangeError);
    assert.throws(() => cpuSignature(25, 1, 16), RangeError);
    assert.throws(() => cpuSignature(25, 1.5, 1), RangeError);
  });
});

describe('vcpuSignature()', () => {
  test('vcpuSignature() knows QEMU EPYC models and their versions', () => {
    assert.equal(vcpuSignature('EPYC-v4'), 0x00800f12);
    assert.equal(vcpuSignature('EPYC-Rome'), 0x00830f10);
    assert.equal(vcpuSignature('EPYC-Milan-v2'), 0x00a00f11);
    assert.equal(vcpuSignature('EPYC-Genoa'), 0x00a10f10);
    assert.equal(Object.keys(VCPU_SIGNATURES).length, 16);
  });

  test('vcpuSignature() refuses unknown names, including inherited properties', () => {
    for (const name of ['epyc-v4', 'Skylake-Server', 'toString', '__proto__', '']) {
      assert.throws(() => vcpuSignature(name), RangeError, name);
    }
  });
});
