import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  encodeSnpCertTable,
  parseSnpCertTable,
  SNP_CERT_GUID,
} from '../../../../src/host/backends/tsm/certs.ts';
import { TsmError } from '../../../../src/host/backends/tsm/errors.ts';
import { certDers, NEEDS_EVIDENCE } from '../../../attestation/evidence.ts';

/** A DER SEQUENCE of `n` content bytes (short or long length form), standing in for a certificate. */
function der(n: number, fill = 0x11): Uint8Array {
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Uint8Array.from([0x30, ...len, ...new Uint8Array(n).fill(fill)]);
}

function malformed(blob: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => parseSnpCertTable(blob),
    (e: unknown) =>
      e instanceof TsmError && e.code === 'ERR_TSM_AUXBLOB_MALFORMED' && pattern.test(e.message),
  );
}

const VCEK = der(300, 0x01);
const ASK = der(200, 0x02);
const ARK = der(100, 0x03);

describe('parseSnpCertTable()', () => {
  test('parseSnpCertTable() reads entries by GUID in RFC 4122 byte order', () => {
    const blob = encodeSnpCertTable([
      { guid: SNP_CERT_GUID.VCEK, data: VCEK },
      { guid: SNP_CERT_GUID.ASK, data: ASK },
      { guid: SNP_CERT_GUID.ARK, data: ARK },
    ]);
    // The VCEK GUID's first bytes as they appear on the wire: not byte-swapped as EFI GUIDs are.
    assert.equal(Buffer.from(blob.subarray(0, 4)).toString('hex'), '63da758d');
    const entries = parseSnpCertTable(blob);
    assert.deepEqual(
      entries.map((e) => [e.kind, e.guid]),
      [
        ['vcek', SNP_CERT_GUID.VCEK],
        ['ask', SNP_CERT_GUID.ASK],
        ['ark', SNP_CERT_GUID.ARK],
      ],
    );
    assert.deepEqual(entries[0]!.data, VCEK);
    assert.deepEqual(entries[2]!.data, ARK);
  });

  test('parseSnpCertTable() reads an empty blob and a lone terminator as no certificates', () => {
    assert.deepEqual(parseSnpCertTable(new Uint8Array(0)), []);
    assert.deepEqual(parseSnpCertTable(new Uint8Array(24)), []);
    // Zero padding after the last blob, as a page-sized host buffer leaves it.
    assert.deepEqual(parseSnpCertTable(new Uint8Array(4096)), []);
  });

  test('parseSnpCertTable() accepts zero padding and carries unknown GUIDs', () => {
    const other = '11111111-2222-3333-4444-555555555555';
    const table = encodeSnpCertTable([
      { guid: SNP_CERT_GUID.VLEK, data: VCEK },
      { guid: other, data: Uint8Array.from([1, 2, 3]) },
      { guid: SNP_CERT_GUID.CRL, data: der(40) },
    ]);
    const padded = new Uint8Array(4096);
    padded.set(table);
    const entries = parseSnpCertTable(padded);
    assert.deepEqual(
      entries.map((e) => e.kind),
      ['vlek', 'other', 'crl'],
    );
    assert.equal(entries[1]!.guid, other);
  });

  test('parseSnpCertTable() refuses a table without terminator', () => {
    const blob = encodeSnpCertTable([{ guid: SNP_CERT_GUID.ARK, data: ARK }]);
    malformed(blob.subarray(0, 24), /no terminating zero entry/);
    malformed(blob.subarray(0, 40), /no terminating zero entry/);
    malformed(new Uint8Array(10), /no terminating zero entry/);
  });

  test('parseSnpCertTable() refuses a terminator with an offset or length', () => {
    const blob = new Uint8Array(48);
    blob[20] = 1;
    malformed(blob, /zero GUID entry/);
  });

  test('parseSnpCertTable() refuses entries out of bounds, into the table, empty, repeated or overlapping', () => {
    const base = encodeSnpCertTable([
      { guid: SNP_CERT_GUID.VCEK, data: VCEK },
      { guid: SNP_CERT_GUID.ASK, data: ASK },
    ]);
    const edit = (f: (v: DataView, b: Uint8Array) => void) => {
      const b = Uint8Array.from(base);
      f(new DataView(b.buffer), b);
      return b;
    };
    malformed(
      edit((v) => v.setUint32(20, VCEK.length + 1000, true)),
      /ends past/,
    );
    malformed(
      edit((v) => v.setUint32(16, 24, true)),
      /points into the table/,
    );
    malformed(
      edit((v) => v.setUint32(20, 0, true)),
      /empty entry/,
    );
    malformed(
      edit((_, b) => b.copyWithin(24, 0, 16)),
      /listed twice/,
    );
    malformed(
      edit((v) => v.setUint32(40, 72 + 10, true)),
      /overlap/,
    );
    malformed(Uint8Array.from([...base, 0, 0, 7]), /byte \d+ lies outside every entry/);
    // A gap between the table and the first blob that is not zero.
    const gap = edit((v) => {
      v.setUint32(16, 73, true);
      v.setUint32(20, VCEK.length - 1, true);
    });
    gap[72] = 9;
    malformed(gap, /byte 72 lies outside every entry/);
  });

  test('parseSnpCertTable() refuses a certificate entry that is not exactly one DER structure', () => {
    const table = (data: Uint8Array) => encodeSnpCertTable([{ guid: SNP_CERT_GUID.VCEK, data }]);
    malformed(table(Uint8Array.from([...der(10), 0])), /VCEK entry is not one DER structure/);
    malformed(table(der(10).subarray(0, 11)), /VCEK entry/);
    malformed(table(Uint8Array.from([0x31, 1, 0])), /VCEK entry/);
    // Non-minimal lengths: a short length in long form, and a leading zero length byte.
    malformed(table(Uint8Array.from([0x30, 0x81, 0x05, 1, 2, 3, 4, 5])), /VCEK entry/);
    malformed(table(Uint8Array.from([0x30, 0x82, 0x00, 0x80, ...new Uint8Array(0x80)])), /VCEK entry/);
    malformed(table(Uint8Array.from([0x30, 0x80, 0, 0])), /VCEK entry/);
    malformed(encodeSnpCertTable([{ guid: SNP_CERT_GUID.CRL, data: Uint8Array.from([1]) }]), /CRL entry/);
  });

  test('parseSnpCertTable() lets only its own errors escape for any bytes', () => {
    const valid = encodeSnpCertTable([
      { guid: SNP_CERT_GUID.VCEK, data: der(20) },
      { guid: SNP_CERT_GUID.ARK, data: der(5) },
    ]);
    const check = (blob: Uint8Array) => {
      try {
        parseSnpCertTable(blob);
      } catch (e) {
        if (!(e instanceof TsmError && e.code === 'ERR_TSM_AUXBLOB_MALFORMED')) throw e;
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), check), { numRuns: 500 });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        (edits) => {
          const b = Uint8Array.from(valid);
          for (const [at, value] of edits) b[at] = value;
          check(b);
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('parseSnpCertTable() reads a table of real AMD certificates', { skip: NEEDS_EVIDENCE }, () => {
    const [vcek] = certDers('virtee-sev/vcek_milan.der');
    const [ask] = certDers('virtee-sev/milan_ask.pem');
    const [ark] = certDers('virtee-sev/milan_ark.pem');
    const entries = parseSnpCertTable(
      encodeSnpCertTable([
        { guid: SNP_CERT_GUID.VCEK, data: vcek! },
        { guid: SNP_CERT_GUID.ASK, data: ask! },
        { guid: SNP_CERT_GUID.ARK, data: ark! },
      ]),
    );
    assert.deepEqual(
      entries.map((e) => e.data),
      [vcek, ask, ark],
    );
  });
});

describe('encodeSnpCertTable()', () => {
  test('encodeSnpCertTable() refuses a GUID that is not lower-case text', () => {
    assert.throws(
      () => encodeSnpCertTable([{ guid: SNP_CERT_GUID.VCEK.toUpperCase(), data: VCEK }]),
      TypeError,
    );
  });
});
