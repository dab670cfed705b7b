// A daemon's own TLS identity: a key and a self-signed certificate made on its first start and kept in its
// state directory; clients pin the certificate by the SHA-256 of its DER. The Keep Manager (`donjon host`) and
// the key broker (`donjon broker serve`) each have one.
import { createHash, createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeSelfSignedCertificate } from './certificate.ts';
import { sequence, tlv } from './der.ts';
import { readPem, writePem } from './pem.ts';

/** A loaded TLS identity. */
export interface TlsIdentity {
  keyPem: string;
  certPem: string;
  privateKey: KeyObject;
  /** SHA-256 of the certificate's DER, lower-case hex without colons: what clients pin. */
  fingerprint: string;
}

/** What a new identity is made of, and where it is kept. */
export interface TlsIdentitySpec {
  /** File names in the state directory. */
  keyFile: string;
  certFile: string;
  /** The key's curve: `prime256v1` (P-256) or `secp384r1` (P-384). */
  curve: 'prime256v1' | 'secp384r1';
  /** The certificate's common name. */
  subject: string;
  /** DNS names of its subjectAltName; the loopback addresses are always named too. */
  dnsNames: readonly string[];
}

const SUBJECT_ALT_NAME = '2.5.29.17';
const VALIDITY_MS = 10 * 365 * 86400_000;

/** The fingerprint clients pin: SHA-256 over the DER of the (first) certificate of `certPem`. */
export function certificateFingerprint(certPem: string): string {
  const [block] = readPem(certPem, { label: 'CERTIFICATE' });
  if (block === undefined) throw new TypeError('Cannot read the certificate: no CERTIFICATE block');
  return createHash('sha256').update(block.der).digest('hex');
}

function makeIdentity(spec: TlsIdentitySpec, now: Date): { keyPem: string; certPem: string } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: spec.curve });
  const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
  const names = sequence(
    ...spec.dnsNames.map((n) => tlv(0x82, ascii(n))),
    tlv(0x87, Uint8Array.of(127, 0, 0, 1)),
    tlv(0x87, new Uint8Array(16).fill(0, 0, 15).fill(1, 15)),
  );
  const der = makeSelfSignedCertificate({
    privateKey,
    subject: spec.subject,
    notBefore: new Date(now.getTime() - 3600_000),
    notAfter: new Date(now.getTime() + VALIDITY_MS),
    extensions: [{ oid: SUBJECT_ALT_NAME, value: names }],
  });
  return { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, certPem: writePem(der) };
}

/**
 * Loads the key and certificate from `stateDir`, making them on first start. They are published with link(2),
 * so two first starts agree on one identity; the key file is 0600.
 */
export function loadOrCreateTlsIdentity(
  stateDir: string,
  spec: TlsIdentitySpec,
  now = new Date(),
): TlsIdentity {
  const keyPath = join(stateDir, spec.keyFile);
  const certPath = join(stateDir, spec.certFile);
  try {
    const certPem = readFileSync(certPath, 'utf8');
    const keyPem = readFileSync(keyPath, 'utf8');
    return {
      keyPem,
      certPem,
      privateKey: createPrivateKey(keyPem),
      fingerprint: certificateFingerprint(certPem),
    };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const made = makeIdentity(spec, now);
  const tag = `${process.pid}.${Date.now()}`;
  const tmpKey = join(stateDir, `.${spec.keyFile}.${tag}`);
  const tmpCert = join(stateDir, `.${spec.certFile}.${tag}`);
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
  return loadOrCreateTlsIdentity(stateDir, spec, now);
}
