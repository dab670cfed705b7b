import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import {
  BROKER_BINDING_DOMAIN,
  brokerReportData,
  readTeePubkey,
  teePubkeyOf,
} from '../../src/broker/binding.ts';
import { isBrokerError } from '../../src/broker/errors.ts';
import { BINDING_DOMAIN, reportDataFor, SERVICE_BINDING_DOMAIN, spkiOf } from '../../src/ratls/index.ts';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
const spki = spkiOf(privateKey);
const nonce = new Uint8Array(32).fill(1);
const workload = new Uint8Array(32).fill(2);
const config = new Uint8Array(32).fill(3);

test('brokerReportData() has a domain of its own: a channel or service binding never stands for it', () => {
  assert.notEqual(BROKER_BINDING_DOMAIN, BINDING_DOMAIN);
  assert.notEqual(BROKER_BINDING_DOMAIN, SERVICE_BINDING_DOMAIN);
  const ours = Buffer.from(brokerReportData({ nonce, spki, workload, config })).toString('hex');
  assert.notEqual(ours, Buffer.from(reportDataFor({ domain: BINDING_DOMAIN, spki, nonce })).toString('hex'));
  assert.notEqual(
    ours,
    Buffer.from(reportDataFor({ domain: SERVICE_BINDING_DOMAIN, spki, workload, config })).toString('hex'),
  );
});

test('brokerReportData() changes with every part', () => {
  const base = Buffer.from(brokerReportData({ nonce, spki, workload, config })).toString('hex');
  const other = new Uint8Array(32).fill(9);
  const { privateKey: k2 } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  for (const changed of [
    { nonce: other, spki, workload, config },
    { nonce, spki: spkiOf(k2), workload, config },
    { nonce, spki, workload: other, config },
    { nonce, spki, workload, config: other },
  ]) {
    assert.notEqual(Buffer.from(brokerReportData(changed)).toString('hex'), base);
  }
  assert.throws(() => brokerReportData({ nonce: new Uint8Array(16), spki, workload, config }), RangeError);
});

test('readTeePubkey() takes an EC public JWK and gives back its SPKI', () => {
  const jwk = teePubkeyOf(privateKey);
  assert.equal(jwk.alg, 'ECDH-ES+A256KW');
  assert.deepEqual(readTeePubkey(jwk).spki, spki);
});

test('readTeePubkey() refuses RSA keys, private members, other algorithms and unknown members', () => {
  const jwk = teePubkeyOf(privateKey);
  const { privateKey: rsa } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  for (const bad of [
    { ...rsa.export({ format: 'jwk' }), alg: 'RSA1_5' },
    { ...jwk, d: privateKey.export({ format: 'jwk' }).d },
    { ...jwk, alg: 'ECDH-ES' },
    { ...jwk, crv: 'P-521' },
    { ...jwk, kid: 'x' },
    { ...jwk, x: `${jwk.x}=` },
    { ...jwk, y: jwk.x },
  ]) {
    assert.throws(
      () => readTeePubkey(bad),
      (e) => isBrokerError(e, 'ERR_BROKER_REQUEST_INVALID'),
    );
  }
});
