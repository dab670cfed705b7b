import { hostname } from 'node:os';
import { loadOrCreateTlsIdentity, type TlsIdentity } from '../../lib/tls-identity.ts';

export { certificateFingerprint } from '../../lib/tls-identity.ts';

/** The Keep Manager's own TLS identity: tenants pin its certificate's SHA-256 fingerprint. */
export type HostIdentity = TlsIdentity;

/**
 * Loads the daemon's TLS key and self-signed certificate (ECDSA P-256) from its state directory, making them on
 * first start.
 */
export function loadOrCreateHostIdentity(stateDir: string, now = new Date()): HostIdentity {
  return loadOrCreateTlsIdentity(
    stateDir,
    {
      keyFile: 'tls-key.pem',
      certFile: 'tls-cert.pem',
      curve: 'prime256v1',
      subject: `Donjon Keep Manager (${hostname()})`,
      dnsNames: ['localhost', hostname()],
    },
    now,
  );
}
