// Who signed a service's workload, as its certificate names it: the SHA-256 of a verifying key's DER
// SubjectPublicKeyInfo. The Keep computes it from the keys whose signatures verified; a relying party from the
// public keys it trusts (cosign.pub). Both re-encode the key through Node's KeyObject, an EC point
// uncompressed, so two PEM texts of the same key give the same digest.
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { readPem } from '../lib/pem.ts';

/**
 * The signer digest of a public key: SHA-256 of its DER SubjectPublicKeyInfo (an EC point uncompressed, as
 * cosign and OpenSSL write it by default), in lower-case hex, as a service's evidence names it
 * (`ServiceIdentity.signers`) and as `signerKeys` pins it. Takes a KeyObject or the PEM text of a public key
 * (`-----BEGIN PUBLIC KEY-----`, as cosign writes `cosign.pub`). A private key is refused rather than
 * reduced to its public half: a private key handed over by mistake should be noticed, not used. Throws
 * TypeError.
 *
 * @example
 * const pin = signerDigest(readFileSync('cosign.pub', 'utf8'));
 */
export function signerDigest(key: KeyObject | string): string {
  let pub: KeyObject;
  if (typeof key === 'string') {
    let blocks: ReturnType<typeof readPem>;
    try {
      blocks = readPem(key);
    } catch (cause) {
      throw new TypeError('Cannot read the signer key: it is not PEM', { cause });
    }
    if (blocks.some((b) => b.label.includes('PRIVATE KEY'))) {
      throw new TypeError(
        'Cannot read the signer key: it is a private key; give its public key (cosign.pub), and keep the private one private',
      );
    }
    const publics = blocks.filter((b) => b.label === 'PUBLIC KEY');
    if (publics.length !== 1) {
      throw new TypeError(
        'Cannot read the signer key: expected one PEM public key (-----BEGIN PUBLIC KEY-----)',
      );
    }
    try {
      pub = createPublicKey({ key: Buffer.from(publics[0]!.der), format: 'der', type: 'spki' });
    } catch (cause) {
      throw new TypeError('Cannot read the signer key: the public key does not parse', { cause });
    }
  } else {
    if (key.type !== 'public') {
      throw new TypeError(`Cannot use a ${key.type} key as a signer key: give its public key`);
    }
    pub = key;
  }
  // An EC point may be written compressed or not; through JWK it comes back uncompressed, cosign's form, so
  // the two writings of one key are one signer.
  const canonical =
    pub.asymmetricKeyType === 'ec'
      ? createPublicKey({ key: pub.export({ format: 'jwk' }), format: 'jwk' })
      : pub;
  return createHash('sha256')
    .update(canonical.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}
