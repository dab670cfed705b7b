import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { TsmError } from '../../../../src/host/backends/tsm/errors.ts';
import { readTdxQuote } from '../../../../src/host/backends/tsm/tdx.ts';
import { EVIDENCE, evidenceBytes, NEEDS_EVIDENCE } from '../../../attestation/evidence.ts';
import { fakeTdxQuote } from './fake-tsm.ts';

function malformed(quote: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => readTdxQuote(quote),
    (e: unknown) =>
      e instanceof TsmError && e.code === 'ERR_TSM_OUTBLOB_MALFORMED' && pattern.test(e.message),
  );
}

/** TDX quotes of shared/evidence with the REPORTDATA the independent checker decoded (RESULTS.json). */
function realQuotes(): {
  path: string;
  bytes: Uint8Array;
  reportData: string;
  version: number;
  trailing: number;
}[] {
  const results = JSON.parse(readFileSync(new URL('RESULTS.json', EVIDENCE), 'utf8')) as {
    dcap: Record<
      string,
      { kind: string; header: { version: number }; body: { report_data: string }; trailing_bytes: number }
    >;
  };
  const out = [];
  for (const [path, r] of Object.entries(results.dcap)) {
    if (!r.kind.startsWith('TDX')) continue;
    let bytes: Uint8Array;
    try {
      bytes = evidenceBytes(path);
    } catch {
      continue; // listed in RESULTS.json but not shipped in this evidence folder
    }
    if (path.endsWith('.hex') || path.endsWith('.txt')) {
      const text = Buffer.from(bytes).toString('latin1').trim().replace(/^0x/, '');
      bytes = new Uint8Array(Buffer.from(text, 'hex'));
    }
    out.push({
      path,
      bytes,
      reportData: r.body.report_data,
      version: r.header.version,
      trailing: r.trailing_bytes,
    });
  }
  return out;
}

describe('readTdxQuote()', () => {
  test('readTdxQuote() reads REPORTDATA from v4 and v5 quotes of both body types', () => {
    const reportData = Uint8Array.from({ length: 64 }, (_, i) => 255 - i);
    for (const [version, bodyType] of [
      [4, 2],
      [5, 2],
      [5, 3],
    ] as const) {
      const quote = fakeTdxQuote({ version, bodyType, reportData });
      const info = readTdxQuote(quote);
      assert.equal(info.version, version);
      assert.deepEqual(info.reportData, reportData);
      assert.equal(info.length, quote.length);
    }
  });

  test('readTdxQuote() accepts zero padding after the signature data and refuses anything else there', () => {
    const quote = fakeTdxQuote();
    const padded = Uint8Array.from([...quote, 0, 0, 0]);
    assert.equal(readTdxQuote(padded).length, quote.length);
    malformed(
      Uint8Array.from([...quote, 0, 1]),
      new RegExp(`byte ${quote.length + 1} after the signature data`),
    );
  });

  test('readTdxQuote() refuses truncated quotes at every length', () => {
    const quote = fakeTdxQuote({ version: 5, bodyType: 3 });
    for (let n = 0; n < quote.length; n += 37) malformed(quote.subarray(0, n), /shorter|cut short|needs/);
    malformed(quote.subarray(0, quote.length - 1), /needs \d+ bytes/);
  });

  test('readTdxQuote() refuses other versions, key types, TEE types and body types', () => {
    const edit = (f: (v: DataView) => void, version: 4 | 5 = 4) => {
      const q = fakeTdxQuote({ version });
      f(new DataView(q.buffer));
      return q;
    };
    malformed(
      edit((v) => v.setUint16(0, 3, true)),
      /version 3/,
    );
    malformed(
      edit((v) => v.setUint16(2, 3, true)),
      /key type 3/,
    );
    malformed(
      edit((v) => v.setUint32(4, 0, true)),
      /TEE type 0x0 is not TDX/,
    );
    malformed(
      edit((v) => v.setUint16(48, 1, true), 5),
      /body type 1/,
    );
    malformed(
      edit((v) => v.setUint32(50, 648, true), 5),
      /body size 648/,
    );
  });

  test('readTdxQuote() lets only its own errors escape for any bytes', () => {
    const base = fakeTdxQuote({ version: 5, sigLength: 8 });
    const check = (b: Uint8Array) => {
      try {
        readTdxQuote(b);
      } catch (e) {
        if (!(e instanceof TsmError && e.code === 'ERR_TSM_OUTBLOB_MALFORMED')) throw e;
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 700 }), check), { numRuns: 300 });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.nat(255)), { minLength: 1, maxLength: 4 }),
        (edits) => {
          const b = Uint8Array.from(base);
          for (const [at, value] of edits) b[at] = value;
          check(b);
        },
      ),
      { numRuns: 1000 },
    );
  });

  test('readTdxQuote() reads the REPORTDATA of every real TDX quote', { skip: NEEDS_EVIDENCE }, () => {
    const quotes = realQuotes();
    assert.ok(quotes.length >= 10, `only ${quotes.length} TDX quotes found`);
    let read = 0;
    for (const q of quotes) {
      const tail = q.bytes.subarray(q.bytes.length - q.trailing);
      if (tail.some((b) => b !== 0)) {
        // go-tdx-guest appends a text trailer to one quote on purpose; a kernel never hands that over.
        malformed(q.bytes, /after the signature data is not zero padding/);
        continue;
      }
      const info = readTdxQuote(q.bytes);
      assert.equal(info.version, q.version, q.path);
      assert.equal(Buffer.from(info.reportData).toString('hex'), q.reportData, q.path);
      assert.equal(info.length, q.bytes.length - q.trailing, q.path);
      read++;
    }
    assert.ok(read >= 9, `only ${read} quotes read`);
  });
});
