// The building blocks of an Intel DCAP PKI and its quotes, in Intel's exact shapes: ECDSA P-256 certificates
// and CRLs signed with SHA-256, the SGX extension of a PCK certificate, SGX report bodies, and the version 3
// quote with certification data type 5 (the PCK chain as PEM). The simulated Intel platform (intel.ts) and the
// test forge (test/attestation/dcap/forge.ts) both build on them. Internal to the simulator.
import { createHash, type KeyObject, sign } from 'node:crypto';
import { type CertificateExtension, makeCertificate } from '../../lib/certificate.ts';
import {
  bitString,
  boolean,
  explicit,
  integer,
  octetString,
  oid,
  sequence,
  TAG,
  time,
  tlv,
} from '../../lib/der.ts';
import { writePem } from '../../lib/pem.ts';
import { concat, tryFromHex } from '../bytes.ts';
import { INTEL_QE_VENDOR_ID } from '../dcap/quote.ts';
import { OID } from '../x509.ts';

/** ecdsa-with-SHA256, parameters absent. */
export const ECDSA_SHA256 = sequence(oid('1.2.840.10045.4.3.2'));
/** The OID of the SGX extension of PCK certificates, and the root of its items. */
export const SGX_EXTENSION_OID = '1.2.840.113741.1.13.1';

/** An ECDSA-SHA256 signature (DER) by `key` over `data`. */
export function ecSign(data: Uint8Array, key: KeyObject): Uint8Array {
  return new Uint8Array(sign('sha256', data, { key, dsaEncoding: 'der' }));
}

/** A raw r || s ECDSA-SHA256 signature by `key` over `data`, as quotes and signed JSON carry them. */
export function rawSign(data: Uint8Array, key: KeyObject): Uint8Array {
  return new Uint8Array(sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }));
}

/** What an ECDSA certificate says; `issuerKey` signs it. */
export interface EcCertSpec {
  serial: bigint;
  issuer: Uint8Array;
  subject: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  spki: Uint8Array;
  extensions: readonly CertificateExtension[];
  issuerKey: KeyObject;
}

/** An X.509 v3 certificate signed with ECDSA SHA-256, as Intel's PKI issues them. */
export function ecCert(spec: EcCertSpec): Uint8Array {
  return makeCertificate({
    serial: spec.serial,
    issuer: spec.issuer,
    subject: spec.subject,
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
    spki: spec.spki,
    extensions: spec.extensions,
    signingKey: spec.issuerKey,
    algorithm: 'ecdsa-sha256',
  });
}

function encodeExtensions(extensions: readonly CertificateExtension[]): Uint8Array[] {
  return extensions.map((e) =>
    e.critical === true
      ? sequence(oid(e.oid), boolean(true), octetString(e.value))
      : sequence(oid(e.oid), octetString(e.value)),
  );
}

/** What a CRL says; `issuerKey` signs it. */
export interface CrlSpec {
  issuer: Uint8Array;
  issuerKey: KeyObject;
  thisUpdate: Date;
  nextUpdate?: Date;
  revoked?: readonly bigint[];
  extensions?: readonly CertificateExtension[];
  /** Extensions given to every entry. */
  entryExtensions?: readonly CertificateExtension[];
  /** Default 1 (v2); negative leaves the field out. */
  version?: number;
}

/** A v2 CRL signed with ECDSA SHA-256. */
export function ecCrl(spec: CrlSpec): Uint8Array {
  const entries = (spec.revoked ?? []).map((serial) =>
    sequence(
      integer(serial),
      time(spec.thisUpdate),
      ...(spec.entryExtensions === undefined ? [] : [sequence(...encodeExtensions(spec.entryExtensions))]),
    ),
  );
  const tbs = sequence(
    ...(spec.version === undefined ? [integer(1)] : spec.version < 0 ? [] : [integer(spec.version)]),
    ECDSA_SHA256,
    spec.issuer,
    time(spec.thisUpdate),
    ...(spec.nextUpdate === undefined ? [] : [time(spec.nextUpdate)]),
    ...(entries.length === 0 ? [] : [sequence(...entries)]),
    explicit(
      0,
      sequence(...encodeExtensions(spec.extensions ?? [{ oid: OID.crlNumber, value: integer(1) }])),
    ),
  );
  return sequence(tbs, ECDSA_SHA256, bitString(ecSign(tbs, spec.issuerKey)));
}

