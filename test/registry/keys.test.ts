import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  decryptPrivateKey,
  encryptPrivateKey,
  generateSigningKey,
  publicKeyPem,
  readPublicKey,
  signPayload,
  verifyPayload,
} from '../../src/registry/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'donjon-keys-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('encryptPrivateKey() round-trips, and a wrong passphrase is ERR_KEY_PASSPHRASE', () => {
  const { privateKey, publicKey } = generateSigningKey();
  const pem = encryptPrivateKey(privateKey, 'pass phrase');
  assert.match(
    pem,
    /^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n(?:[A-Za-z0-9+/=]{64}\n)*[A-Za-z0-9+/=]{1,64}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n$/,
  );
  const body = JSON.parse(Buffer.from(pem.split('\n').slice(1, -2).join(''), 'base64').toString('utf8'));
  assert.deepEqual(body.kdf.params, { N: 65536, r: 8, p: 1 });
  assert.equal(body.kdf.name, 'scrypt');
  assert.equal(body.cipher.name, 'nacl/secretbox');
  assert.equal(Buffer.from(body.cipher.nonce, 'base64').length, 24);
  const opened = decryptPrivateKey(pem, 'pass phrase', 'k');
  assert.equal(verifyPayload(Buffer.from('x'), signPayload(Buffer.from('x'), opened), publicKey), true);
  assert.throws(() => decryptPrivateKey(pem, 'pass phrase ', 'k'), { code: 'ERR_KEY_PASSPHRASE' });
});

test('decryptPrivateKey() refuses tampered parameters before deriving a key', () => {
  const { privateKey } = generateSigningKey();
  const pem = encryptPrivateKey(privateKey, '');
  const body = JSON.parse(Buffer.from(pem.split('\n').slice(1, -2).join(''), 'base64').toString('utf8'));
  const rewrap = (b: unknown): string =>
    `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n${Buffer.from(JSON.stringify(b)).toString('base64')}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n`;
  const cases: [unknown, RegExp][] = [
    [{ ...body, kdf: { ...body.kdf, params: { N: 2 ** 30, r: 8, p: 1 } } }, /scrypt parameters/],
    [{ ...body, kdf: { ...body.kdf, name: 'pbkdf2' } }, /not scrypt/],
    [{ ...body, cipher: { ...body.cipher, name: 'aes' } }, /not nacl\/secretbox/],
    [{ ...body, cipher: { ...body.cipher, nonce: 'AAAA' } }, /nonce is not 24 bytes/],
    [{ ...body, ciphertext: 'not base64!' }, /not base64/],
  ];
  for (const [b, why] of cases)
    assert.throws(() => decryptPrivateKey(rewrap(b), '', 'k'), { code: 'ERR_KEY_INVALID', message: why });
  assert.throws(
    () => decryptPrivateKey('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', '', 'k'),
    {
      code: 'ERR_KEY_INVALID',
      message: /not a cosign private key/,
    },
  );
});

test('readPublicKey() takes what openssl writes, and signatures openssl makes verify', () => {
  execFileSync('openssl', [
    'ecparam',
    '-name',
    'prime256v1',
    '-genkey',
    '-noout',
    '-out',
    join(dir, 'k.pem'),
  ]);
  execFileSync('openssl', ['ec', '-in', join(dir, 'k.pem'), '-pubout', '-out', join(dir, 'k.pub')], {
    stdio: 'ignore',
  });
  writeFileSync(join(dir, 'payload'), 'payload bytes');
  execFileSync('openssl', [
    'dgst',
    '-sha256',
    '-sign',
    join(dir, 'k.pem'),
    '-out',
    join(dir, 'sig'),
    join(dir, 'payload'),
  ]);
  const key = readPublicKey(readFileSync(join(dir, 'k.pub'), 'utf8'), 'k.pub');
  const sig = readFileSync(join(dir, 'sig')).toString('base64');
  assert.equal(verifyPayload(Buffer.from('payload bytes'), sig, key), true);
  assert.equal(verifyPayload(Buffer.from('payload bytes!'), sig, key), false);
  assert.equal(verifyPayload(Buffer.from('payload bytes'), 'not base64 ***', key), false);
});

test('publicKeyPem() writes a PEM that openssl reads, and signatures made here verify under openssl', () => {
  const { privateKey, publicKey } = generateSigningKey();
  writeFileSync(join(dir, 'ours.pub'), publicKeyPem(publicKey));
  writeFileSync(join(dir, 'msg'), 'signed here');
  writeFileSync(
    join(dir, 'msg.sig'),
    Buffer.from(signPayload(Buffer.from('signed here'), privateKey), 'base64'),
  );
  const out = execFileSync(
    'openssl',
    [
      'dgst',
      '-sha256',
      '-verify',
      join(dir, 'ours.pub'),
      '-signature',
      join(dir, 'msg.sig'),
      join(dir, 'msg'),
    ],
    { encoding: 'utf8' },
  );
  assert.match(out, /Verified OK/);
});

test('keys other than ECDSA P-256 are refused with ERR_KEY_INVALID', () => {
  const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const pem = p384.publicKey.export({ format: 'pem', type: 'spki' }).toString();
  assert.throws(() => readPublicKey(pem, 'p384.pub'), {
    code: 'ERR_KEY_INVALID',
    message: /not an ECDSA P-256 key/,
  });
  assert.throws(() => encryptPrivateKey(p384.privateKey, ''), { code: 'ERR_KEY_INVALID' });
  assert.throws(() => readPublicKey('hello', 'x.pub'), {
    code: 'ERR_KEY_INVALID',
    message: /not a PEM public key/,
  });
});
