// Over 400 lines: one strict certificate reader and its signature checks for every chain the verifiers walk.
// X.509 certificates, read strictly: just the fields the AMD and Intel chains use, every field checked,
// unknown critical extensions refused. Two signature profiles exist, one per vendor: RSASSA-PSS with
// SHA-384, MGF1-SHA-384 and a 48-byte salt under RSA-4096 keys (AMD's KDS chains), and ECDSA P-256 with
// SHA-256 (Intel's SGX PKI). Internal: not re-exported from index.ts.
import { constants, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { TAG } from '../lib/der.ts';
import { equalBytes, sha256Hex } from './bytes.ts';
import {
  children,
  type DerNode,
  readBigInt,
  readBitStringBytes,
  readBoolean,
  readOid,
  readOne,
  readSmallInt,
  readString,
  readTime,
} from './der.ts';
import { AttestationError } from './errors.ts';

/** Object identifiers used by the certificate code. */
export const OID = {
  rsaEncryption: '1.2.840.113549.1.1.1',
  rsassaPss: '1.2.840.113549.1.1.10',
  mgf1: '1.2.840.113549.1.1.8',
  sha384: '2.16.840.1.101.3.4.2.2',
  ecPublicKey: '1.2.840.10045.2.1',
  secp384r1: '1.3.132.0.34',
  prime256v1: '1.2.840.10045.3.1.7',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  country: '2.5.4.6',
  locality: '2.5.4.7',
  state: '2.5.4.8',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  crlDistributionPoints: '2.5.29.31',
  authorityKeyIdentifier: '2.5.29.35',
  crlNumber: '2.5.29.20',
  crlReason: '2.5.29.21',
  invalidityDate: '2.5.29.24',
} as const;

/** Critical extensions whose meaning this code enforces; any other critical extension fails the chain. */
const UNDERSTOOD_CRITICAL = new Set<string>([OID.keyUsage, OID.basicConstraints]);

/** One attribute of a distinguished name. */
export interface NameAttribute {
  readonly oid: string;
  readonly value: string;
}

/** A distinguished name: its DER (compared byte for byte when chaining) and its attributes in order. */
export interface X509Name {
  readonly der: Uint8Array;
  readonly attributes: readonly NameAttribute[];
}

/** One extension: its criticality and the contents of its extnValue OCTET STRING. */
export interface X509Extension {
  readonly critical: boolean;
  readonly value: Uint8Array;
}

/** A parsed certificate. Byte fields are views into `der`, which the parser copied. */
export interface Certificate {
  readonly der: Uint8Array;
  /** SHA-256 of `der`, lower-case hex. */
  readonly fingerprint: string;
  readonly tbs: Uint8Array;
  readonly serial: bigint;
  readonly issuer: X509Name;
  readonly subject: X509Name;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SubjectPublicKeyInfo DER. */
  readonly spki: Uint8Array;
  readonly extensions: ReadonlyMap<string, X509Extension>;
  /** The AlgorithmIdentifier DER of the signature (the same bytes inside and outside the TBS). */
  readonly signatureAlgorithm: Uint8Array;
  readonly signatureValue: Uint8Array;
}

function malformed(state: string, cause?: unknown): never {
  throw new AttestationError(
    'ERR_EVIDENCE_MALFORMED',
    `Cannot parse certificate: ${state}`,
    cause === undefined ? undefined : { cause },
  );
}

/** Reads a distinguished name (a SEQUENCE of SETs of attribute-value pairs). */
export function parseName(node: DerNode): X509Name {
  if (node.tag !== TAG.SEQUENCE) malformed('name is not a SEQUENCE');
  const attributes: NameAttribute[] = [];
  const rdns = children(node);
  while (!rdns.done) {
    const rdn = children(rdns.next(TAG.SET));
    if (rdn.done) malformed('empty relative distinguished name');
    while (!rdn.done) {
      const atv = children(rdn.next(TAG.SEQUENCE));
      const oid = readOid(atv.next(TAG.OID));
      const value = readString(atv.next());
      atv.end();
      attributes.push({ oid, value });
    }
  }
  return { der: node.bytes, attributes };
}

function parseExtensions(node: DerNode): Map<string, X509Extension> {
  const outer = children(node);
  const list = outer.next(TAG.SEQUENCE);
  outer.end();
  return readExtensions(list);
}

/** Reads a non-empty SEQUENCE OF Extension: unique OIDs, DER-default criticality left out. */
export function readExtensions(node: DerNode): Map<string, X509Extension> {
  const map = new Map<string, X509Extension>();
  if (node.tag !== TAG.SEQUENCE) malformed('extensions are not a SEQUENCE');
  const list = children(node);
  if (list.done) malformed('empty extensions');
  while (!list.done) {
    const ext = children(list.next(TAG.SEQUENCE));
    const id = readOid(ext.next(TAG.OID));
    const criticalNode = ext.optional(TAG.BOOLEAN);
    const critical = criticalNode === undefined ? false : readBoolean(criticalNode);
    // DER leaves DEFAULT values out: an explicit FALSE is a second encoding of the same certificate.
    if (criticalNode !== undefined && !critical) malformed(`extension ${id} encodes the default criticality`);
    const value = ext.next(TAG.OCTET_STRING).value;
    ext.end();
    if (map.has(id)) malformed(`duplicate extension ${id}`);
    map.set(id, { critical, value });
  }
  return map;
}

function parseUncached(der: Uint8Array, fingerprint: string): Certificate {
  const cert = children(readOne(der, TAG.SEQUENCE));
  const tbsNode = cert.next(TAG.SEQUENCE);
  const outerAlg = cert.next(TAG.SEQUENCE);
  const signatureValue = readBitStringBytes(cert.next(TAG.BIT_STRING));
  cert.end();

  const tbs = children(tbsNode);
  const versionNode = tbs.next(0xa0);
  const versionReader = children(versionNode);
  const version = readSmallInt(versionReader.next(TAG.INTEGER), 2);
  versionReader.end();
  if (version !== 2) malformed('only X.509 v3 certificates are accepted');
  const serial = readBigInt(tbs.next(TAG.INTEGER));
  if (serial < 0n) malformed('negative serial number');
  const innerAlg = tbs.next(TAG.SEQUENCE);
  const issuer = parseName(tbs.next(TAG.SEQUENCE));
  const validity = children(tbs.next(TAG.SEQUENCE));
  const notBefore = readTime(validity.next());
  const notAfter = readTime(validity.next());
  validity.end();
  const subject = parseName(tbs.next(TAG.SEQUENCE));
  const spkiNode = tbs.next(TAG.SEQUENCE);
  const spki = children(spkiNode);
  spki.next(TAG.SEQUENCE);
  readBitStringBytes(spki.next(TAG.BIT_STRING));
  spki.end();
  const extNode = tbs.optional(0xa3);
  tbs.end();

  if (!equalBytes(innerAlg.bytes, outerAlg.bytes))
    malformed('signature algorithm differs inside and outside the TBS');
  return {
    der,
    fingerprint,
    tbs: tbsNode.bytes,
    serial,
    issuer,
    subject,
    notBefore,
    notAfter,
    spki: spkiNode.bytes,
    extensions: extNode === undefined ? new Map() : parseExtensions(extNode),
    signatureAlgorithm: outerAlg.bytes,
    signatureValue,
  };
}

// Parsing and public-key import are deterministic in the DER bytes, and signature checks in the pair
// (subject DER, issuer DER), so both are memoised by SHA-256 fingerprint. Time-dependent checks are
// never cached. The caches are bounded so a stream of distinct certificates cannot grow memory.
const CACHE_LIMIT = 128;
const certCache = new Map<string, Certificate>();
const keyCache = new Map<string, KeyObject>();
const verifiedPairs = new Set<string>();

function remember<K, V>(map: Map<K, V>, key: K, value: V): V {
  if (map.size >= CACHE_LIMIT) map.delete(map.keys().next().value as K);
  map.set(key, value);
  return value;
}

/** Empties the parse and signature caches (for measurements and tests). */
export function clearCertificateCache(): void {
  certCache.clear();
  keyCache.clear();
  verifiedPairs.clear();
}

/** Parses one DER certificate strictly; fails with ERR_EVIDENCE_MALFORMED. */
export function parseCertificate(der: Uint8Array): Certificate {
  if (!(der instanceof Uint8Array)) throw new TypeError('Cannot parse certificate: expected a Uint8Array');
  const fingerprint = sha256Hex(der);
  const cached = certCache.get(fingerprint);
  if (cached !== undefined) return cached;
  const copy = der.slice();
  let cert: Certificate;
  try {
    cert = parseUncached(copy, fingerprint);
  } catch (e) {
    // A failure of the DER layer below is told as a failure to parse the certificate.
    if (e instanceof AttestationError && !e.message.startsWith('Cannot parse certificate'))
      malformed(e.detail, e);
    throw e;
  }
  return remember(certCache, fingerprint, cert);
}

/** The first value of attribute `oid` in `name`, if any. */
export function nameAttribute(name: X509Name, oid: string): string | undefined {
  return name.attributes.find((a) => a.oid === oid)?.value;
}

/** A one-line rendering of a name for messages (`CN=..., O=...`). */
export function nameText(name: X509Name): string {
  const short: Record<string, string> = {
    [OID.commonName]: 'CN',
    [OID.organization]: 'O',
    [OID.organizationalUnit]: 'OU',
    [OID.country]: 'C',
    [OID.locality]: 'L',
    [OID.state]: 'ST',
  };
  return name.attributes.map((a) => `${short[a.oid] ?? a.oid}=${a.value}`).join(', ');
}

/** Whether the certificate names itself as issuer. */
export function isSelfIssued(cert: Certificate): boolean {
  return equalBytes(cert.subject.der, cert.issuer.der);
}

/** The certificate's public key as a KeyObject. */
export function publicKeyOf(cert: Certificate): KeyObject {
  const cached = keyCache.get(cert.fingerprint);
  if (cached !== undefined) return cached;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(cert.spki), format: 'der', type: 'spki' });
  } catch (cause) {
    return malformed('unreadable subject public key', cause);
  }
  return remember(keyCache, cert.fingerprint, key);
}

