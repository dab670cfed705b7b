// cosign's key formats, so that keys users already have work here and keys made here work with cosign.
// Public keys are PEM `PUBLIC KEY` (SPKI). Private keys are PEM `ENCRYPTED SIGSTORE PRIVATE KEY` (or the
// older `ENCRYPTED COSIGN PRIVATE KEY`) whose body is JSON:
//   {"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":B64},
//    "cipher":{"name":"nacl/secretbox","nonce":B64},"ciphertext":B64}
// where the key is scrypt(passphrase, salt, N, r, p, 32), the cipher NaCl's secretbox (XSalsa20-Poly1305,
// the 16-byte tag first) and the plaintext the PKCS #8 DER of the private key. Only ECDSA P-256 keys are
// accepted: cosign's default, and the scheme its signature spec requires every implementation to support.
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  scryptSync,
} from 'node:crypto';
import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js';
import { RegistryError } from './errors.ts';

/** The PEM label cosign writes today. */
export const SIGSTORE_KEY_LABEL = 'ENCRYPTED SIGSTORE PRIVATE KEY';
/** The PEM label older cosign versions wrote; still read. */
export const COSIGN_KEY_LABEL = 'ENCRYPTED COSIGN PRIVATE KEY';

/** The scrypt parameters written (those of current cosign). */
export const SCRYPT_PARAMS = { N: 65536, r: 8, p: 1 } as const;
// The parameter sets read: cosign's older default and its current one. Anything else is refused, so a
// tampered key file cannot make the reader spend unbounded memory or time.
const ACCEPTED_N = new Set([32768, 65536]);

/** A PEM block's label and bytes. */
interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

/** The first PEM block of `text`, or undefined. */
function firstPem(text: string): PemBlock | undefined {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]*?)\r?\n?-----END \1-----/.exec(text);
  if (!m) return undefined;
  return { label: m[1]!, der: Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64') };
}

/** `der` as PEM with 64-character lines, as Go's encoding/pem writes it. */
function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function checkP256(key: KeyObject, what: string): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new RegistryError(
      'ERR_KEY_INVALID',
      `Cannot use ${what}: it is not an ECDSA P-256 key (${key.asymmetricKeyType}${key.asymmetricKeyDetails?.namedCurve ? ` ${key.asymmetricKeyDetails.namedCurve}` : ''}), the only kind this version signs and verifies with`,
    );
  }
}

/** A fresh ECDSA P-256 key pair, as `cosign generate-key-pair` makes. */
export function generateSigningKey(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

/** Reads a PEM public key (`PUBLIC KEY`, SPKI); `what` names it in errors (e.g. the file name). */
export function readPublicKey(pem: string, what: string): KeyObject {
  const block = firstPem(pem);
  if (block === undefined || block.label !== 'PUBLIC KEY') {
    throw new RegistryError(
      'ERR_KEY_INVALID',
      `Cannot read ${what}: not a PEM public key (-----BEGIN PUBLIC KEY-----)`,
    );
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: block.der, format: 'der', type: 'spki' });
  } catch (cause) {
    throw new RegistryError('ERR_KEY_INVALID', `Cannot read ${what}: the public key does not parse`, {
      cause,
    });
  }
  checkP256(key, what);
  return key;
}

/** The PEM (`PUBLIC KEY`) of a public key, as cosign writes `cosign.pub`. */
export function publicKeyPem(key: KeyObject): string {
  return toPem('PUBLIC KEY', key.export({ format: 'der', type: 'spki' }));
}

function scryptKey(passphrase: string, salt: Uint8Array, N: number, r: number, p: number): Uint8Array {
  return new Uint8Array(
    scryptSync(Buffer.from(passphrase, 'utf8'), salt, 32, { N, r, p, maxmem: 256 * N * r }),
  );
}

/**
 * Encrypts a private key under `passphrase` in cosign's format (`ENCRYPTED SIGSTORE PRIVATE KEY`).
 * `random` supplies the salt and nonce (tests fix it).
 */
