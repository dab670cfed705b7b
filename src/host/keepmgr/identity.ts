import { createHash, generateKeyPairSync } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { makeSelfSignedCertificate } from '../../lib/certificate.ts';
import { sequence, tlv } from '../../lib/der.ts';
import { writePem } from '../../lib/pem.ts';

/** The Keep Manager's own TLS identity: tenants pin its certificate's SHA-256 fingerprint. */
export interface HostIdentity {
  keyPem: string;
  certPem: string;
  /** SHA-256 of the certificate's DER, lower-case hex. */
  fingerprint: string;
}

const SUBJECT_ALT_NAME = '2.5.29.17';

function derOf(certPem: string): Buffer {
  return Buffer.from(certPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

/** The fingerprint tenants pin: SHA-256 over the certificate's DER. */
export function certificateFingerprint(certPem: string): string {
  return createHash('sha256').update(derOf(certPem)).digest('hex');
}

function makeIdentity(now: Date): { keyPem: string; certPem: string } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const names = sequence(
    tlv(0x82, new TextEncoder().encode('localhost')),
    tlv(0x82, new TextEncoder().encode(hostname())),
    tlv(0x87, Uint8Array.of(127, 0, 0, 1)),
    tlv(0x87, new Uint8Array(16).fill(0, 0, 15).fill(1, 15)),
  );
  const der = makeSelfSignedCertificate({
    privateKey,
    subject: `Donjon Keep Manager (${hostname()})`,
    notBefore: new Date(now.getTime() - 3600_000),
    notAfter: new Date(now.getTime() + 10 * 365 * 86400_000),
    extensions: [{ oid: SUBJECT_ALT_NAME, value: names }],
  });
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    certPem: writePem(der),
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
