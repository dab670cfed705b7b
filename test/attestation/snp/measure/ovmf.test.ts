import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { SnpMeasureError, type SnpMeasureErrorCode } from '../../../../src/attestation/snp/measure/errors.ts';
import { OVMF_GUID, parseOvmf, SECTION_TYPE } from '../../../../src/attestation/snp/measure/ovmf.ts';
import {
  DEFAULT_HASH_TABLE,
  DEFAULT_RESET_EIP,
  DEFAULT_SECTIONS,
  type FakeOvmfOptions,
  fakeOvmf,
  UNKNOWN_GUID,
  u32le,
} from './firmware.ts';

function rejects(options: FakeOvmfOptions | Uint8Array, code: SnpMeasureErrorCode, pattern?: RegExp): void {
  const bytes = options instanceof Uint8Array ? options : fakeOvmf(options);
  assert.throws(
    () => parseOvmf(bytes),
    (e: unknown) =>
      e instanceof SnpMeasureError && e.code === code && (pattern === undefined || pattern.test(e.message)),
  );
}

describe('parseOvmf()', () => {
  test('parseOvmf() reads the footer table, reset block, sections and hash table of a synthetic image', () => {
    const image = parseOvmf(fakeOvmf({ pages: 4 }));
    assert.equal(image.gpa, 0x1_0000_0000 - 0x4000);
    assert.equal(image.resetEip, DEFAULT_RESET_EIP);
    assert.deepEqual(image.hashTable, DEFAULT_HASH_TABLE);
    assert.deepEqual(
      image.sections.map((s) => [s.kind, s.gpa, s.size]),
      [
        ['SNP_SEC_MEM', 0x800000, 0x3000],
        ['SNP_SECRETS', 0x803000, 0x1000],
        ['CPUID', 0x804000, 0x1000],
        ['SVSM_CAA', 0x805000, 0x1000],
        ['SNP_KERNEL_HASHES', 0x806000, 0x1000],
        ['SNP_SEC_MEM', 0x807000, 0x2000],
      ],
    );
    assert.deepEqual(
      [...image.table.keys()].sort(),
      [OVMF_GUID.SEV_ES_RESET_BLOCK, OVMF_GUID.SEV_HASH_TABLE, UNKNOWN_GUID, OVMF_GUID.SEV_METADATA].sort(),
    );
    assert.deepEqual(image.table.get(UNKNOWN_GUID), u32le(0x810000, 0xc00));
  });

  test('parseOvmf() treats a zero hash-table address as no measured direct boot', () => {
    assert.equal(parseOvmf(fakeOvmf({ hashTable: { gpa: 0, size: 0 } })).hashTable, undefined);
    assert.equal(parseOvmf(fakeOvmf({ hashTable: null })).hashTable, undefined);
  });

  test('parseOvmf() refuses images that are not whole pages', () => {
    rejects(new Uint8Array(0), 'ERR_OVMF_MALFORMED');
    rejects(fakeOvmf().subarray(1), 'ERR_OVMF_MALFORMED', /whole number/);
  });

  test('parseOvmf() refuses an image without the footer GUID as not SEV-capable', () => {
    rejects({ footerGuid: UNKNOWN_GUID }, 'ERR_OVMF_UNSUPPORTED', /footer table/);
    rejects(new Uint8Array(0x2000), 'ERR_OVMF_UNSUPPORTED');
  });

  test('parseOvmf() refuses footer and entry sizes that do not add up', () => {
    rejects({ footerSize: 17 }, 'ERR_OVMF_MALFORMED', /smaller than its header/);
    rejects({ footerSize: 0xffff }, 'ERR_OVMF_MALFORMED', /starts before the image/);
    // A footer claiming 10 bytes more than its entries leaves a partial header at the start.
    const entries = 18 * 4 + 8 + 8 + 4 + 4;
    rejects({ footerSize: entries + 18 + 10 }, 'ERR_OVMF_MALFORMED');
    rejects(
      { entries: [{ guid: OVMF_GUID.SEV_ES_RESET_BLOCK, data: u32le(1), size: 200 }] },
      'ERR_OVMF_MALFORMED',
      /entry size 200/,
    );
    rejects(
      { entries: [{ guid: OVMF_GUID.SEV_ES_RESET_BLOCK, data: u32le(1), size: 4 }] },
      'ERR_OVMF_MALFORMED',
    );
  });

  test('parseOvmf() refuses a GUID listed twice', () => {
    rejects(
      {
        entries: [
          { guid: OVMF_GUID.SEV_METADATA, data: u32le(0x800) },
          { guid: OVMF_GUID.SEV_ES_RESET_BLOCK, data: u32le(1) },
          { guid: OVMF_GUID.SEV_ES_RESET_BLOCK, data: u32le(2) },
        ],
      },
      'ERR_OVMF_MALFORMED',
      /twice/,
    );
  });

  test('parseOvmf() refuses entries whose data is not the expected length', () => {
    rejects(
      {
        entries: [
          { guid: OVMF_GUID.SEV_METADATA, data: u32le(0x800) },
          { guid: OVMF_GUID.SEV_ES_RESET_BLOCK, data: u32le(1, 2) },
        ],
      },
      'ERR_OVMF_MALFORMED',
      /reset block entry holds 8 bytes/,
    );
    rejects(
      {
        entries: [
          { guid: OVMF_GUID.SEV_HASH_TABLE, data: u32le(0x806c00) },
          { guid: OVMF_GUID.SEV_METADATA, data: u32le(0x800) },
          { guid: OVMF_GUID.SEV_ES_RESET_BLOCK, data: u32le(1) },
        ],
      },
      'ERR_OVMF_MALFORMED',
      /hash table entry/,
    );
  });

  test('parseOvmf() refuses an image without reset block or SEV metadata as unsupported', () => {
    rejects(
      { entries: [{ guid: OVMF_GUID.SEV_METADATA, data: u32le(0x800) }] },
      'ERR_OVMF_UNSUPPORTED',
      /reset block/,
    );
    rejects(
      { entries: [{ guid: OVMF_GUID.SEV_ES_RESET_BLOCK, data: u32le(1) }] },
      'ERR_OVMF_UNSUPPORTED',
      /SEV metadata/,
    );
  });

  test('parseOvmf() refuses metadata outside the image or with a wrong header', () => {
    rejects({ metadataOffset: 0x5000 }, 'ERR_OVMF_MALFORMED', /outside the image/);
    rejects({ metadataOffset: 0 }, 'ERR_OVMF_MALFORMED');
    rejects({ metadataOffset: 8 }, 'ERR_OVMF_MALFORMED');
    rejects({ metadataSignature: 'ASEW' }, 'ERR_OVMF_MALFORMED', /ASEV/);
    rejects({ metadataVersion: 2 }, 'ERR_OVMF_UNSUPPORTED', /version 2/);
    rejects({ metadataSize: 16 + 12 * DEFAULT_SECTIONS.length + 12 }, 'ERR_OVMF_MALFORMED', /does not match/);
    rejects({ sections: [] }, 'ERR_OVMF_MALFORMED', /no sections/);
  });

  test('parseOvmf() refuses sections that are unaligned, partial, overlapping or of unknown type', () => {
    const one = (gpa: number, size: number, type: number) => ({ sections: [{ gpa, size, type }] });
    rejects(one(0x800800, 0x1000, SECTION_TYPE.SNP_SEC_MEM), 'ERR_OVMF_MALFORMED', /page-aligned/);
    rejects(one(0x800000, 0x1800, SECTION_TYPE.SNP_SEC_MEM), 'ERR_OVMF_MALFORMED', /whole number of pages/);
    rejects(one(0x800000, 0, SECTION_TYPE.SNP_SEC_MEM), 'ERR_OVMF_MALFORMED');
    rejects(one(0x800000, 0x2000, SECTION_TYPE.SNP_SECRETS), 'ERR_OVMF_MALFORMED', /not one page/);
    rejects(one(0x800000, 0x2000, SECTION_TYPE.CPUID), 'ERR_OVMF_MALFORMED', /not one page/);
    rejects(one(0x800000, 0x1000, 7), 'ERR_OVMF_UNSUPPORTED', /type 0x7/);
    rejects(one(0xffffc000, 0x1000, SECTION_TYPE.SNP_SEC_MEM), 'ERR_OVMF_MALFORMED', /overlaps/);
    rejects(
      {
        sections: [
          { gpa: 0x800000, size: 0x3000, type: SECTION_TYPE.SNP_SEC_MEM },
          { gpa: 0x802000, size: 0x1000, type: SECTION_TYPE.CPUID },
        ],
      },
      'ERR_OVMF_MALFORMED',
      /overlaps/,
    );
  });

  test('parseOvmf() lets only its own errors escape for mutated images', () => {
    const base = fakeOvmf({ pages: 2 });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0x1700, max: 0x1fff }), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        (edits) => {
          const bytes = Uint8Array.from(base);
          for (const [at, value] of edits) bytes[at] = value;
          try {
            parseOvmf(bytes);
          } catch (e) {
            if (!(e instanceof SnpMeasureError)) throw e;
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('parseOvmf() lets only its own errors escape for arbitrary bytes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3 }),
        fc.uint8Array({ minLength: 0, maxLength: 512 }),
        (pages, tail) => {
          const bytes = new Uint8Array(pages * 0x1000 + (pages > 0 ? 0 : tail.length));
          bytes.set(
            tail.subarray(0, Math.min(tail.length, bytes.length)),
            Math.max(0, bytes.length - tail.length),
          );
          try {
            parseOvmf(bytes);
          } catch (e) {
            if (!(e instanceof SnpMeasureError)) throw e;
          }
        },
      ),
    );
  });
});
