import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { efiGuidBytes, efiGuidText } from '../../../../src/attestation/snp/measure/guid.ts';

describe('efiGuidBytes()', () => {
  test('efiGuidBytes() stores the first three fields little-endian', () => {
    // The OVMF footer GUID as it appears in a real image's last 50 bytes.
    assert.equal(
      Buffer.from(efiGuidBytes('96b582de-1fb2-45f7-baea-a366c55a082d')).toString('hex'),
      'de82b596b21ff745baeaa366c55a082d',
    );
  });

  test('efiGuidBytes() refuses text that is not a lower-case GUID', () => {
    for (const bad of [
      '',
      '96B582DE-1FB2-45F7-BAEA-A366C55A082D',
      '96b582de1fb245f7baeaa366c55a082d',
      '{96b582de-1fb2-45f7-baea-a366c55a082d}',
    ]) {
      assert.throws(() => efiGuidBytes(bad), TypeError, bad);
    }
  });

  test('efiGuidText() inverts efiGuidBytes() for any 16 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
        assert.deepEqual(efiGuidBytes(efiGuidText(bytes)), bytes);
      }),
    );
    assert.throws(() => efiGuidText(new Uint8Array(15)), RangeError);
  });
});
