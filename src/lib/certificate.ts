// One X.509 v3 certificate builder: a name, a validity, a public key, extensions, signed by a key. The
// Keep's one-use certificates (src/ratls/certificate.ts), the Keep Manager's TLS identity
// (src/host/keepmgr/identity.ts) and the simulated AMD chain (src/attestation/sim/) are all built here, so
// serial numbers, times and signature algorithms follow one set of rules (RFC 5280). Imports nothing of the
// project but lib.
import { createPublicKey, type KeyObject, randomBytes, constants as rsa, sign } from 'node:crypto';
import {
  bitString,
  boolean,
  explicit,
  integer,
  nullValue,
  octetString,
  oid,
  sequence,
  set,
  time,
  utf8String,
} from './der.ts';

/** The signature algorithms used here: ECDSA over P-256 or P-384, and AMD's RSASSA-PSS with SHA-384. */
export type SignatureAlgorithm = 'ecdsa-sha256' | 'ecdsa-sha384' | 'rsa-pss-sha384';

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  rsassaPss: '1.2.840.113549.1.1.10',
  mgf1: '1.2.840.113549.1.1.8',
  sha384: '2.16.840.1.101.3.4.2.2',
  commonName: '2.5.4.3',
} as const;

/**
 * The DER AlgorithmIdentifier of each {@link SignatureAlgorithm}: ECDSA with absent parameters (RFC 5758);
 * RSASSA-PSS with SHA-384, MGF1-SHA-384 and a 48-byte salt, the trailer left default (as AMD writes it).
 */
export const SIGNATURE_ALGORITHMS: { readonly [A in SignatureAlgorithm]: Uint8Array } = Object.freeze({
  'ecdsa-sha256': sequence(oid(OID.ecdsaWithSha256)),
  'ecdsa-sha384': sequence(oid(OID.ecdsaWithSha384)),
  'rsa-pss-sha384': sequence(
    oid(OID.rsassaPss),
    sequence(
      explicit(0, sequence(oid(OID.sha384), nullValue())),
      explicit(1, sequence(oid(OID.mgf1), sequence(oid(OID.sha384), nullValue()))),
      explicit(2, integer(48)),
    ),
  ),
});

/** One extension to write. */
export interface CertificateExtension {
  oid: string;
  /** Default false; a critical extension a verifier does not know makes it refuse the certificate. */
  critical?: boolean;
  /** The DER that goes inside extnValue. */
  value: Uint8Array;
}

/** What a certificate says and who signs it. */
export interface CertificateOptions {
  /** The subject Name (DER), e.g. from {@link distinguishedName}. */
  subject: Uint8Array;
  /** The issuer Name (DER); default the subject (a self-issued certificate). */
  issuer?: Uint8Array;
  /** The subject's SubjectPublicKeyInfo (DER). */
  spki: Uint8Array;
  /** The issuer's private key, which signs. */
  signingKey: KeyObject;
  /** How it signs; default from an EC key's curve (P-256: ecdsa-sha256, P-384: ecdsa-sha384). */
  algorithm?: SignatureAlgorithm;
  notBefore: Date;
  notAfter: Date;
  /** Non-negative; default {@link randomSerial}. */
  serial?: bigint;
  /** Written in order; none means no extensions field at all. */
  extensions?: readonly CertificateExtension[];
}

/** A Name of (attribute type OID, UTF8String value) pairs, one attribute per RDN, in order. */
export function distinguishedName(attributes: readonly (readonly [string, string])[]): Uint8Array {
  return sequence(...attributes.map(([type, value]) => set(sequence(oid(type), utf8String(value)))));
}

/** A Name holding one common name. */
export function commonName(name: string): Uint8Array {
  return distinguishedName([[OID.commonName, name]]);
}

/**
 * A random serial number of 127 bits, as RFC 5280 4.1.2.2 asks: positive, at most 20 bytes, and with a
 * non-zero first byte so its encoding is always 16 bytes.
 */
export function randomSerial(): bigint {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return BigInt(`0x${bytes.toString('hex')}`);
}

/** The SubjectPublicKeyInfo (DER) of a public key, or of the public half of a private key. */
export function spkiOf(key: KeyObject): Uint8Array {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return new Uint8Array(pub.export({ type: 'spki', format: 'der' }));
}

