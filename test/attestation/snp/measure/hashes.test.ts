import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { efiGuidBytes } from '../../../../src/attestation/snp/measure/guid.ts';
import {
  directBootHashes,
  SEV_HASH_GUID,
  SEV_HASH_TABLE_SIZE,
  sevHashTable,
} from '../../../../src/attestation/snp/measure/hashes.ts';

const bytes = (s: string) => new Uint8Array(Buffer.from(s));
const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const BOOT = {
  kernel: bytes('donjon test kernel\n'),
  initrd: bytes('donjon test initrd\n'),
  cmdline: 'console=ttyS0 root=/dev/vda',
};

describe('sevHashTable()', () => {
  test('sevHashTable() matches the reference table byte for byte', () => {
    // Known answers from virtee/sev-snp-measure's SevHashes.construct_table() on the same inputs.
    assert.equal(
      sha256(sevHashTable(BOOT)),
      'ce64280cca89ab9725825596e49674c0654a8afab47f88ba475dd7017c976d90',
    );
    assert.equal(
      sha256(sevHashTable({ kernel: new Uint8Array(0) })),
      '6e725681a17ae9f186635cbc1be742508b61e0e550918894f1a5363ac86b5a1a',
    );
  });

  test('sevHashTable() lays out header, cmdline, initrd and kernel entries, then zero padding', () => {
    const t = sevHashTable(BOOT);
    assert.equal(t.length, SEV_HASH_TABLE_SIZE);
    assert.equal(SEV_HASH_TABLE_SIZE, 176);
    const view = new DataView(t.buffer);
    assert.deepEqual(t.subarray(0, 16), efiGuidBytes(SEV_HASH_GUID.TABLE));
    assert.equal(view.getUint16(16, true), 168);
    const entries = [
      [SEV_HASH_GUID.CMDLINE, sha256(Buffer.from('console=ttyS0 root=/dev/vda\0'))],
      [SEV_HASH_GUID.INITRD, sha256(BOOT.initrd)],
      [SEV_HASH_GUID.KERNEL, sha256(BOOT.kernel)],
    ] as const;
    entries.forEach(([guid, hash], i) => {
      const at = 18 + 50 * i;
      assert.deepEqual(t.subarray(at, at + 16), efiGuidBytes(guid));
      assert.equal(view.getUint16(at + 16, true), 50);
      assert.equal(hex(t.subarray(at + 18, at + 50)), hash);
    });
    assert.deepEqual(t.subarray(168), new Uint8Array(8));
  });
});

describe('directBootHashes()', () => {
  test('directBootHashes() hashes the command line with its trailing NUL', () => {
    const h = directBootHashes({ kernel: new Uint8Array(0), cmdline: 'quiet' });
    assert.equal(hex(h.cmdline), sha256('quiet\0'));
    assert.notEqual(hex(h.cmdline), sha256('quiet'));
  });

  test('directBootHashes() treats a missing initrd and command line as empty', () => {
    const h = directBootHashes({ kernel: bytes('k') });
    assert.equal(hex(h.initrd), sha256(''));
    assert.equal(hex(h.cmdline), sha256('\0'));
    assert.equal(hex(h.kernel), sha256('k'));
  });
});
