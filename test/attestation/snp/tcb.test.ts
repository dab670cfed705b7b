import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { AttestationError } from '../../../src/attestation/errors.ts';
import { decodeSnpTcb, encodeSnpTcb, snpTcb } from '../../../src/attestation/snp/tcb.ts';

const le = (raw: bigint) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, raw, true);
  return b;
};

test('decodeSnpTcb() reads the Turin layout of the real Turin sample', () => {
  // FORMATS.md: raw 0x4700000002000100 gives fmc=0, bl=1, tee=0, snp=2, ucode=0x47.
  assert.deepEqual(decodeSnpTcb(le(0x4700000002000100n), true), {
    bootloader: 1,
    tee: 0,
    snp: 2,
    microcode: 0x47,
    fmc: 0,
    raw: 0x4700000002000100n,
  });
});

test('decodeSnpTcb() reads the Milan/Genoa layout', () => {
  // The Genoa VLEK-era sample: bl 10, tee 0, snp 23, ucode 84.
  assert.deepEqual(decodeSnpTcb(le(0x541700000000000an), false), {
    bootloader: 10,
    tee: 0,
    snp: 23,
    microcode: 84,
    raw: 0x541700000000000an,
  });
});

test('decodeSnpTcb() rejects non-zero reserved bytes in either layout', () => {
  for (const i of [2, 3, 4, 5]) {
    const b = new Uint8Array(8);
    b[i] = 1;
    assert.throws(
      () => decodeSnpTcb(b, false),
      (e: unknown) => e instanceof AttestationError,
    );
  }
  for (const i of [4, 5, 6]) {
    const b = new Uint8Array(8);
    b[i] = 1;
    assert.throws(
      () => decodeSnpTcb(b, true),
      (e: unknown) => e instanceof AttestationError,
    );
  }
});

test('encodeSnpTcb() rejects components outside 0..255', () => {
  assert.throws(() => encodeSnpTcb({ bootloader: 256, tee: 0, snp: 0, microcode: 0 }), RangeError);
  assert.throws(() => encodeSnpTcb({ bootloader: 0, tee: -1, snp: 0, microcode: 0 }), RangeError);
  assert.throws(() => encodeSnpTcb({ bootloader: 0, tee: 0, snp: 1.5, microcode: 0 }), RangeError);
});

test('snpTcb() and decodeSnpTcb() round-trip every component in both layouts', () => {
  const byte = fc.integer({ min: 0, max: 255 });
  fc.assert(
    fc.property(
      byte,
      byte,
      byte,
      byte,
      fc.option(byte, { nil: undefined }),
      (bootloader, tee, snp, microcode, fmc) => {
        const parts =
          fmc === undefined ? { bootloader, tee, snp, microcode } : { bootloader, tee, snp, microcode, fmc };
        const tcb = snpTcb(parts);
        assert.deepEqual(decodeSnpTcb(encodeSnpTcb(parts), fmc !== undefined), tcb);
        assert.deepEqual(encodeSnpTcb(parts), le(tcb.raw));
      },
    ),
    { numRuns: 300 },
  );
});
