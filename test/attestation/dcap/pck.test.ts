import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { toHex } from '../../../src/attestation/bytes.ts';
import { readPckExtension, SGX_OID } from '../../../src/attestation/dcap/pck.ts';
import { parseDcapQuote } from '../../../src/attestation/dcap/quote.ts';
import { AttestationError } from '../../../src/attestation/errors.ts';
import { parseCertificate } from '../../../src/attestation/x509.ts';
import { integer, octetString, oid, sequence, tlv } from '../../../src/lib/der.ts';
import { DCAP_SAMPLES, dcapResults, NEEDS_EVIDENCE, quoteBytes } from '../evidence.ts';
import { makePki, PLATFORM, sgxExtension } from './forge.ts';

const results = NEEDS_EVIDENCE === false ? dcapResults() : {};

function rejects(fn: () => unknown, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof AttestationError, String(e));
    assert.equal(e.code, 'ERR_CHAIN_INVALID', e.message);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  });
}

describe('readPckExtension() on real PCK certificates', () => {
  for (const path of DCAP_SAMPLES) {
    test(`readPckExtension() reads the PCK of ${path} as RESULTS.json does`, { skip: NEEDS_EVIDENCE }, () => {
      const expected = results[path]!.checks.pck_extensions;
      const pck = readPckExtension(parseCertificate(parseDcapQuote(quoteBytes(path)).pckChain[0]!));
      assert.deepEqual(
        {
          ppid: toHex(pck.ppid),
          tcb_comp_svns: [...pck.cpuSvnComponents],
          pcesvn: pck.pceSvn,
          cpusvn: toHex(pck.cpuSvn),
          pceid: toHex(pck.pceId),
          fmspc: toHex(pck.fmspc),
          sgx_type: pck.sgxType,
        },
        expected,
      );
      // Platform CA certificates carry the instance id and configuration; Processor CA ones do not.
      const platform = results[path]!.checks.pck_chain_subjects[1]!.includes('Platform CA');
      assert.equal(pck.platformInstanceId !== undefined, platform);
      assert.equal(pck.configuration !== undefined, platform);
    });
  }
});

describe('readPckExtension() on forged extensions', () => {
  const SGX = SGX_OID.extension;
  const withExtension = (value: Uint8Array) => parseCertificate(makePki({ pckExtension: value }).pck.der);

  test('readPckExtension() reads the factory PCK', () => {
    const pck = readPckExtension(parseCertificate(makePki().pck.der));
    assert.deepEqual([...pck.cpuSvnComponents], PLATFORM.components);
    assert.equal(pck.pceSvn, PLATFORM.pceSvn);
    assert.equal(toHex(pck.fmspc), PLATFORM.fmspc);
    assert.deepEqual(pck.configuration, { dynamicPlatform: false, cachedKeys: true, smtEnabled: true });
  });

  test('readPckExtension() rejects a certificate without the SGX extension', () => {
    const root = parseCertificate(makePki().root.der);
    rejects(() => readPckExtension(root), /has none/);
  });

  test('readPckExtension() rejects missing, repeated or malformed items', () => {
    const item = (id: string, value: Uint8Array) => sequence(oid(id), value);
    const full = sgxExtension(PLATFORM);
    rejects(() => readPckExtension(withExtension(sequence())), /TCB is missing/);
    rejects(() => readPckExtension(withExtension(tlv(0x04, full))), /malformed DER/);
    // The FMSPC five bytes long.
    const short = sgxExtension({ ...PLATFORM, fmspc: '00a0671100' });
    rejects(() => readPckExtension(withExtension(short)), /FMSPC is not an OCTET STRING of 6 bytes/);
    // A TCB component above 255.
    const big = sgxExtension({ ...PLATFORM, components: [256, ...PLATFORM.components.slice(1)] });
    rejects(() => readPckExtension(withExtension(big)), /malformed DER/);
    // The same item twice.
    const twice = sequence(
      item(`${SGX}.1`, octetString(new Uint8Array(16))),
      item(`${SGX}.3`, octetString(new Uint8Array(2))),
      item(`${SGX}.3`, octetString(new Uint8Array(2))),
    );
    rejects(() => readPckExtension(withExtension(twice)), /twice/);
    // The SGX type as an INTEGER instead of ENUMERATED.
    rejects(
      () => readPckExtension(withExtension(sgxExtension(PLATFORM, { sgxTypeTag: 0x02 }))),
      /ENUMERATED/,
    );
    // A TCB with a nineteenth item: a component this code would not compare.
    const extraTcbItem = item(`${SGX}.2.19`, integer(1));
    rejects(() => readPckExtension(withExtension(sgxExtension(PLATFORM, { extraTcbItem }))), /other than/);
  });

  test('readPckExtension() skips items it does not know', () => {
    const extraItem = sequence(oid(`${SGX}.42`), integer(7));
    const pck = readPckExtension(withExtension(sgxExtension(PLATFORM, { extraItem })));
    assert.equal(pck.pceSvn, PLATFORM.pceSvn);
  });
});
