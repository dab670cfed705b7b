import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type SnpLaunchInput, snpLaunchDigest } from '../../../../src/attestation/snp/measure/digest.ts';
import { SnpMeasureError, type SnpMeasureErrorCode } from '../../../../src/attestation/snp/measure/errors.ts';
import { LaunchDigest } from '../../../../src/attestation/snp/measure/gctx.ts';
import { SECTION_TYPE } from '../../../../src/attestation/snp/measure/ovmf.ts';
import { vcpuSignature } from '../../../../src/attestation/snp/measure/vcpu.ts';
import { BSP_EIP, buildVmsa } from '../../../../src/attestation/snp/measure/vmsa.ts';
import { DEFAULT_RESET_EIP, DEFAULT_SECTIONS, fakeOvmf } from './firmware.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const text = (s: string) => new Uint8Array(Buffer.from(s));
const OVMF = fakeOvmf();
const OVMF8 = fakeOvmf({ pages: 8, seed: 5 });
const KERNEL = text('donjon test kernel\n');
const INITRD = text('donjon test initrd\n');

function rejects(input: SnpLaunchInput, code: SnpMeasureErrorCode, pattern: RegExp): void {
  assert.throws(
    () => snpLaunchDigest(input),
    (e: unknown) => e instanceof SnpMeasureError && e.code === code && pattern.test(e.message),
  );
}

