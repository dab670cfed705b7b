import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  children,
  DerReader,
  readBigInt,
  readBoolean,
  readNode,
  readOid,
  readOne,
  readString,
  readTime,
} from '../../src/attestation/der.ts';
import { AttestationError } from '../../src/attestation/errors.ts';
import { boolean, integer, oid, sequence, TAG, time, tlv } from '../../src/lib/der.ts';

const malformed = (fn: () => unknown) =>
  assert.throws(fn, (e: unknown) => e instanceof AttestationError && e.code === 'ERR_EVIDENCE_MALFORMED');

describe('DER reading', () => {
  test('readNode() rejects indefinite, non-minimal and overlong lengths', () => {
    malformed(() => readNode(Uint8Array.of(0x30, 0x80, 0, 0), 0));
    malformed(() => readNode(Uint8Array.of(0x04, 0x81, 0x05, 1, 2, 3, 4, 5), 0));
    malformed(() => readNode(Uint8Array.of(0x04, 0x82, 0x00, 0x90, ...new Uint8Array(0x90)), 0));
    malformed(() => readNode(Uint8Array.of(0x04, 0x85, 1, 0, 0, 0, 0), 0));
    malformed(() => readNode(Uint8Array.of(0x04, 0x03, 1, 2), 0));
    malformed(() => readNode(Uint8Array.of(0x1f, 0x01, 0x00), 0));
    const long = readNode(Uint8Array.of(0x04, 0x81, 0x80, ...new Uint8Array(0x80)), 0);
    assert.equal(long.value.byteLength, 0x80);
  });

  test('readOne() rejects trailing bytes', () => {
    malformed(() => readOne(Uint8Array.of(0x05, 0x00, 0x00)));
  });

  test('readBigInt() accepts minimal integers only', () => {
    assert.equal(readBigInt(readOne(Uint8Array.of(0x02, 0x02, 0x00, 0xd9))), 217n);
    assert.equal(readBigInt(readOne(Uint8Array.of(0x02, 0x01, 0xff))), -1n);
    malformed(() => readBigInt(readOne(Uint8Array.of(0x02, 0x02, 0x00, 0x05))));
    malformed(() => readBigInt(readOne(Uint8Array.of(0x02, 0x02, 0xff, 0x85))));
    malformed(() => readBigInt(readOne(Uint8Array.of(0x02, 0x00))));
  });

  test('readBoolean() accepts only 0x00 and 0xFF', () => {
    assert.equal(readBoolean(readOne(boolean(true))), true);
    malformed(() => readBoolean(readOne(Uint8Array.of(0x01, 0x01, 0x01))));
  });

  test('readOid() decodes and rejects non-minimal arcs', () => {
    assert.equal(readOid(readOne(oid('1.3.6.1.4.1.3704.1.3.8'))), '1.3.6.1.4.1.3704.1.3.8');
    assert.equal(readOid(readOne(oid('2.999.1'))), '2.999.1');
    malformed(() => readOid(readOne(Uint8Array.of(0x06, 0x02, 0x80, 0x01))));
    malformed(() => readOid(readOne(Uint8Array.of(0x06, 0x01, 0x81))));
  });

  test('readTime() reads UTCTime and GeneralizedTime and rejects impossible dates', () => {
    const enc = (tag: number, s: string) => readOne(tlv(tag, new TextEncoder().encode(s)));
    assert.equal(readTime(enc(TAG.UTC_TIME, '451022172305Z')).toISOString(), '2045-10-22T17:23:05.000Z');
    assert.equal(readTime(enc(TAG.UTC_TIME, '991231235959Z')).toISOString(), '1999-12-31T23:59:59.000Z');
    assert.equal(
      readTime(enc(TAG.GENERALIZED_TIME, '20510101000000Z')).toISOString(),
      '2051-01-01T00:00:00.000Z',
    );
    for (const s of ['450231000000Z', '451322000000Z', '451022240000Z', '4510221723Z', '451022172305+0000']) {
      malformed(() => readTime(enc(TAG.UTC_TIME, s)));
    }
  });

  test('readString() rejects invalid UTF-8 and non-printable PrintableString', () => {
    malformed(() => readString(readOne(Uint8Array.of(TAG.UTF8_STRING, 1, 0xff))));
    malformed(() => readString(readOne(Uint8Array.of(TAG.PRINTABLE_STRING, 1, 0x40))));
  });

  test('DerReader walks a sequence and refuses leftovers', () => {
    const r = children(readOne(sequence(integer(1), integer(2))));
    assert.equal(readBigInt(r.next(TAG.INTEGER)), 1n);
    malformed(() => r.end());
    assert.equal(r.optional(TAG.BOOLEAN), undefined);
    r.next(TAG.INTEGER);
    r.end();
    malformed(() => new DerReader(new Uint8Array(0)).next());
  });
});

describe('DER writing', () => {
  test('integer() and readBigInt() round-trip', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(1n << 300n), max: 1n << 300n }), (n) => {
        assert.equal(readBigInt(readOne(integer(n))), n);
      }),
      { numRuns: 300 },
    );
  });

  test('time() writes UTCTime before 2050 and GeneralizedTime from 2050', () => {
    assert.equal(time(new Date('2049-12-31T23:59:59Z'))[0], TAG.UTC_TIME);
    assert.equal(time(new Date('2050-01-01T00:00:00Z'))[0], TAG.GENERALIZED_TIME);
    fc.assert(
      fc.property(
        fc.date({
          min: new Date('1950-01-01T00:00:00Z'),
          max: new Date('9999-12-31T23:59:59Z'),
          noInvalidDate: true,
        }),
        (d) => {
          const whole = new Date(Math.floor(d.getTime() / 1000) * 1000);
          assert.equal(readTime(readOne(time(whole))).getTime(), whole.getTime());
        },
      ),
      { numRuns: 300 },
    );
  });

  test('readNode() on random bytes throws only AttestationError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          const node = readOne(bytes);
          if ((node.tag & 0x20) !== 0) {
            const r = children(node);
            while (!r.done) r.next();
          }
        } catch (e) {
          if (!(e instanceof AttestationError)) throw e;
        }
      }),
      { numRuns: 1000 },
    );
  });
});
