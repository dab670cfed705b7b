// The broker's own TLS identity: an ECDSA P-384 key and a self-signed certificate made on first start, which
// clients pin by the SHA-256 of its DER, as they pin `donjon host`. The same key signs the attestation tokens
// (ES384), so a token verifies against the certificate a client already pinned.
import { certificateFingerprint, loadOrCreateTlsIdentity, type TlsIdentity } from '../lib/tls-identity.ts';

/** The broker's TLS identity. */
export type BrokerIdentity = TlsIdentity;

/** The fingerprint clients pin: SHA-256 of the certificate's DER, lower-case hex without colons. */
export const fingerprintOf = certificateFingerprint;

/** Loads the broker's key and certificate from its state directory, making them on first start. */
export function loadOrCreateBrokerIdentity(stateDir: string, now = new Date()): BrokerIdentity {
  return loadOrCreateTlsIdentity(
    stateDir,
    {
      keyFile: 'broker-key.pem',
      certFile: 'broker-cert.pem',
      curve: 'secp384r1',
      subject: 'Donjon key broker',
      dnsNames: ['localhost'],
    },
    now,
  );
}