describe('snpLaunchDigest()', () => {
  // Known answers: virtee/sev-snp-measure (calc_launch_digest, SNP mode) run on the same synthetic images.
  test('snpLaunchDigest() matches the reference for one vCPU without a kernel', () => {
    assert.equal(
      hex(snpLaunchDigest({ ovmf: OVMF, vcpus: 1, vcpuType: 'EPYC-v4', guestFeatures: 0x1n })),
      'be067737d7cb282906bd6d07c96fbba73fff111dcf8681ebe7f3fa6ed269388f083f718c07d01d89942ccdcd8c88274e',
    );
  });

  test('snpLaunchDigest() matches the reference for four vCPUs with kernel, initrd and command line', () => {
    const input = {
      ovmf: OVMF,
      vcpus: 4,
      vcpuType: 'EPYC-Milan',
      guestFeatures: 0x21n,
      kernel: KERNEL,
      initrd: INITRD,
      cmdline: 'console=ttyS0 root=/dev/vda',
    };
    assert.equal(
      hex(snpLaunchDigest(input)),
      'e17158ca23d63f1248fdec77ebab1de1fd14b59d4d2506ae9d3f70a319c63258c9d8eb88da798e5c5a726f4b97770634',
    );
  });

  test('snpLaunchDigest() matches the reference for EC2 and GCE launches', () => {
    assert.equal(
      hex(
        snpLaunchDigest({
          ovmf: OVMF8,
          vcpus: 2,
          vcpuType: 'EPYC-Genoa',
          guestFeatures: 0x1n,
          vmmType: 'ec2',
          kernel: KERNEL,
        }),
      ),
      'c3649086b3a7a2a410f86baf17a66e302a2af9f6c04ca3b6e46221740aadf6aa22b814d5ccf9b6b100b3f6f549689f53',
    );
    assert.equal(
      hex(snpLaunchDigest({ ovmf: OVMF8, vcpus: 3, guestFeatures: 0x1n, vmmType: 'gce' })),
      '5e6839318e026adfdb0e5b7cd5e836dba7e8d7accc70a92e94db5a66f25b9b65f4cd4c5db42e301b3943b1eeb76110ce',
    );
    assert.equal(
      hex(
        snpLaunchDigest({
          ovmf: OVMF,
          vcpus: 2,
          vcpuType: 'EPYC-Turin',
          guestFeatures: 0x1n,
          vmmType: 'ec2',
        }),
      ),
      '8aef124f4c0da6225a59afa088c8b6dfec8e4b4b487989a869b360e72b7962f0d5ed1f73e5656e691a9384a0e8c0f888',
    );
  });

  test('snpLaunchDigest() adds exactly one AP VMSA per extra vCPU', () => {
    const base = { ovmf: OVMF, vcpuType: 'EPYC-v4', guestFeatures: 0x1n };
    const ld = new LaunchDigest(snpLaunchDigest({ ...base, vcpus: 1 }));
    ld.vmsaPage(
      buildVmsa({
        eip: DEFAULT_RESET_EIP,
        sevFeatures: 0x1n,
        vcpuSig: vcpuSignature('EPYC-v4'),
        vmmType: 'qemu',
      }),
    );
    assert.deepEqual(snpLaunchDigest({ ...base, vcpus: 2 }), ld.digest());
  });

  test('snpLaunchDigest() measures the image, then sections in order, then VMSAs (EC2 moves CPUID last)', () => {
    const sig = vcpuSignature('EPYC-v4');
    const ld = new LaunchDigest();
    ld.normalPages(0x1_0000_0000 - OVMF.length, OVMF);
    ld.zeroPages(0x800000, 0x3000);
    ld.secretsPage(0x803000);
    ld.zeroPages(0x805000, 0x1000);
    ld.zeroPages(0x806000, 0x1000);
    ld.zeroPages(0x807000, 0x2000);
    ld.cpuidPage(0x804000);
    ld.vmsaPage(buildVmsa({ eip: BSP_EIP, sevFeatures: 0x1n, vcpuSig: sig, vmmType: 'ec2' }));
    assert.deepEqual(
      snpLaunchDigest({ ovmf: OVMF, vcpus: 1, vcpuSig: sig, guestFeatures: 0x1n, vmmType: 'ec2' }),
      ld.digest(),
    );
  });

  test('snpLaunchDigest() changes with any firmware byte, the features, the vCPU type and the command line', () => {
    const base = {
      ovmf: OVMF,
      vcpus: 1,
      vcpuType: 'EPYC-v4',
      guestFeatures: 0x1n,
      kernel: KERNEL,
      cmdline: 'a',
    };
    const seen = new Set([hex(snpLaunchDigest(base))]);
    const flipped = Uint8Array.from(OVMF);
    flipped[100] = flipped[100]! ^ 1;
    for (const variant of [
      { ...base, ovmf: flipped },
      { ...base, guestFeatures: 0x21n },
      { ...base, vcpuType: 'EPYC-Genoa' },
      { ...base, cmdline: 'b' },
      { ...base, initrd: new Uint8Array(0) },
    ]) {
      seen.add(hex(snpLaunchDigest(variant)));
    }
    // An empty initrd is hashed like a missing one, so one of the six inputs repeats a digest.
    assert.equal(seen.size, 5);
  });

  test('snpLaunchDigest() refuses a kernel for firmware without measured direct boot', () => {
    const noHashSection = fakeOvmf({
      sections: DEFAULT_SECTIONS.filter((s) => s.type !== SECTION_TYPE.SNP_KERNEL_HASHES),
    });
    rejects(
      { ovmf: noHashSection, vcpus: 1, vcpuType: 'EPYC-v4', guestFeatures: 1n, kernel: KERNEL },
      'ERR_OVMF_UNSUPPORTED',
      /SNP_KERNEL_HASHES/,
    );
    rejects(
      {
        ovmf: fakeOvmf({ hashTable: null }),
        vcpus: 1,
        vcpuType: 'EPYC-v4',
        guestFeatures: 1n,
        kernel: KERNEL,
      },
      'ERR_OVMF_UNSUPPORTED',
      /hash table/,
    );
    // Without a kernel both images measure fine: the section is zero pages.
    snpLaunchDigest({
      ovmf: fakeOvmf({ hashTable: null }),
      vcpus: 1,
      vcpuType: 'EPYC-v4',
      guestFeatures: 1n,
    });
  });

  test('snpLaunchDigest() refuses a hash table outside the kernel-hashes page', () => {
    const input = (gpa: number, size = 0x400) => ({
      ovmf: fakeOvmf({ hashTable: { gpa, size } }),
      vcpus: 1,
      vcpuType: 'EPYC-v4',
      guestFeatures: 1n,
      kernel: KERNEL,
    });
    rejects(input(0x805c00), 'ERR_OVMF_MALFORMED', /does not lie inside/);
    rejects(input(0x806f80), 'ERR_OVMF_MALFORMED', /does not lie inside/);
    rejects(input(0x806c00, 0x80), 'ERR_OVMF_MALFORMED', /too small/);
    const wide = fakeOvmf({
      sections: [{ gpa: 0x806000, size: 0x2000, type: SECTION_TYPE.SNP_KERNEL_HASHES }],
    });
    rejects(
      { ovmf: wide, vcpus: 1, vcpuType: 'EPYC-v4', guestFeatures: 1n, kernel: KERNEL },
      'ERR_OVMF_MALFORMED',
      /not one page/,
    );
  });

  test('snpLaunchDigest() needs an AP entry point for more than one vCPU', () => {
    const ovmf = fakeOvmf({ resetEip: 0 });
    snpLaunchDigest({ ovmf, vcpus: 1, vcpuType: 'EPYC-v4', guestFeatures: 1n });
    rejects(
      { ovmf, vcpus: 2, vcpuType: 'EPYC-v4', guestFeatures: 1n },
      'ERR_OVMF_UNSUPPORTED',
      /AP entry point/,
    );
  });

  test('snpLaunchDigest() refuses inputs of the wrong shape with TypeError or RangeError', () => {
    const ok = { ovmf: OVMF, vcpus: 1, vcpuType: 'EPYC-v4', guestFeatures: 1n };
    const cases: [unknown, ErrorConstructor][] = [
      [null, TypeError],
      [{ ...ok, ovmf: 'x' }, TypeError],
      [{ ...ok, vcpus: 0 }, RangeError],
      [{ ...ok, vcpus: 1.5 }, RangeError],
      [{ ...ok, vcpus: 5000 }, RangeError],
      [{ ...ok, guestFeatures: 1 }, TypeError],
      [{ ...ok, guestFeatures: -1n }, RangeError],
      [{ ...ok, guestFeatures: 1n << 64n }, RangeError],
      [{ ...ok, vmmType: 'kvm' }, RangeError],
      [{ ...ok, vcpuType: 'EPYC-v9' }, RangeError],
      [{ ...ok, vcpuSig: 1 }, TypeError],
      [{ ovmf: OVMF, vcpus: 1, guestFeatures: 1n }, TypeError],
      [{ ovmf: OVMF, vcpus: 1, guestFeatures: 1n, vcpuSig: 2 ** 32 }, RangeError],
      [{ ...ok, initrd: INITRD }, TypeError],
      [{ ...ok, cmdline: 'x' }, TypeError],
      [{ ...ok, kernel: 'k' }, TypeError],
      [{ ...ok, kernel: KERNEL, cmdline: 3 }, TypeError],
    ];
    for (const [input, type] of cases) {
      assert.throws(
        () => snpLaunchDigest(input as SnpLaunchInput),
        type,
        JSON.stringify(input, (_, v) =>
          typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? 'bytes' : v,
        ),
      );
    }
  });
});
