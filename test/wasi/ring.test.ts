import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ByteRing, RECORD_HEADER, splitRecords } from '../../src/wasi/ring.ts';

test('ByteRing.allocate() refuses a capacity that is not a power of two', () => {
  assert.throws(() => ByteRing.allocate(100), RangeError);
  assert.throws(() => ByteRing.allocate(8), RangeError);
  assert.equal(new ByteRing(ByteRing.allocate(64)).capacity, 64);
});

test('ByteRing.write() stops at capacity and read() returns the bytes in order across the wrap', () => {
  const ring = new ByteRing(ByteRing.allocate(16));
  assert.equal(ring.write(Uint8Array.from({ length: 12 }, (_, i) => i)), 12);
  const first = new Uint8Array(10);
  assert.equal(ring.read(first), 10);
  assert.deepEqual([...first], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  // 2 bytes remain; 14 more fit, wrapping past the end of the buffer.
  assert.equal(ring.write(Uint8Array.from({ length: 20 }, (_, i) => 100 + i)), 14);
  assert.equal(ring.free(), 0);
  const rest = new Uint8Array(32);
  assert.equal(ring.read(rest), 16);
  assert.deepEqual([...rest.subarray(0, 16)], [10, 11, ...Array.from({ length: 14 }, (_, i) => 100 + i)]);
  assert.equal(ring.available(), 0);
});

test('ByteRing.writeRecord() writes a whole record or nothing', () => {
  const ring = new ByteRing(ByteRing.allocate(16));
  assert.equal(ring.writeRecord(1, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)), true);
  assert.equal(ring.writeRecord(2, Uint8Array.of(9)), false, 'needs 5 bytes, 4 free');
  assert.equal(ring.available(), RECORD_HEADER + 8);
});

test('ByteRing sequences move on every change so waiters cannot miss one', () => {
  const ring = new ByteRing(ByteRing.allocate(16));
  const p0 = ring.producerSeq();
  ring.write(Uint8Array.of(1));
  const p1 = ring.producerSeq();
  assert.notEqual(p1, p0);
  const c0 = ring.consumerSeq();
  ring.read(new Uint8Array(1));
  assert.notEqual(ring.consumerSeq(), c0);
  ring.close();
  assert.notEqual(ring.producerSeq(), p1);
  assert.equal(ring.closed(), true);
});

test('ByteRing.producerChanged() resolves once the producer writes', async () => {
  const ring = new ByteRing(ByteRing.allocate(16));
  const seq = ring.producerSeq();
  const pending = ring.producerChanged(seq);
  assert.ok(pending !== undefined);
  ring.write(Uint8Array.of(7));
  await pending;
  assert.equal(ring.producerChanged(seq), undefined, 'already changed: no wait');
});

test('splitRecords() joins consecutive records of one descriptor and keeps the order', () => {
  const ring = new ByteRing(ByteRing.allocate(64));
  ring.writeRecord(1, Uint8Array.of(0x61));
  ring.writeRecord(1, Uint8Array.of(0x62));
  ring.writeRecord(2, Uint8Array.of(0x63));
  ring.writeRecord(1, Uint8Array.of());
  ring.writeRecord(1, Uint8Array.of(0x64));
  const bytes = new Uint8Array(ring.available());
  ring.read(bytes);
  const parts = splitRecords(bytes).map(({ fd, data }) => `${fd}:${Buffer.from(data).toString()}`);
  assert.deepEqual(parts, ['1:ab', '2:c', '1:d']);
});

test('splitRecords() rejects a record cut short', () => {
  assert.throws(() => splitRecords(Uint8Array.of(1, 5, 0, 0, 0x61)), RangeError);
  assert.throws(() => splitRecords(Uint8Array.of(1, 0, 0)), RangeError);
});

test('ByteRing carries any interleaving of writes and reads unchanged', () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.nat({ max: 40 })), { maxLength: 60 }),
      (steps) => {
        const ring = new ByteRing(ByteRing.allocate(32));
        const sent: number[] = [];
        const got: number[] = [];
        for (const step of steps) {
          if (typeof step === 'number') {
            const dst = new Uint8Array(step);
            got.push(...dst.subarray(0, ring.read(dst)));
          } else {
            sent.push(...step.subarray(0, ring.write(step)));
          }
          assert.ok(ring.available() >= 0 && ring.available() <= 32);
        }
        const dst = new Uint8Array(64);
        got.push(...dst.subarray(0, ring.read(dst)));
        assert.deepEqual(got, sent);
      },
    ),
    { numRuns: 300 },
  );
});
