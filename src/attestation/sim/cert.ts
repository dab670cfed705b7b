// Builds X.509 certificates in the shape of AMD's KDS certificates (RSA-PSS SHA-384 signatures, the same
// name layout and extensions), for the simulated secure processor. Internal to the simulator.
import { constants, createHash, type KeyObject, sign } from 'node:crypto';
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
  TAG,
  time,
  tlv,
  utf8String,
} from '../../lib/der.ts';
import { children, readBitStringBytes, readOne } from '../der.ts';
import { OID } from '../x509.ts';

/** One extension to write. */
export interface ExtensionSpec {
  oid: string;
  critical?: boolean;
  /** The DER that goes inside extnValue. */
  value: Uint8Array;
}

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
export const PSS_SHA384 = sequence(
  oid(OID.rsassaPss),
  sequence(
    explicit(0, sequence(oid(OID.sha384), nullValue())),
    explicit(1, sequence(oid(OID.mgf1), sequence(oid(OID.sha384), nullValue()))),
    explicit(2, integer(48)),
  ),
);

/** A distinguished name from (type OID, UTF8 value) pairs, one attribute per RDN, in order. */
export function distinguishedName(attributes: readonly (readonly [string, string])[]): Uint8Array {
  return sequence(...attributes.map(([type, value]) => set(sequence(oid(type), utf8String(value)))));
}

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
  const extensions = spec.extensions.map((e) =>
    e.critical === true
      ? sequence(oid(e.oid), boolean(true), octetString(e.value))
      : sequence(oid(e.oid), octetString(e.value)),
  );
  const tbs = sequence(
    explicit(0, integer(2)),
    integer(spec.serial),
    PSS_SHA384,
    spec.issuer,
    sequence(time(spec.notBefore), time(spec.notAfter)),
    spec.subject,
    spec.spki,
    explicit(3, sequence(...extensions)),
  );
  const signature = sign('sha384', tbs, {
    key: spec.issuerKey,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: 48,
  });
  return sequence(tbs, PSS_SHA384, bitString(new Uint8Array(signature)));
}
