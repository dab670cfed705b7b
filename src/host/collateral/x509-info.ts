// What the collateral code needs to know about certificates and CRLs: names (to sort a user's files into
// their roles), validity ends (how long a cached copy may be served) and the FMSPC of an Intel PCK
// certificate (which TCB info to fetch). Nothing here decides trust: the verifier checks every signature.

import { children, type DerNode, readOid, readOne, readString, readTime } from '../../attestation/der.ts';
import { nameAttribute, OID, parseCertificate } from '../../attestation/x509.ts';
import { TAG } from '../../lib/der.ts';
import { reasonOf } from '../../lib/errors.ts';
import { CollateralError } from './errors.ts';

/** OID of the AMD blSPL extension: present in every VCEK and VLEK, in no other certificate. */
const AMD_BL_SPL = '1.3.6.1.4.1.3704.1.3.1';
/** OID of Intel's SGX extensions in a PCK certificate, and of the FMSPC inside them. */
const SGX_EXTENSIONS = '1.2.840.113741.1.13.1';
const SGX_FMSPC = '1.2.840.113741.1.13.1.4';

/** The facts about one certificate that collateral handling uses. */
export interface CertificateInfo {
  readonly subjectCn: string | undefined;
  readonly issuerCn: string | undefined;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Whether it is an AMD VCEK or VLEK (it carries the AMD TCB extensions). */
  readonly snpEndorsementKey: boolean;
  /** The FMSPC of an Intel PCK certificate, lower-case hex; absent in other certificates. */
  readonly fmspc?: string;
}

/** The facts about one CRL that collateral handling uses. */
export interface CrlInfo {
  readonly issuerCn: string | undefined;
  readonly thisUpdate: Date;
  /** Absent when the CRL names no next update (then it is never considered fresh for long). */
  readonly nextUpdate?: Date;
}

function invalid(what: string, cause: unknown): never {
  const detail = cause instanceof Error ? `: ${reasonOf(cause)}` : '';
  throw new CollateralError('ERR_COLLATERAL_MALFORMED', `Cannot read ${what}${detail}`, { cause });
}

function readFmspc(value: Uint8Array): string | undefined {
  const list = children(readOne(value, TAG.SEQUENCE));
  while (!list.done) {
    const entry = children(list.next(TAG.SEQUENCE));
    if (readOid(entry.next(TAG.OID)) !== SGX_FMSPC) continue;
    const fmspc = entry.next(TAG.OCTET_STRING).value;
    if (fmspc.byteLength !== 6) throw new RangeError(`FMSPC has ${fmspc.byteLength} bytes, expected 6`);
    return Buffer.from(fmspc).toString('hex');
  }
  return undefined;
}

/** Reads a DER certificate; fails with ERR_COLLATERAL_MALFORMED when it is not one. */
export function certificateInfo(der: Uint8Array): CertificateInfo {
  if (!(der instanceof Uint8Array)) throw new TypeError('Cannot read certificate: expected a Uint8Array');
  try {
    const cert = parseCertificate(der);
    const sgx = cert.extensions.get(SGX_EXTENSIONS);
    const fmspc = sgx === undefined ? undefined : readFmspc(sgx.value);
    return {
      subjectCn: nameAttribute(cert.subject, OID.commonName),
      issuerCn: nameAttribute(cert.issuer, OID.commonName),
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      snpEndorsementKey: cert.extensions.has(AMD_BL_SPL),
      ...(fmspc === undefined ? {} : { fmspc }),
    };
  } catch (cause) {
    return invalid('certificate', cause);
  }
}

function commonName(node: DerNode): string | undefined {
  let cn: string | undefined;
  const rdns = children(node);
  while (!rdns.done) {
    const rdn = children(rdns.next(TAG.SET));
    while (!rdn.done) {
      const atv = children(rdn.next(TAG.SEQUENCE));
      const oid = readOid(atv.next(TAG.OID));
      const value = readString(atv.next());
      atv.end();
      if (oid === OID.commonName && cn === undefined) cn = value;
    }
  }
  return cn;
}

/** Reads the issuer and update times of a DER CRL (RFC 5280 CertificateList); ERR_COLLATERAL_MALFORMED otherwise. */
export function crlInfo(der: Uint8Array): CrlInfo {
  if (!(der instanceof Uint8Array)) throw new TypeError('Cannot read CRL: expected a Uint8Array');
  try {
    const list = children(readOne(der, TAG.SEQUENCE));
    const tbs = children(list.next(TAG.SEQUENCE));
    list.next(TAG.SEQUENCE);
    list.next(TAG.BIT_STRING);
    list.end();
    tbs.optional(TAG.INTEGER);
    tbs.next(TAG.SEQUENCE);
    const issuerCn = commonName(tbs.next(TAG.SEQUENCE));
    const thisUpdate = readTime(tbs.next());
    const tag = tbs.peekTag();
    const nextUpdate =
      tag === TAG.UTC_TIME || tag === TAG.GENERALIZED_TIME ? readTime(tbs.next()) : undefined;
    return { issuerCn, thisUpdate, ...(nextUpdate === undefined ? {} : { nextUpdate }) };
  } catch (cause) {
    return invalid('CRL', cause);
  }
}