function algorithmFor(key: KeyObject, wanted: SignatureAlgorithm | undefined): SignatureAlgorithm {
  const type = key.asymmetricKeyType;
  if (wanted === undefined) {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (type === 'ec' && curve === 'prime256v1') return 'ecdsa-sha256';
    if (type === 'ec' && curve === 'secp384r1') return 'ecdsa-sha384';
    throw new TypeError(`Cannot make a certificate: name the signature algorithm for a ${type} key`);
  }
  const fits = wanted === 'rsa-pss-sha384' ? type === 'rsa' || type === 'rsa-pss' : type === 'ec';
  if (!fits) throw new TypeError(`Cannot make a certificate: a ${type} key cannot sign with ${wanted}`);
  return wanted;
}

function signTbs(tbs: Uint8Array, key: KeyObject, algorithm: SignatureAlgorithm): Uint8Array {
  switch (algorithm) {
    case 'ecdsa-sha256':
      return new Uint8Array(sign('sha256', tbs, { key, dsaEncoding: 'der' }));
    case 'ecdsa-sha384':
      return new Uint8Array(sign('sha384', tbs, { key, dsaEncoding: 'der' }));
    case 'rsa-pss-sha384':
      return new Uint8Array(sign('sha384', tbs, { key, padding: rsa.RSA_PKCS1_PSS_PADDING, saltLength: 48 }));
  }
}

/**
 * The DER of an X.509 v3 certificate for `options.spki`, signed by `options.signingKey`.
 *
 * @example
 * const der = makeCertificate({ subject: name, issuer: caName, spki, signingKey: caKey,
 *   algorithm: 'rsa-pss-sha384', notBefore, notAfter, extensions });
 */
export function makeCertificate(options: CertificateOptions): Uint8Array {
  if (!(options.notBefore instanceof Date) || !(options.notAfter instanceof Date))
    throw new TypeError('Cannot make a certificate: its validity must be two dates');
  if (!(options.notBefore.getTime() <= options.notAfter.getTime()))
    throw new RangeError('Cannot make a certificate: notAfter is before notBefore');
  const serial = options.serial ?? randomSerial();
  if (serial < 0n) throw new RangeError('Cannot make a certificate: the serial number is negative');
  const algorithm = algorithmFor(options.signingKey, options.algorithm);
  const algorithmId = SIGNATURE_ALGORITHMS[algorithm];
  const fields = [
    explicit(0, integer(2)),
    integer(serial),
    algorithmId,
    options.issuer ?? options.subject,
    sequence(time(options.notBefore), time(options.notAfter)),
    options.subject,
    options.spki,
  ];
  const extensions = options.extensions ?? [];
  if (extensions.length > 0) {
    const encoded = extensions.map((e) =>
      e.critical === true
        ? sequence(oid(e.oid), boolean(true), octetString(e.value))
        : sequence(oid(e.oid), octetString(e.value)),
    );
    fields.push(explicit(3, sequence(...encoded)));
  }
  const tbs = sequence(...fields);
  return sequence(tbs, algorithmId, bitString(signTbs(tbs, options.signingKey, algorithm)));
}

/** A self-signed certificate: the subject is the issuer and the key signs its own public half. */
export interface SelfSignedCertificateOptions {
  /** The certificate's key; its public half is the subject key, its private half signs. */
  privateKey: KeyObject;
  /** The subject (and issuer) Name (DER), or a common name to make one of. */
  subject: Uint8Array | string;
  notBefore: Date;
  notAfter: Date;
  algorithm?: SignatureAlgorithm;
  serial?: bigint;
  extensions?: readonly CertificateExtension[];
}

/**
 * The DER of a self-signed X.509 v3 certificate (subject, validity, key, extensions): what a Keep presents
 * in its attested TLS handshake and what the Keep Manager pins its identity on.
 *
 * @example
 * const der = makeSelfSignedCertificate({ privateKey, subject: 'Donjon Keep', notBefore, notAfter });
 */
export function makeSelfSignedCertificate(options: SelfSignedCertificateOptions): Uint8Array {
  const subject = typeof options.subject === 'string' ? commonName(options.subject) : options.subject;
  const cert: CertificateOptions = {
    subject,
    spki: spkiOf(options.privateKey),
    signingKey: options.privateKey,
    notBefore: options.notBefore,
    notAfter: options.notAfter,
  };
  if (options.algorithm !== undefined) cert.algorithm = options.algorithm;
  if (options.serial !== undefined) cert.serial = options.serial;
  if (options.extensions !== undefined) cert.extensions = options.extensions;
  return makeCertificate(cert);
}