export function encryptPrivateKey(
  key: KeyObject,
  passphrase: string,
  random: (n: number) => Uint8Array = randomBytes,
): string {
  checkP256(key, 'the private key');
  const salt = random(32);
  const nonce = random(24);
  const { N, r, p } = SCRYPT_PARAMS;
  const plaintext = new Uint8Array(key.export({ format: 'der', type: 'pkcs8' }));
  const ciphertext = xsalsa20poly1305(scryptKey(passphrase, salt, N, r, p), nonce).encrypt(plaintext);
  const body = {
    kdf: { name: 'scrypt', params: { N, r, p }, salt: Buffer.from(salt).toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: Buffer.from(nonce).toString('base64') },
    ciphertext: Buffer.from(ciphertext).toString('base64'),
  };
  return toPem(SIGSTORE_KEY_LABEL, Buffer.from(JSON.stringify(body), 'utf8'));
}

function field(value: unknown, ...path: string[]): unknown {
  let at = value;
  for (const key of path) {
    if (typeof at !== 'object' || at === null) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}

/** Whether `pem` holds a cosign encrypted private key (either label). */
export function isCosignPrivateKey(pem: string): boolean {
  const label = firstPem(pem)?.label;
  return label === SIGSTORE_KEY_LABEL || label === COSIGN_KEY_LABEL;
}

/**
 * Opens a cosign private key with `passphrase`. ERR_KEY_INVALID when the file is not one (or not P-256),
 * ERR_KEY_PASSPHRASE when the passphrase does not open it.
 */
export function decryptPrivateKey(pem: string, passphrase: string, what: string): KeyObject {
  const block = firstPem(pem);
  if (block === undefined || (block.label !== SIGSTORE_KEY_LABEL && block.label !== COSIGN_KEY_LABEL)) {
    throw new RegistryError(
      'ERR_KEY_INVALID',
      `Cannot read ${what}: not a cosign private key (-----BEGIN ${SIGSTORE_KEY_LABEL}-----)`,
    );
  }
  const bad = (why: string): RegistryError =>
    new RegistryError('ERR_KEY_INVALID', `Cannot read ${what}: ${why}`);
  let body: unknown;
  try {
    body = JSON.parse(block.der.toString('utf8'));
  } catch {
    throw bad('its body is not the JSON of an encrypted key');
  }
  if (field(body, 'kdf', 'name') !== 'scrypt')
    throw bad(`its key derivation is ${String(field(body, 'kdf', 'name'))}, not scrypt`);
  if (field(body, 'cipher', 'name') !== 'nacl/secretbox')
    throw bad(`its cipher is ${String(field(body, 'cipher', 'name'))}, not nacl/secretbox`);
  const N = field(body, 'kdf', 'params', 'N');
  const r = field(body, 'kdf', 'params', 'r');
  const p = field(body, 'kdf', 'params', 'p');
  if (typeof N !== 'number' || !ACCEPTED_N.has(N) || r !== 8 || p !== 1) {
    throw bad(`its scrypt parameters (N=${String(N)}, r=${String(r)}, p=${String(p)}) are not cosign's`);
  }
  const b64 = (v: unknown, name: string): Buffer => {
    if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw bad(`its ${name} is not base64`);
    return Buffer.from(v, 'base64');
  };
  const salt = b64(field(body, 'kdf', 'salt'), 'salt');
  const nonce = b64(field(body, 'cipher', 'nonce'), 'nonce');
  const ciphertext = b64(field(body, 'ciphertext'), 'ciphertext');
  if (nonce.length !== 24) throw bad('its nonce is not 24 bytes');
  if (salt.length === 0 || ciphertext.length < 16) throw bad('its salt or ciphertext is empty');
  let plaintext: Uint8Array;
  try {
    plaintext = xsalsa20poly1305(scryptKey(passphrase, salt, N, 8, 1), nonce).decrypt(ciphertext);
  } catch (cause) {
    throw new RegistryError(
      'ERR_KEY_PASSPHRASE',
      `Cannot open ${what}: wrong passphrase (or a damaged key file)`,
      { cause },
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: Buffer.from(plaintext), format: 'der', type: 'pkcs8' });
  } catch (cause) {
    throw new RegistryError('ERR_KEY_INVALID', `Cannot read ${what}: the decrypted key is not PKCS #8`, {
      cause,
    });
  }
  checkP256(key, what);
  return key;
}
