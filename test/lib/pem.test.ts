import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isDonjonError } from '../../src/lib/errors.ts';
import { PemError, readPem, writePem } from '../../src/lib/pem.ts';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * The oracle, written apart from the reader: canonical base64 is whole quads of the alphabet, padding only
 * at the end (`xx==` or `xxx=`), and the bits the padding leaves over are zero.
 */
function isCanonicalBase64(body: string): boolean {
  if (body.length === 0 || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(body))
    return false;
  if (body.endsWith('==')) return (ALPHABET.indexOf(body[body.length - 3]!) & 0x0f) === 0;
  if (body.endsWith('=')) return (ALPHABET.indexOf(body[body.length - 2]!) & 0x03) === 0;
  return true;
}

const block = (body: string, label = 'CERTIFICATE') =>
  `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
const der = fc.uint8Array({ minLength: 1, maxLength: 300 });
const label = fc.constantFrom('CERTIFICATE', 'X509 CRL', 'PUBLIC KEY', 'EC PRIVATE KEY', 'A1');
const refused = (fn: () => unknown) => assert.throws(fn, (e: unknown) => e instanceof PemError);

describe('readPem()', () => {
  test('readPem() reads back any block writePem() writes, whatever its label', () => {
    fc.assert(
      fc.property(der, label, (bytes, l) => {
        assert.deepEqual(readPem(writePem(bytes, l)), [{ label: l, der: bytes }]);
      }),
      { numRuns: 300 },
    );
  });

  test('readPem() reads any canonical body the same whatever its line breaks and surrounding text', () => {
    fc.assert(
      fc.property(
        der,
        fc.integer({ min: 1, max: 100 }),
        fc.constantFrom('\n', '\r\n', ' \n', '\t\n'),
        fc.string({ maxLength: 20 }).filter((s) => !s.includes('-----')),
        (bytes, width, eol, around) => {
          const b64 = Buffer.from(bytes).toString('base64');
          const lines: string[] = [];
          for (let i = 0; i < b64.length; i += width) lines.push(b64.slice(i, i + width));
          const text = `${around}\n-----BEGIN X-----${eol}${lines.join(eol)}${eol}-----END X-----${around}`;
          assert.deepEqual(readPem(text), [{ label: 'X', der: bytes }]);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('readPem() refuses every non-canonical base64 body and accepts every canonical one', () => {
    // Near misses of canonical encodings (one character changed, dropped or added) and arbitrary strings
    // over the alphabet and the pad: the reader must agree with the oracle on each.
    const mutated = fc
      .tuple(der, fc.nat(), fc.constantFrom(...`${ALPHABET}=*-.`), fc.constantFrom('set', 'drop', 'add'))
      .map(([bytes, at, c, how]) => {
        const b64 = Buffer.from(bytes).toString('base64');
        const i = at % b64.length;
        if (how === 'set') return b64.slice(0, i) + c + b64.slice(i + 1);
        if (how === 'drop') return b64.slice(0, i) + b64.slice(i + 1);
        return b64.slice(0, i) + c + b64.slice(i);
      });
    const arbitrary = fc.string({ unit: fc.constantFrom(...`${ALPHABET}=`), maxLength: 12 });
    fc.assert(
      fc.property(fc.oneof(mutated, arbitrary), (body) => {
        const text = block(body);
        if (isCanonicalBase64(body)) {
          const [b] = readPem(text);
          assert.equal(Buffer.from(b!.der).toString('base64'), body);
        } else {
          refused(() => readPem(text));
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('readPem() refuses non-zero padding bits, an empty body and characters outside the alphabet', () => {
    assert.deepEqual(readPem(block('MAA='))[0]!.der, Uint8Array.of(0x30, 0x00));
    assert.deepEqual(readPem(block('MA=='))[0]!.der, Uint8Array.of(0x30));
    for (const body of ['MAB=', 'MB==', 'MAA', 'MAA==', 'M=AA', 'MA*A', 'MA-A', '', '====']) {
      refused(() => readPem(block(body)));
    }
  });

  test('readPem() refuses a block whose END label differs from its BEGIN label', () => {
    assert.throws(
      () => readPem('-----BEGIN CERTIFICATE-----\nMAA=\n-----END X509 CRL-----\n'),
      (e: unknown) =>
        isDonjonError(e, 'ERR_PEM_MALFORMED') && /BEGIN CERTIFICATE ends with END X509 CRL/.test(e.message),
    );
  });

  test('readPem() returns only the blocks of the label asked for, after checking them all', () => {
    const a = Uint8Array.of(1, 2, 3);
    const b = Uint8Array.of(4, 5);
    const bundle = `# comment\n${writePem(a)}between\n${writePem(b, 'X509 CRL')}`;
    assert.deepEqual(readPem(bundle), [
      { label: 'CERTIFICATE', der: a },
      { label: 'X509 CRL', der: b },
    ]);
    assert.deepEqual(readPem(bundle, { label: 'X509 CRL' }), [{ label: 'X509 CRL', der: b }]);
    refused(() => readPem(`${writePem(a)}${block('MAB=', 'X509 CRL')}`, { label: 'CERTIFICATE' }));
  });

  test('readPem() under `only` refuses any text but whitespace around and between the blocks', () => {
    const a = writePem(Uint8Array.of(1, 2, 3));
    assert.equal(readPem(` \n${a}\n\t${a}\r\n`, { only: true }).length, 2);
    assert.deepEqual(readPem('', { only: true }), []);
    refused(() => readPem(`junk${a}`, { only: true }));
    refused(() => readPem(`${a}junk${a}`, { only: true }));
    refused(() => readPem(`${a}junk`, { only: true }));
    refused(() => readPem('-----BEGIN CERTIFICATE-----\nMAA=\n', { only: true }));
    assert.equal(readPem(`junk${a}junk`).length, 1);
  });

  test('readPem() lets only PemError escape on arbitrary text, and TypeError on a non-string', () => {
    const pieces = fc.constantFrom(
      '-----BEGIN X-----',
      '-----END X-----',
      '-----END Y-----',
      'MAA=',
      '\n',
      ' ',
      '=',
    );
    fc.assert(
      fc.property(
        fc.array(fc.oneof(pieces, fc.string({ maxLength: 8 })), { maxLength: 12 }),
        fc.boolean(),
        (parts, only) => {
          try {
            readPem(parts.join(''), { only });
          } catch (e) {
            if (!(e instanceof PemError)) throw e;
            assert.equal(e.code, 'ERR_PEM_MALFORMED');
            assert.match(e.message, /^Cannot read PEM: /);
          }
        },
      ),
      { numRuns: 1000 },
    );
    assert.throws(() => readPem(42 as unknown as string), TypeError);
  });
});

describe('writePem()', () => {
  test('writePem() writes 64-column lines ended by a newline, as OpenSSL does', () => {
    const text = writePem(new Uint8Array(100).fill(7));
    const lines = text.split('\n');
    assert.equal(lines[0], '-----BEGIN CERTIFICATE-----');
    assert.equal(lines[1]!.length, 64);
    assert.equal(lines[2]!.length, 64);
    assert.equal(lines[3]!.length, 136 - 128);
    assert.equal(lines[4], '-----END CERTIFICATE-----');
    assert.equal(lines[5], '');
    assert.equal(lines.length, 6);
  });

  test('writePem() refuses an empty object and a label the reader would not read', () => {
    assert.throws(() => writePem(new Uint8Array(0)), TypeError);
    for (const l of ['', 'lower', 'TWO  SPACES', ' LEAD', 'DASH-ED']) {
      assert.throws(() => writePem(Uint8Array.of(1), l), RangeError, l);
    }
  });
});