/** The platform a PCK certificate is issued for. */
export interface PlatformSpec {
  /** 6 bytes, hex. */
  fmspc: string;
  /** 2 bytes, hex. */
  pceId: string;
  /** The 16 SGX TCB component SVNs (CPUSVN bytes). */
  components: readonly number[];
  pceSvn: number;
}

/** The SGX extension value of a PCK certificate (PPID, TCB, PCE-ID, FMSPC, SGX type; platform-CA items). */
export function sgxExtension(
  p: PlatformSpec,
  options: {
    platformCa?: boolean;
    extraTcbItem?: Uint8Array;
    sgxTypeTag?: number;
    extraItem?: Uint8Array;
    ppid?: Uint8Array;
  } = {},
): Uint8Array {
  const SGX = SGX_EXTENSION_OID;
  const item = (id: string, value: Uint8Array) => sequence(oid(id), value);
  const tcb = sequence(
    ...p.components.map((svn, i) => item(`${SGX}.2.${i + 1}`, integer(svn))),
    item(`${SGX}.2.17`, integer(p.pceSvn)),
    item(`${SGX}.2.18`, octetString(Uint8Array.from(p.components.map((c) => c & 0xff)))),
    ...(options.extraTcbItem === undefined ? [] : [options.extraTcbItem]),
  );
  const items = [
    item(`${SGX}.1`, octetString(options.ppid ?? new Uint8Array(16).fill(0x11))),
    item(`${SGX}.2`, tcb),
    item(`${SGX}.3`, octetString(tryFromHex(p.pceId)!)),
    item(`${SGX}.4`, octetString(tryFromHex(p.fmspc)!)),
    item(`${SGX}.5`, tlv(options.sgxTypeTag ?? 0x0a, Uint8Array.of(options.platformCa === true ? 1 : 0))),
  ];
  if (options.extraItem !== undefined) items.push(options.extraItem);
  if (options.platformCa === true) {
    items.push(item(`${SGX}.6`, octetString(new Uint8Array(16).fill(0x22))));
    items.push(
      item(
        `${SGX}.7`,
        sequence(
          item(`${SGX}.7.1`, boolean(false)),
          item(`${SGX}.7.2`, boolean(true)),
          item(`${SGX}.7.3`, boolean(true)),
        ),
      ),
    );
  }
  return sequence(...items);
}

/** keyUsage digitalSignature and nonRepudiation, critical, as Intel sets it on PCK and TCB signing certificates. */
export const KEY_USAGE_SIGNING: CertificateExtension = {
  oid: OID.keyUsage,
  critical: true,
  value: tlv(TAG.BIT_STRING, Uint8Array.of(0x06, 0xc0)),
};

/** basicConstraints of an end entity (CA false), critical. */
export const NOT_A_CA: CertificateExtension = {
  oid: OID.basicConstraints,
  critical: true,
  value: sequence(),
};

/** SGX report body fields to set; the rest are zero. */
export interface SgxBodySpec {
  cpuSvn?: Uint8Array;
  miscSelect?: number;
  attributes?: Uint8Array;
  mrEnclave?: Uint8Array;
  mrSigner?: Uint8Array;
  isvProdId?: number;
  isvSvn?: number;
  reportData?: Uint8Array;
}