function chainError(state: string, cause?: unknown): never {
  throw new AttestationError('ERR_CHAIN_INVALID', state, cause === undefined ? undefined : { cause });
}

/** Checks that `alg` is RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48, trailer 1. */
function checkPssSha384(alg: Uint8Array, role: string): void {
  try {
    const r = children(readOne(alg, TAG.SEQUENCE));
    if (readOid(r.next(TAG.OID)) !== OID.rsassaPss)
      chainError(`Cannot verify ${role}: not signed with RSA-PSS`);
    const params = children(r.next(TAG.SEQUENCE));
    r.end();
    const hash = children(children(params.next(0xa0)).next(TAG.SEQUENCE));
    if (readOid(hash.next(TAG.OID)) !== OID.sha384)
      chainError(`Cannot verify ${role}: RSA-PSS hash is not SHA-384`);
    hash.optional(TAG.NULL);
    hash.end();
    const mgf = children(children(params.next(0xa1)).next(TAG.SEQUENCE));
    if (readOid(mgf.next(TAG.OID)) !== OID.mgf1)
      chainError(`Cannot verify ${role}: RSA-PSS mask is not MGF1`);
    const mgfHash = children(mgf.next(TAG.SEQUENCE));
    if (readOid(mgfHash.next(TAG.OID)) !== OID.sha384)
      chainError(`Cannot verify ${role}: MGF1 hash is not SHA-384`);
    mgfHash.optional(TAG.NULL);
    mgfHash.end();
    mgf.end();
    const salt = children(params.next(0xa2));
    if (readSmallInt(salt.next(TAG.INTEGER), 0xffff) !== 48)
      chainError(`Cannot verify ${role}: RSA-PSS salt is not 48`);
    salt.end();
    // AMD's ARK and ASK spell out the default trailer field; accept it only with its one legal value.
    const trailer = params.optional(0xa3);
    if (trailer !== undefined) {
      const t = children(trailer);
      if (readSmallInt(t.next(TAG.INTEGER), 0xff) !== 1)
        chainError(`Cannot verify ${role}: RSA-PSS trailer is not 1`);
      t.end();
    }
    params.end();
  } catch (e) {
    if (e instanceof AttestationError && e.code === 'ERR_CHAIN_INVALID') throw e;
    chainError(`Cannot verify ${role}: unreadable signature algorithm`, e);
  }
}

