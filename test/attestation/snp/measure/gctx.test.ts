import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { LaunchDigest, PAGE_TYPE, VMSA_GPA } from '../../../../src/attestation/snp/measure/gctx.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** PAGE_INFO written out field by field, independently of the code under test. */
function pageInfo(ld: Uint8Array, contents: Uint8Array, type: number, gpa: bigint): Buffer {
  const tail = Buffer.alloc(16);
  tail.writeUInt16LE(0x70, 0);
  tail.writeUInt8(type, 2);
  tail.writeBigUInt64LE(gpa, 8);
  return Buffer.concat([ld, contents, tail]);
}

const sha384 = (b: Uint8Array) => new Uint8Array(createHash('sha384').update(b).digest());

describe('LaunchDigest', () => {
  test('LaunchDigest starts from 48 zero bytes', () => {
    assert.deepEqual(new LaunchDigest().digest(), new Uint8Array(48));
  });

  test('LaunchDigest.zeroPages() hashes one PAGE_INFO per page with a zero contents digest', () => {
    const ld = new LaunchDigest();
    ld.zeroPages(0x800000, 0x2000);
    let want = new Uint8Array(48);
    for (const gpa of [0x800000n, 0x801000n]) want = sha384(pageInfo(want, new Uint8Array(48), 3, gpa));
    assert.equal(hex(ld.digest()), hex(want));
  });

  test('LaunchDigest.normalPages() hashes each page and records its address', () => {
    const data = Uint8Array.from({ length: 0x2000 }, (_, i) => i & 0xff);
    const ld = new LaunchDigest();
    ld.normalPages(0xffffe000, data);
    let want = new Uint8Array(48);
    want = sha384(pageInfo(want, sha384(data.subarray(0, 0x1000)), 1, 0xffffe000n));
    want = sha384(pageInfo(want, sha384(data.subarray(0x1000)), 1, 0xfffff000n));
    assert.equal(hex(ld.digest()), hex(want));
  });

  test('LaunchDigest.vmsaPage() records the VMSA at the masked all-ones address', () => {
    const vmsa = new Uint8Array(0x1000).fill(7);
    const ld = new LaunchDigest();
    ld.vmsaPage(vmsa);
    assert.equal(VMSA_GPA, 0xfffffffff000n);
    assert.equal(hex(ld.digest()), hex(sha384(pageInfo(new Uint8Array(48), sha384(vmsa), 2, VMSA_GPA))));
  });

  test('LaunchDigest matches the reference chain over every page type', () => {
    // Known answer from virtee/sev-snp-measure's GCTX over the same sequence of updates.
    const ld = new LaunchDigest();
    ld.normalPages(
      0xffffe000,
      Uint8Array.from({ length: 8192 }, (_, i) => (i * 3) & 0xff),
    );
    ld.zeroPages(0x800000, 0x2000);
    ld.unmeasuredPages(0x802000, 0x1000);
    ld.secretsPage(0x803000);
    ld.cpuidPage(0x804000);
    ld.vmsaPage(new Uint8Array(4096));
    assert.equal(
      hex(ld.digest()),
      'ff4df8ec44e394a4309acf5d503fc1ca37d8187251455ed3ba571672e728f5ddfefe096ceff97cb10803b90008e4468b',
    );
  });

  test('LaunchDigest distinguishes page types at the same address', () => {
    const digests = new Set<string>();
    for (const update of [
      (ld: LaunchDigest) => ld.zeroPages(0x1000, 0x1000),
      (ld: LaunchDigest) => ld.unmeasuredPages(0x1000, 0x1000),
      (ld: LaunchDigest) => ld.secretsPage(0x1000),
      (ld: LaunchDigest) => ld.cpuidPage(0x1000),
    ]) {
      const ld = new LaunchDigest();
      update(ld);
      digests.add(hex(ld.digest()));
    }
    assert.equal(digests.size, 4);
    assert.deepEqual(Object.values(PAGE_TYPE), [1, 2, 3, 4, 5, 6]);
  });

  test('LaunchDigest continues from a seed', () => {
    const a = new LaunchDigest();
    a.secretsPage(0x1000);
    a.cpuidPage(0x2000);
    const first = new LaunchDigest();
    first.secretsPage(0x1000);
    const b = new LaunchDigest(first.digest());
    b.cpuidPage(0x2000);
    assert.deepEqual(a.digest(), b.digest());
  });

  test('LaunchDigest refuses partial pages and short seeds', () => {
    const ld = new LaunchDigest();
    assert.throws(() => ld.normalPages(0, new Uint8Array(100)), RangeError);
    assert.throws(() => ld.zeroPages(0, 0x800), RangeError);
    assert.throws(() => ld.vmsaPage(new Uint8Array(0x800)), RangeError);
    assert.throws(() => new LaunchDigest(new Uint8Array(32)), RangeError);
    assert.deepEqual(ld.digest(), new Uint8Array(48));
  });
});