/** A 384-byte SGX report body (REPORTBODY of the SDK). */
export function sgxBody(spec: SgxBodySpec): Uint8Array {
  const b = new Uint8Array(384);
  const dv = new DataView(b.buffer);
  if (spec.cpuSvn) b.set(spec.cpuSvn, 0);
  dv.setUint32(16, spec.miscSelect ?? 0, true);
  b.set(spec.attributes ?? tryFromHex('0500000000000000e700000000000000')!, 48);
  b.set(spec.mrEnclave ?? new Uint8Array(32).fill(0xe1), 64);
  b.set(spec.mrSigner ?? new Uint8Array(32).fill(0x51), 128);
  dv.setUint16(256, spec.isvProdId ?? 0, true);
  dv.setUint16(258, spec.isvSvn ?? 0, true);
  if (spec.reportData) b.set(spec.reportData, 320);
  return b;
}

/** The Intel QE vendor id, as bytes. */
export const INTEL_VENDOR = tryFromHex(INTEL_QE_VENDOR_ID)!;

/** little-endian integers of a quote. */
export const u16 = (n: number): Uint8Array => Uint8Array.of(n & 0xff, n >> 8);
export const u32 = (n: number): Uint8Array =>
  Uint8Array.of(n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24);

/** What one quote is made of: the signed part, and the QE's certification of the attestation key. */
export interface QuoteParts {
  version: 3 | 4 | 5;
  body: Uint8Array;
  /** The quoting enclave's own report body (its REPORTDATA is set here). */
  qeReport: Uint8Array;
  /** The PCK private key, which signs the QE report. */
  pckKey: KeyObject;
  /** The PEM text of the certification data (type 5): PCK, its CA, the root. */
  chainPem: string;
  attestationKey: KeyObject;
  /** The raw P-256 point (x || y) of the attestation key. */
  attestationKeyRaw: Uint8Array;
  qeAuthData: Uint8Array;
  /** Header bytes 8..11 of a v3 quote: QE and PCE SVNs. */
  qeSvn?: number;
  pceSvn?: number;
  /** The 20 bytes of user data in the header. */
  userData?: Uint8Array;
  /** Bytes appended after the quote. */
  trailer?: Uint8Array;
}

/**
 * A quote signed end to end, as Intel's quoting enclave makes it: the QE report binds SHA-256(attestation key
 * || QE auth data) and is signed by the PCK key; the attestation key signs header and body.
 */
export function assembleQuote(spec: QuoteParts): Uint8Array {
  const qe = spec.qeReport.slice();
  qe.set(createHash('sha256').update(spec.attestationKeyRaw).update(spec.qeAuthData).digest(), 320);
  qe.fill(0, 352, 384);
  const qeSig = rawSign(qe, spec.pckKey);
  const teeType = spec.version === 3 ? 0 : 0x81;
  const header = concat(
    u16(spec.version),
    u16(2),
    u32(teeType),
    u16(spec.qeSvn ?? 0),
    u16(spec.pceSvn ?? 0),
    INTEL_VENDOR,
    spec.userData ?? new Uint8Array(20).fill(3),
  );
  const signed =
    spec.version === 5
      ? concat(header, u16(spec.body.byteLength === 648 ? 3 : 2), u32(spec.body.byteLength), spec.body)
      : concat(header, spec.body);
  const sig = rawSign(signed, spec.attestationKey);
  const certData = new TextEncoder().encode(spec.chainPem);
  const qeCertData = concat(
    qe,
    qeSig,
    u16(spec.qeAuthData.byteLength),
    spec.qeAuthData,
    u16(5),
    u32(certData.byteLength),
    certData,
  );
  const sigData =
    spec.version === 3
      ? concat(sig, spec.attestationKeyRaw, qeCertData)
      : concat(sig, spec.attestationKeyRaw, u16(6), u32(qeCertData.byteLength), qeCertData);
  return concat(signed, u32(sigData.byteLength), sigData, spec.trailer ?? new Uint8Array(0));
}

/** PEM text of certificates, leaf first, as the quoting library writes it (ending in a NUL). */
export function chainPem(...ders: Uint8Array[]): string {
  return `${ders.map((d) => writePem(d)).join('')}\0`;
}