/** The two signature profiles: AMD's KDS chains and Intel's SGX PKI. */
export type SignatureProfile = 'amd-rsa-pss' | 'intel-ecdsa';

/** Something signed under an X.509-style AlgorithmIdentifier: a certificate or a CRL. */
export interface SignedObject {
  readonly tbs: Uint8Array;
  readonly signatureAlgorithm: Uint8Array;
  readonly signatureValue: Uint8Array;
}

/** The only AlgorithmIdentifier Intel uses: ecdsa-with-SHA256 with absent parameters (RFC 5758). */
const ECDSA_SHA256_ALG = Uint8Array.of(
  0x30,
  0x0a,
  0x06,
  0x08,
  0x2a,
  0x86,
  0x48,
  0xce,
  0x3d,
  0x04,
  0x03,
  0x02,
);

/** Checks that an ECDSA signature is a canonical DER Ecdsa-Sig-Value with positive r and s. */
function checkEcdsaSignatureDer(signature: Uint8Array, role: string): void {
  try {
    const seq = children(readOne(signature, TAG.SEQUENCE));
    const r = readBigInt(seq.next(TAG.INTEGER));
    const s = readBigInt(seq.next(TAG.INTEGER));
    seq.end();
    if (r <= 0n || s <= 0n)
      chainError(`Cannot verify ${role}: its ECDSA signature has a non-positive component`);
  } catch (e) {
    if (e instanceof AttestationError && e.code === 'ERR_CHAIN_INVALID') throw e;
    chainError(`Cannot verify ${role}: its ECDSA signature is not canonical DER`, e);
  }
}

