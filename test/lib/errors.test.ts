import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ATTESTATION_ERRORS, AttestationError } from '../../src/attestation/errors.ts';
import { SNP_MEASURE_ERRORS, SnpMeasureError } from '../../src/attestation/snp/measure/errors.ts';
import { BROKER_CATEGORIES, BrokerError } from '../../src/broker/errors.ts';
import { CLIENT_ERRORS, ClientError } from '../../src/client/errors.ts';
import { TSM_ERRORS, TsmError } from '../../src/host/backends/tsm/errors.ts';
import { COLLATERAL_ERRORS, CollateralError } from '../../src/host/collateral/errors.ts';
import { API_ERRORS, ApiError } from '../../src/host/errors.ts';
import { KEEPMGR_ERRORS, KeepManagerError } from '../../src/host/keepmgr/errors.ts';
import { KEEP_ERRORS, KeepError } from '../../src/keep/errors.ts';
import { categoryOf, DonjonError, errorCategories, isDonjonError, reasonOf } from '../../src/lib/errors.ts';
import { PROTOCOL_ERRORS, ProtocolError } from '../../src/protocol/errors.ts';
import { RATLS_ERRORS, RatlsError } from '../../src/ratls/errors.ts';
import { REGISTRY_ERRORS, RegistryError } from '../../src/registry/errors.ts';
import { WASI_ERRORS, WasiError } from '../../src/wasi/errors.ts';

// Every area's registry and the class that carries its codes.
const areas = [
  { name: 'broker', codes: BROKER_CATEGORIES, make: (c: string) => new BrokerError(c as never, 'm') },
  { name: 'registry', codes: REGISTRY_ERRORS, make: (c: string) => new RegistryError(c as never, 'm') },
  { name: 'keepmgr', codes: KEEPMGR_ERRORS, make: (c: string) => new KeepManagerError(c as never, 'm') },
  {
    name: 'attestation',
    codes: ATTESTATION_ERRORS,
    make: (c: string) => new AttestationError(c as never, 'm'),
  },
  { name: 'measure', codes: SNP_MEASURE_ERRORS, make: (c: string) => new SnpMeasureError(c as never, 'm') },
  { name: 'protocol', codes: PROTOCOL_ERRORS, make: (c: string) => new ProtocolError(c as never, 'm') },
  { name: 'ratls', codes: RATLS_ERRORS, make: (c: string) => new RatlsError(c as never, 'm') },
  { name: 'wasi', codes: WASI_ERRORS, make: (c: string) => new WasiError(c as never, 'm') },
  { name: 'keep', codes: KEEP_ERRORS, make: (c: string) => new KeepError(c as never, 'm') },
  { name: 'client', codes: CLIENT_ERRORS, make: (c: string) => new ClientError(c as never, 'm') },
  { name: 'collateral', codes: COLLATERAL_ERRORS, make: (c: string) => new CollateralError(c as never, 'm') },
  { name: 'tsm', codes: TSM_ERRORS, make: (c: string) => new TsmError(c as never, 'm') },
  {
    name: 'api',
    codes: Object.fromEntries(Object.entries(API_ERRORS).map(([c, v]) => [c, v.category])),
    make: (c: string) => new ApiError(c as never, 'm'),
  },
];

test('every error class of every area is a DonjonError carrying its registry category', () => {
  for (const area of areas) {
    for (const [code, category] of Object.entries(area.codes)) {
      const e = area.make(code);
      assert.ok(e instanceof DonjonError, `${area.name} ${code}`);
      assert.ok(e instanceof Error);
      assert.equal(e.code, code);
      assert.equal(e.category, category, `${area.name} ${code}`);
      assert.ok(errorCategories.includes(e.category));
      assert.notEqual(e.name, 'Error', `${area.name} names its class`);
    }
  }
});

test('no code means two things: a code shared by two areas has the same category in both', () => {
  const seen = new Map<string, { area: string; category: string }>();
  for (const area of areas) {
    for (const [code, category] of Object.entries(area.codes)) {
      const before = seen.get(code);
      if (before) assert.equal(category, before.category, `${code} in ${area.name} and ${before.area}`);
      seen.set(code, { area: area.name, category: category as string });
    }
  }
});

test('DonjonError.detail is the reason without the "Cannot <action>" lead, or the given detail', () => {
  const e = new ProtocolError('ERR_CBOR_MALFORMED', 'Cannot decode CBOR: truncated at byte 3: more');
  assert.equal(e.detail, 'truncated at byte 3: more');
  assert.equal(new ProtocolError('ERR_CBOR_MALFORMED', 'no voice here').detail, 'no voice here');
  assert.equal(new ProtocolError('ERR_CBOR_MALFORMED', 'Cannot go on').detail, 'Cannot go on');
  assert.equal(new ProtocolError('ERR_CBOR_MALFORMED', 'Cannot x: y', { detail: 'z' }).detail, 'z');
});

test('DonjonError passes its cause on', () => {
  const cause = new Error('below');
  assert.equal(new RatlsError('ERR_KEEP_CERT_MALFORMED', 'Cannot read: x', { cause }).cause, cause);
  assert.equal('cause' in new RatlsError('ERR_KEEP_CERT_MALFORMED', 'Cannot read: x'), false);
});

test('reasonOf() and categoryOf() read any thrown value', () => {
  assert.equal(reasonOf(new WasiError('ERR_WASM_INVALID', 'Cannot compile: bad magic')), 'bad magic');
  assert.equal(
    reasonOf(new Error('Cannot x: plain errors keep their whole message')),
    'Cannot x: plain errors keep their whole message',
  );
  assert.equal(reasonOf('text'), 'text');
  assert.equal(categoryOf(new WasiError('ERR_WASM_INVALID', 'm')), 'usage');
  assert.equal(categoryOf(new TypeError('bug')), 'internal');
  assert.equal(categoryOf(undefined), 'internal');
  assert.equal(isDonjonError(new KeepError('ERR_ATTACH_REFUSED', 'm'), 'ERR_ATTACH_REFUSED'), true);
  assert.equal(isDonjonError(new KeepError('ERR_ATTACH_REFUSED', 'm'), 'ERR_KEEP_INTERNAL'), false);
  assert.equal(isDonjonError(new Error('m')), false);
});

test('a ClientError takes the category of what refused it when that is known', () => {
  const e = new ClientError('ERR_HOST_REFUSED', 'Cannot find Keep x: no such Keep', {
    hostCode: 'ERR_KEEP_NOT_FOUND',
    category: API_ERRORS.ERR_KEEP_NOT_FOUND.category,
  });
  assert.equal(e.category, 'usage');
  assert.equal(e.hostCode, 'ERR_KEEP_NOT_FOUND');
  assert.equal(new ClientError('ERR_HOST_REFUSED', 'm').category, 'host');
});
