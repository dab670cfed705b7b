// The broker's own TLS identity: an ECDSA P-384 key and a self-signed certificate made on first start, which
// clients pin by the SHA-256 of its DER, as they pin `donjon host`. The same key signs the attestation tokens
// (ES384), so a token verifies against the certificate a client already pinned.
//
// The Keep Manager makes its identity the same way on P-256 (src/host/keepmgr/identity.ts); the broker may
// not import the host (import directions), so the few lines of certificate assembly use the shared DER
// writer of src/attestation directly.
import {
  createPrivateKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  X509Certificate,
} from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  bitString,
  explicit,
  integer,
  octetString,
  oid,
  sequence,
  set,
  time,
  tlv,
  utf8String,
} from '../attestation/der.ts';

/** The broker's TLS identity. */
export interface BrokerIdentity {
  keyPem: string;
  certPem: string;
  /** The private key, for signing tokens. */
  privateKey: KeyObject;
  /** SHA-256 of the certificate's DER, lower-case hex: what clients pin. */
  fingerprint: string;
}

const ECDSA_WITH_SHA384 = '1.2.840.10045.4.3.3';
const SUBJECT_ALT_NAME = '2.5.29.17';

/** The fingerprint clients pin: SHA-256 of the certificate's DER, lower-case hex without colons. */
export function fingerprintOf(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256.replace(/:/g, '').toLowerCase();
}

function makeIdentity(now: Date): { keyPem: string; certPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const spki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
  const name = sequence(set(sequence(oid('2.5.4.3'), utf8String('Donjon key broker'))));
  const algorithm = sequence(oid(ECDSA_WITH_SHA384));
  const ascii = (s: string) => new TextEncoder().encode(s);
  const names = sequence(
    tlv(0x82, ascii('localhost')),
    tlv(0x87, Uint8Array.of(127, 0, 0, 1)),
    tlv(0x87, new Uint8Array(16).fill(0, 0, 15).fill(1, 15)),
  );
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  const tbs = sequence(
    explicit(0, integer(2)),
    integer(BigInt(`0x${serial.toString('hex')}`)),
    algorithm,
    name,
    sequence(time(new Date(now.getTime() - 3600_000)), time(new Date(now.getTime() + 10 * 365 * 86400_000))),
    name,
    spki,
    explicit(3, sequence(sequence(oid(SUBJECT_ALT_NAME), octetString(names)))),
  );
  const signature = sign('sha384', tbs, { key: privateKey, dsaEncoding: 'der' });
  const der = sequence(tbs, algorithm, bitString(new Uint8Array(signature)));
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    certPem: new X509Certificate(der).toString(),
  };
}

/**
 * Loads the broker's key and certificate from its state directory, making them on first start (published with
 * link(2), so two first starts agree on one identity).
 */
export function loadOrCreateBrokerIdentity(stateDir: string, now = new Date()): BrokerIdentity {
  const keyPath = join(stateDir, 'broker-key.pem');
  const certPath = join(stateDir, 'broker-cert.pem');
  try {
    const certPem = readFileSync(certPath, 'utf8');
    const keyPem = readFileSync(keyPath, 'utf8');
    return { keyPem, certPem, privateKey: createPrivateKey(keyPem), fingerprint: fingerprintOf(certPem) };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const made = makeIdentity(now);
  const tag = `${process.pid}.${Date.now()}`;
  const tmpKey = join(stateDir, `.broker-key.${tag}`);
  const tmpCert = join(stateDir, `.broker-cert.${tag}`);
  writeFileSync(tmpKey, made.keyPem, { mode: 0o600 });
  chmodSync(tmpKey, 0o600);
  writeFileSync(tmpCert, made.certPem);
  try {
    linkSync(tmpKey, keyPath);
    linkSync(tmpCert, certPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(tmpKey);
    unlinkSync(tmpCert);
  }
  return loadOrCreateBrokerIdentity(stateDir, now);
}
