// Builds X.509 certificates in the shape of AMD's KDS certificates (RSA-PSS SHA-384 signatures, the same
// name layout and extensions), for the simulated secure processor. Internal to the simulator.
import { createHash, type KeyObject } from 'node:crypto';
import { type CertificateExtension, makeCertificate, SIGNATURE_ALGORITHMS } from '../../lib/certificate.ts';
import { boolean, integer, octetString, sequence, TAG, tlv } from '../../lib/der.ts';
import { children, readBitStringBytes, readOne } from '../der.ts';
import { OID } from '../x509.ts';

/** One extension to write. */
export type ExtensionSpec = CertificateExtension;

/** What a certificate says; the issuer name and key sign it. */
export interface CertificateSpec {
  serial: bigint;
  issuer: Uint8Array;
  subject: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  spki: Uint8Array;
  extensions: readonly ExtensionSpec[];
  issuerKey: KeyObject;
}

/** The RSASSA-PSS AlgorithmIdentifier AMD uses: SHA-384, MGF1-SHA-384, salt 48 (trailer left default). */
export const PSS_SHA384 = SIGNATURE_ALGORITHMS['rsa-pss-sha384'];

/** basicConstraints for a CA, with an optional path length. */
export function basicConstraintsCa(pathLen?: number): ExtensionSpec {
  const body = pathLen === undefined ? sequence(boolean(true)) : sequence(boolean(true), integer(pathLen));
  return { oid: OID.basicConstraints, critical: true, value: body };
}

/** keyUsage keyCertSign (and cRLSign for roots), as AMD sets them. */
export function keyUsageCertSign(crlSign: boolean): ExtensionSpec {
  // Named bit list: keyCertSign is bit 5 (0x04), cRLSign bit 6 (0x02); trailing zero bits are "unused".
  const value = crlSign ? Uint8Array.of(0x01, 0x06) : Uint8Array.of(0x02, 0x04);
  return { oid: OID.keyUsage, critical: true, value: tlv(TAG.BIT_STRING, value) };
}

/** RFC 5280 method-1 key identifier: SHA-1 of the subjectPublicKey bits of an SPKI. */
export function keyIdentifier(spki: Uint8Array): Uint8Array {
  const fields = children(readOne(spki, TAG.SEQUENCE));
  fields.next(TAG.SEQUENCE);
  const bits = readBitStringBytes(fields.next(TAG.BIT_STRING));
  return new Uint8Array(createHash('sha1').update(bits).digest());
}

/** subjectKeyIdentifier extension. */
export function subjectKeyIdentifier(id: Uint8Array): ExtensionSpec {
  return { oid: OID.subjectKeyIdentifier, value: octetString(id) };
}

/** authorityKeyIdentifier extension with only the key identifier. */
export function authorityKeyIdentifier(id: Uint8Array): ExtensionSpec {
  return { oid: OID.authorityKeyIdentifier, value: sequence(tlv(0x80, id)) };
}

/** Encodes the TBS certificate and signs it with RSA-PSS SHA-384 (salt 48) under `spec.issuerKey`. */
export function buildCertificate(spec: CertificateSpec): Uint8Array {
  return makeCertificate({
    serial: spec.serial,
    issuer: spec.issuer,
    subject: spec.subject,
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
    spki: spec.spki,
    extensions: spec.extensions,
    signingKey: spec.issuerKey,
    algorithm: 'rsa-pss-sha384',
  });
}