/**
 * Checks the signature of `signed` (a certificate or CRL) under `issuer`'s key with the vendor profile:
 * `amd-rsa-pss` needs an RSA-4096 issuer key, `intel-ecdsa` a P-256 one. Fails with ERR_CHAIN_INVALID;
 * the caller re-codes the failure when the object is collateral rather than chain.
 */
export function checkSignedBy(
  signed: SignedObject,
  issuer: Certificate,
  role: string,
  profile: SignatureProfile,
): void {
  const key = publicKeyOf(issuer);
  let ok = false;
  if (profile === 'amd-rsa-pss') {
    checkPssSha384(signed.signatureAlgorithm, role);
    if (key.asymmetricKeyType !== 'rsa' || key.asymmetricKeyDetails?.modulusLength !== 4096) {
      chainError(`Cannot verify ${role}: its issuer key is not RSA-4096`);
    }
    try {
      ok = cryptoVerify(
        'sha384',
        signed.tbs,
        { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 },
        signed.signatureValue,
      );
    } catch (cause) {
      chainError(`Cannot verify ${role}: the signature check failed`, cause);
    }
  } else {
    if (!equalBytes(signed.signatureAlgorithm, ECDSA_SHA256_ALG)) {
      chainError(`Cannot verify ${role}: not signed with ECDSA SHA-256`);
    }
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      chainError(`Cannot verify ${role}: its issuer key is not ECDSA P-256`);
    }
    checkEcdsaSignatureDer(signed.signatureValue, role);
    try {
      ok = cryptoVerify('sha256', signed.tbs, { key, dsaEncoding: 'der' }, signed.signatureValue);
    } catch (cause) {
      chainError(`Cannot verify ${role}: the signature check failed`, cause);
    }
  }
  if (!ok)
    chainError(`Cannot verify ${role}: its signature does not verify under ${nameText(issuer.subject)}`);
}

