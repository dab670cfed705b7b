import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
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
} from '../../lib/der.ts';
import { toPem } from '../collateral/pem.ts';

/** The Keep Manager's own TLS identity: tenants pin its certificate's SHA-256 fingerprint. */
export interface HostIdentity {
  keyPem: string;
  certPem: string;
  /** SHA-256 of the certificate's DER, lower-case hex. */
  fingerprint: string;
}

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const SUBJECT_ALT_NAME = '2.5.29.17';

function derOf(certPem: string): Buffer {
  return Buffer.from(certPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

/** The fingerprint tenants pin: SHA-256 over the certificate's DER. */
export function certificateFingerprint(certPem: string): string {
  return createHash('sha256').update(derOf(certPem)).digest('hex');
}

function makeIdentity(now: Date): { keyPem: string; certPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
  const name = sequence(set(sequence(oid('2.5.4.3'), utf8String(`Donjon Keep Manager (${hostname()})`))));
  const algorithm = sequence(oid(ECDSA_WITH_SHA256));
  const names = sequence(
    tlv(0x82, new TextEncoder().encode('localhost')),
    tlv(0x82, new TextEncoder().encode(hostname())),
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
  const signature = sign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' });
  const der = sequence(tbs, algorithm, bitString(new Uint8Array(signature)));
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    certPem: toPem(der),
  };
}

/**
 * Loads the daemon's TLS key and self-signed certificate from its state directory, making them on first start
 * (published with link(2), so two first starts agree on one identity).
 */
export function loadOrCreateHostIdentity(stateDir: string, now = new Date()): HostIdentity {
  const keyPath = join(stateDir, 'tls-key.pem');
  const certPath = join(stateDir, 'tls-cert.pem');
  try {
    const certPem = readFileSync(certPath, 'utf8');
    const keyPem = readFileSync(keyPath, 'utf8');
    return { keyPem, certPem, fingerprint: certificateFingerprint(certPem) };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const made = makeIdentity(now);
  const tag = `${process.pid}.${Date.now()}`;
  const tmpKey = join(stateDir, `.tls-key.${tag}`);
  const tmpCert = join(stateDir, `.tls-cert.${tag}`);
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
  return loadOrCreateHostIdentity(stateDir, now);
}
