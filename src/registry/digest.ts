// Content addressing: every byte a registry serves is checked against the digest that names it.
import { createHash } from 'node:crypto';
import { RegistryError } from './errors.ts';

/** The OCI digest of `bytes`: `sha256:` and 64 lower-case hex digits. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** Throws ERR_REGISTRY_DIGEST_MISMATCH unless `bytes` hash to `expected`; `what` names them in the message. */
export function checkDigest(bytes: Uint8Array, expected: string, what: string): void {
  const actual = sha256Digest(bytes);
  if (actual !== expected) {
    throw new RegistryError(
      'ERR_REGISTRY_DIGEST_MISMATCH',
      `Cannot accept ${what}: its bytes hash to ${actual}, not ${expected}`,
    );
  }
}