/**
 * Checks that `cert` was issued and signed by `issuer`, a CA certificate, under the vendor `profile`
 * (default AMD's RSA-PSS with an RSA-4096 issuer key). `role` names the certificate in messages
 * (e.g. "the ASK"). Fails with ERR_CHAIN_INVALID.
 */
export function verifyIssuedBy(
  cert: Certificate,
  issuer: Certificate,
  role: string,
  profile: SignatureProfile = 'amd-rsa-pss',
): void {
  if (!equalBytes(cert.issuer.der, issuer.subject.der)) {
    chainError(
      `Cannot verify ${role}: its issuer is ${nameText(cert.issuer)}, not ${nameText(issuer.subject)}`,
    );
  }
  const pair = `${profile}:${cert.fingerprint}:${issuer.fingerprint}`;
  if (verifiedPairs.has(pair)) return;
  if (!isCa(issuer)) chainError(`Cannot verify ${role}: its issuer is not a CA certificate`);
  checkSignedBy(cert, issuer, role, profile);
  if (verifiedPairs.size >= CACHE_LIMIT) verifiedPairs.delete(verifiedPairs.values().next().value as string);
  verifiedPairs.add(pair);
}

/** Whether the certificate is a CA: basicConstraints cA TRUE and, when present, keyUsage keyCertSign. */
export function isCa(cert: Certificate): boolean {
  const bc = cert.extensions.get(OID.basicConstraints);
  if (bc === undefined) return false;
  try {
    const seq = children(readOne(bc.value, TAG.SEQUENCE));
    const ca = seq.optional(TAG.BOOLEAN);
    if (ca === undefined || !readBoolean(ca)) return false;
    const pathLen = seq.optional(TAG.INTEGER);
    if (pathLen !== undefined) readSmallInt(pathLen);
    seq.end();
    const ku = cert.extensions.get(OID.keyUsage);
    if (ku === undefined) return true;
    const node = readOne(ku.value, TAG.BIT_STRING);
    // keyCertSign is bit 5: the first content byte after the unused-bits count, mask 0x04.
    return node.value.byteLength >= 2 && (node.value[1]! & 0x04) !== 0;
  } catch {
    return false;
  }
}

/** Fails with ERR_CHAIN_INVALID when the certificate has a critical extension this code does not enforce. */
export function checkCriticalExtensions(cert: Certificate, role: string): void {
  for (const [id, ext] of cert.extensions) {
    if (ext.critical && !UNDERSTOOD_CRITICAL.has(id)) {
      chainError(`Cannot verify ${role}: it has the unknown critical extension ${id}`);
    }
  }
}

/** Fails with ERR_CERT_EXPIRED unless `now` lies within the certificate's validity (bounds included). */
export function checkValidity(cert: Certificate, now: Date, role: string): void {
  const t = now.getTime();
  if (Number.isNaN(t)) throw new RangeError('Cannot check certificate validity: `now` is an invalid Date');
  if (t < cert.notBefore.getTime()) {
    throw new AttestationError(
      'ERR_CERT_EXPIRED',
      `Cannot accept ${role}: it is not valid before ${cert.notBefore.toISOString()}`,
    );
  }
  if (t > cert.notAfter.getTime()) {
    throw new AttestationError(
      'ERR_CERT_EXPIRED',
      `Cannot accept ${role}: it expired at ${cert.notAfter.toISOString()}`,
    );
  }
}

/** Reads a DER INTEGER extension value (AMD encodes SPLs and versions this way). */
export function readIntegerExtension(value: Uint8Array, max: number): number {
  return readSmallInt(readOne(value, TAG.INTEGER), max);
}

/** Reads a DER IA5String extension value. */
export function readIa5Extension(value: Uint8Array): string {
  const node = readOne(value, TAG.IA5_STRING);
  return readString(node);
}
