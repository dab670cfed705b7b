import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { vcpuSignature } from '../../../../src/attestation/snp/measure/vcpu.ts';
import { BSP_EIP, buildVmsa, type VmmType } from '../../../../src/attestation/snp/measure/vmsa.ts';

const MILAN = vcpuSignature('EPYC-Milan');
const AP_EIP = 0x0080b004;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const vmsa = (eip: number, vmmType: VmmType, sevFeatures = 0x21n) =>
  buildVmsa({ eip, sevFeatures, vcpuSig: MILAN, vmmType });

function differing(a: Uint8Array, b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

describe('buildVmsa()', () => {
  test('buildVmsa() matches the reference VMSA pages for each VMM', () => {
    // Known answers: SHA-256 of virtee/sev-snp-measure's BSP and AP save areas (EPYC-Milan, features 0x21).
    const want: Record<VmmType, [string, string]> = {
      qemu: [
        '75fa05347e9be43f9d500bdefb65686ab0464eb7771daaaad91f807cb46b99a8',
        '7cf249d321e4b7a57528abb273a3a25838422df02e436e00a601a4c48017a35d',
      ],
      ec2: [
        'bafab7d7eb960e5f43d197aeb539175b92652d4a458958626394766bb623faf4',
        '8ac504f16bf2e9e03a2b9832c84dd448e732366ade256dd14c576b1d38c0ea1e',
      ],
      gce: [
        '7dd746565c4271b846f624e5b3fa81d1f8dd595f005b1fcb2f4d27dbca9d2a82',
        '5dd0e2a43a6aa500dabcc0c5a350c98353b7f7652e248f461975caaa22dd266f',
      ],
    };
    for (const vmm of ['qemu', 'ec2', 'gce'] as const) {
      assert.equal(sha256(vmsa(BSP_EIP, vmm)), want[vmm][0], `${vmm} BSP`);
      assert.equal(sha256(vmsa(AP_EIP, vmm)), want[vmm][1], `${vmm} AP`);
    }
  });

  test('buildVmsa() BSP and AP differ only in CS base and RIP', () => {
    const bsp = vmsa(BSP_EIP, 'qemu');
    const ap = vmsa(AP_EIP, 'qemu');
    assert.equal(bsp.length, 4096);
    const view = (b: Uint8Array) => new DataView(b.buffer);
    assert.equal(view(bsp).getBigUint64(0x18, true), 0xffff0000n);
    assert.equal(view(ap).getBigUint64(0x18, true), 0x00800000n);
    assert.equal(view(bsp).getBigUint64(0x178, true), 0xfff0n);
    assert.equal(view(ap).getBigUint64(0x178, true), 0xb004n);
    for (const i of differing(bsp, ap))
      assert.ok((i >= 0x18 && i < 0x20) || (i >= 0x178 && i < 0x180), `byte ${i}`);
  });

  test('buildVmsa() puts the vCPU signature in RDX and the guest features in SEV_FEATURES', () => {
    const v = new DataView(
      buildVmsa({ eip: BSP_EIP, sevFeatures: 0x8000000000000021n, vcpuSig: MILAN, vmmType: 'qemu' }).buffer,
    );
    assert.equal(v.getBigUint64(0x310, true), 0xa00f11n);
    assert.equal(v.getBigUint64(0x3b0, true), 0x8000000000000021n);
  });

  test('buildVmsa() uses a fixed RDX on EC2 and GCE whatever the vCPU type', () => {
    for (const vmm of ['ec2', 'gce'] as const) {
      const a = buildVmsa({ eip: BSP_EIP, sevFeatures: 1n, vcpuSig: MILAN, vmmType: vmm });
      const b = buildVmsa({ eip: BSP_EIP, sevFeatures: 1n, vcpuSig: 0, vmmType: vmm });
      assert.deepEqual(a, b);
      assert.equal(new DataView(a.buffer).getBigUint64(0x310, true), 0x600n);
    }
  });

  test('buildVmsa() on EC2 leaves only the BSP code segment unaccessed', () => {
    const cs = (b: Uint8Array) => new DataView(b.buffer).getUint16(0x12, true);
    assert.equal(cs(vmsa(BSP_EIP, 'ec2')), 0x9a);
    assert.equal(cs(vmsa(AP_EIP, 'ec2')), 0x9b);
    assert.equal(cs(vmsa(BSP_EIP, 'qemu')), 0x9b);
  });

  test('buildVmsa() refuses an unknown VMM type', () => {
    assert.throws(
      () => buildVmsa({ eip: BSP_EIP, sevFeatures: 1n, vcpuSig: 0, vmmType: 'xen' as VmmType }),
      RangeError,
    );
  });
});
