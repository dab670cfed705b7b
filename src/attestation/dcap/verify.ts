// Over 400 lines: Intel QVL's procedure is one sequence of checks, kept in one file in its order.
// Verification of one Intel DCAP quote (Intel QVL's procedure, FORMATS.md B.5): the PCK chain to a pinned
// Intel SGX Root CA, the QE report signed by the PCK key, the attestation key bound into the QE report,
// the quote signed by the attestation key; then, with collateral, the CRLs, the signed TCB info and QE
// identity, and the TCB appraisal. Policy (measurements, debug, ...) is not checked here: see policy.ts.

import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { reasonOf } from '../../lib/errors.ts';
import { concat, equalBytes, isZero, tryFromHex } from '../bytes.ts';
import { type Crl, checkNotRevoked, parseCrl, verifyCrl } from '../crl.ts';
import { AttestationError } from '../errors.ts';
import type { TrustRoots } from '../roots.ts';
import { isSimulatedName } from '../snp/verify.ts';
import {
  type Certificate,
  checkCriticalExtensions,
  checkValidity,
  isCa,
  isSelfIssued,
  nameAttribute,
  nameText,
  OID,
  parseCertificate,
  publicKeyOf,
  verifyIssuedBy,
} from '../x509.ts';
import { type DcapCollateral, readDcapCollateral } from './collateral.ts';
import { type PckInfo, readPckExtension } from './pck.ts';
import { type DcapQuote, INTEL_QE_VENDOR_ID, parseDcapQuote } from './quote.ts';
import { appraiseQe, evaluateTcb, type TcbEvaluation } from './tcb.ts';

/** Inputs of a quote verification besides the quote. */
export interface DcapVerifyOptions {
  /** The time at which certificates, CRLs, TCB info and QE identity must be valid. */
  now: Date;
  /** TCB info, QE identity and CRLs. Without them, revocation and TCB status are not checked. */
  collateral?: DcapCollateral;
  /** `intelRoots` pins the Intel SGX Root CA. */
  roots: TrustRoots;
}

/** A quote that verified, with what its chain and collateral say about it. */
export interface DcapVerified {
  quote: DcapQuote;
  /** The PCK certificate's SGX extension: FMSPC, PCE-ID, TCB components. */
  pck: PckInfo;
  /** Which Intel CA issued the PCK certificate. */
  pckCa: 'platform' | 'processor';
  /** SHA-256 of the Intel SGX Root CA DER, lower-case hex. */
  rootFingerprint: string;
  /** True when the chain ends in a simulated root: the quote proves no hardware isolation. */
  simulated: boolean;
  /** True when collateral was given and checked: CRLs, TCB info, QE identity, TCB status. */
  collateralChecked: boolean;
  /** The TCB appraisal; present exactly when `collateralChecked`. */
  tcb?: TcbEvaluation;
}

/**
 * Intel's quoting enclaves as their QE identities describe them (MRSIGNER, ISVPRODID, MISCSELECT and
 * ATTRIBUTES with Intel's masks, which keep DEBUG clear). Without collateral these stand in for the
 * signed QE identity, so a quote from some other enclave holding a PCK-certified report is refused.
 */
const BUILT_IN_QE = {
  sgx: {
    mrSigner: tryFromHex('8c4f5775d796503e96137f77c68a829a0056ac8ded70140b081b094490c57bff')!,
    isvProdId: 1,
  },
  tdx: {
    mrSigner: tryFromHex('dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5')!,
    isvProdId: 2,
  },
} as const;
const QE_MASKS = {
  miscselect: 0,
  miscselectMask: 0xffffffff,
  attributes: tryFromHex('11000000000000000000000000000000')!,
  attributesMask: tryFromHex('fbffffffffffffff0000000000000000')!,
} as const;

/** The SubjectPublicKeyInfo prefix of an uncompressed P-256 key (the 65-byte point follows). */
const P256_SPKI_PREFIX = tryFromHex('3059301306072a8648ce3d020106082a8648ce3d030107034200')!;

function fail(code: AttestationError['code'], message: string, cause?: unknown): never {
  throw new AttestationError(code, message, cause === undefined ? undefined : { cause });
}

function checkOptions(options: DcapVerifyOptions): void {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('Cannot verify DCAP quote: options are required');
  if (!(options.now instanceof Date) || Number.isNaN(options.now.getTime()))
    throw new TypeError('Cannot verify DCAP quote: options.now must be a valid Date');
  const roots = options.roots;
  if (typeof roots !== 'object' || roots === null || !Array.isArray(roots.intelRoots))
    throw new TypeError('Cannot verify DCAP quote: options.roots must be TrustRoots with intelRoots');
}

function certificate(der: Uint8Array, role: string, code: AttestationError['code']): Certificate {
  try {
    return parseCertificate(der);
  } catch (cause) {
    const detail = cause instanceof Error ? reasonOf(cause) : 'unreadable';
    return fail(code, `Cannot parse ${role}: ${detail}`, cause);
  }
}

/** A verified Intel chain: leaf, its issuers, and the pinned root it ends in. */
interface IntelChain {
  certs: Certificate[];
  root: Certificate;
  /** The root is a simulated one (pinned by fingerprint, or marked SIMULATED in its name). */
  simulated: boolean;
}

/**
 * Verifies an Intel chain given leaf first (the root may be left out): it must end in a pinned Intel
 * SGX Root CA (by exact DER; an embedded root is compared, never trusted), each certificate signed by the
 * next with ECDSA P-256 SHA-256, issuers CAs, no unknown critical extension, all valid at `now`.
 */
function verifyIntelChain(
  ders: readonly Uint8Array[],
  roles: readonly string[],
  roots: TrustRoots,
  now: Date,
  code: AttestationError['code'],
): IntelChain {
  if (ders.length === 0) fail('ERR_CHAIN_INVALID', `Cannot verify ${roles[0]}: the chain is empty`);
  const parsed = ders.map((d, i) => certificate(d, roles[Math.min(i, roles.length - 1)]!, code));
  const last = parsed[parsed.length - 1]!;
  let root: Certificate | undefined;
  const pinned = roots.intelRoots.map((d) => parseCertificate(d));
  let certs = parsed;
  if (parsed.length === roles.length + 1 && isSelfIssued(last)) {
    // The chain carries its root: it must be a pinned one, byte for byte.
    root = pinned.find((p) => equalBytes(p.der, last.der));
    // A simulated Intel root is pinned by its fingerprint alone, as a simulated ARK is.
    if (
      root === undefined &&
      (roots.simulatedArkFingerprints ?? []).some((f) => f.toLowerCase() === last.fingerprint)
    )
      root = last;
    if (root === undefined && isSimulatedName(last.subject)) {
      throw new AttestationError(
        'ERR_SIMULATED_ROOT_NOT_TRUSTED',
        `Cannot trust the simulated Intel root ${last.fingerprint}: the policy did not opt into this simulated root`,
        { value: last.fingerprint },
      );
    }
    if (root === undefined) {
      fail(
        'ERR_ROOT_UNTRUSTED',
        `Cannot trust the root ${nameText(last.subject)} (${last.fingerprint}): it is not pinned`,
      );
    }
    certs = parsed.slice(0, -1);
  } else {
    root = pinned.find((p) => equalBytes(p.subject.der, last.issuer.der));
    if (root === undefined) {
      fail(
        'ERR_ROOT_UNTRUSTED',
        `Cannot trust ${roles[parsed.length - 1] ?? 'the chain'}: its issuer ${nameText(last.issuer)} is not a pinned root`,
      );
    }
  }
  if (certs.length !== roles.length) {
    fail(
      'ERR_CHAIN_INVALID',
      `Cannot verify ${roles[0]}: its chain has ${parsed.length} certificates, expected ${roles.join(', ')} and optionally the root`,
    );
  }
  if (!isSelfIssued(root)) fail('ERR_CHAIN_INVALID', 'Cannot verify the Intel root: it is not self-issued');
  verifyIssuedBy(root, root, 'the Intel SGX Root CA', 'intel-ecdsa');
  checkCriticalExtensions(root, 'the Intel SGX Root CA');
  checkValidity(root, now, 'the Intel SGX Root CA');
  for (let i = certs.length - 1; i >= 0; i--) {
    const cert = certs[i]!;
    const issuer = i + 1 < certs.length ? certs[i + 1]! : root;
    checkCriticalExtensions(cert, roles[i]!);
    verifyIssuedBy(cert, issuer, roles[i]!, 'intel-ecdsa');
    checkValidity(cert, now, roles[i]!);
  }
  const simulated =
    isSimulatedName(root.subject) ||
    (roots.simulatedArkFingerprints ?? []).some((f) => f.toLowerCase() === root.fingerprint);
  return { certs, root, simulated };
}

function commonName(cert: Certificate): string {
  return nameAttribute(cert.subject, OID.commonName) ?? '';
}

function p256Key(raw: Uint8Array, role: string): KeyObject {
  try {
    return createPublicKey({
      key: Buffer.from(concat(P256_SPKI_PREFIX, Uint8Array.of(4), raw)),
      format: 'der',
      type: 'spki',
    });
  } catch (cause) {
    return fail('ERR_SIGNATURE_INVALID', `Cannot verify DCAP quote: ${role} is not a P-256 point`, cause);
  }
}

function checkRaw(data: Uint8Array, signature: Uint8Array, key: KeyObject, what: string, by: string): void {
  let ok = false;
  try {
    ok = cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch (cause) {
    fail('ERR_SIGNATURE_INVALID', `Cannot verify DCAP quote: the check of ${what} failed`, cause);
  }
  if (!ok) fail('ERR_SIGNATURE_INVALID', `Cannot verify DCAP quote: ${what} does not verify under ${by}`);
}

function checkLeafKey(cert: Certificate, role: string, code: AttestationError['code']): KeyObject {
  const key = publicKeyOf(cert);
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    fail(code, `Cannot verify ${role}: its key is not ECDSA P-256`);
  if (isCa(cert)) fail(code, `Cannot verify ${role}: it is a CA certificate, not an end entity`);
  return key;
}

/** Verifies signed JSON collateral (TCB info or QE identity): its chain, signature and dates. */
function verifySignedJson(
  text: string,
  signature: Uint8Array,
  chainDers: readonly Uint8Array[],
  issueDate: Date,
  nextUpdate: Date,
  what: string,
  roots: TrustRoots,
  now: Date,
  rootCrl: Crl,
): void {
  const role = `the TCB signing certificate of ${what}`;
  const chain = verifyIntelChain(chainDers, [role], roots, now, 'ERR_COLLATERAL_INVALID');
  const signer = chain.certs[0]!;
  if (commonName(signer) !== 'Intel SGX TCB Signing')
    fail(
      'ERR_COLLATERAL_INVALID',
      `Cannot accept ${what}: it is signed by ${nameText(signer.subject)}, not the Intel SGX TCB Signing key`,
    );
  checkNotRevoked(rootCrl, signer, role);
  const key = checkLeafKey(signer, role, 'ERR_COLLATERAL_INVALID');
  let ok = false;
  try {
    ok = cryptoVerify(
      'sha256',
      new TextEncoder().encode(text),
      { key, dsaEncoding: 'ieee-p1363' },
      signature,
    );
  } catch (cause) {
    fail('ERR_COLLATERAL_INVALID', `Cannot accept ${what}: the signature check failed`, cause);
  }
  if (!ok) {
    fail(
      'ERR_COLLATERAL_INVALID',
      `Cannot accept ${what}: its signature does not verify over its exact text (was it re-serialised?)`,
    );
  }
  const t = now.getTime();
  if (t < issueDate.getTime())
    fail(
      'ERR_COLLATERAL_EXPIRED',
      `Cannot accept ${what}: it is issued at ${issueDate.toISOString()}, after the verification time`,
    );
  if (t > nextUpdate.getTime())
    fail(
      'ERR_COLLATERAL_EXPIRED',
      `Cannot accept ${what}: it was due for renewal at ${nextUpdate.toISOString()}`,
    );
}

function toQuoteBytes(quote: Uint8Array | DcapQuote): Uint8Array {
  if (quote instanceof Uint8Array) return quote;
  if (typeof quote !== 'object' || quote === null || !(quote.bytes instanceof Uint8Array))
    throw new TypeError('Cannot verify DCAP quote: expected bytes or a parsed quote');
  // Re-read the bytes the signatures cover: the other fields of a caller's object are not trusted.
  return quote.bytes;
}

/**
 * Verifies an Intel DCAP quote (SGX v3, TDX v4/v5) at `options.now`:
 * the PCK chain in its certification data ends in a pinned Intel SGX Root CA (`roots.intelRoots`), every
 * certificate valid at `now`; the QE report is signed by the PCK key, is Intel's quoting enclave and
 * binds the attestation key (REPORTDATA = SHA-256(key || QE auth data) || zeros); the quote is signed by
 * the attestation key.
 *
 * With `options.collateral`: the Root CA CRL and PCK CRL (signed, current) revoke neither the PCK CA,
 * the PCK nor the TCB signing key (ERR_REVOKED); TCB info and QE identity are signed by Intel's TCB
 * signing key over their exact text and current (ERR_COLLATERAL_INVALID / ERR_COLLATERAL_EXPIRED); the
 * TCB info is for the PCK's FMSPC (ERR_FMSPC_MISMATCH); the QE matches its identity; and the TCB is
 * appraised as Intel's QVL does (`tcb.status`, `tcb.advisoryIds`). Without collateral none of that is
 * checked, `collateralChecked` is false and there is no `tcb`.
 *
 * @example
 * const v = verifyDcapQuote(quote, { now: new Date(), roots: defaultRoots, collateral });
 */
export function verifyDcapQuote(quote: Uint8Array | DcapQuote, options: DcapVerifyOptions): DcapVerified {
  checkOptions(options);
  const { now } = options;
  const parsed = parseDcapQuote(toQuoteBytes(quote));
  if (!equalBytes(parsed.header.qeVendorId, tryFromHex(INTEL_QE_VENDOR_ID)!)) {
    fail(
      'ERR_EVIDENCE_UNSUPPORTED',
      "Cannot verify DCAP quote: its quoting enclave is not Intel's (QE vendor id)",
    );
  }

  // 1. PCK chain to the pinned root.
  const chain = verifyIntelChain(
    parsed.pckChain,
    ['the PCK certificate', 'the PCK CA certificate'],
    options.roots,
    now,
    'ERR_EVIDENCE_MALFORMED',
  );
  const [pckCert, pckCa] = chain.certs as [Certificate, Certificate];
  if (!commonName(pckCert).includes('SGX PCK Certificate'))
    fail(
      'ERR_CHAIN_INVALID',
      `Cannot verify the PCK certificate: ${nameText(pckCert.subject)} is not a PCK certificate`,
    );
  const caName = commonName(pckCa);
  const pckCaKind = caName.endsWith('PCK Platform CA')
    ? 'platform'
    : caName.endsWith('PCK Processor CA')
      ? 'processor'
      : undefined;
  if (pckCaKind === undefined)
    fail(
      'ERR_CHAIN_INVALID',
      `Cannot verify the PCK certificate: ${nameText(pckCa.subject)} is not a PCK Platform or Processor CA`,
    );
  const pckKey = checkLeafKey(pckCert, 'the PCK certificate', 'ERR_CHAIN_INVALID');
  const pck = readPckExtension(pckCert);

  // 2. QE report signed by the PCK key, binding the attestation key; 3. the quote signed by that key.
  checkRaw(parsed.qeReportBytes, parsed.qeReportSignature, pckKey, 'the QE report signature', 'the PCK key');
  const binding = createHash('sha256').update(parsed.attestationKey).update(parsed.qeAuthData).digest();
  const qeData = parsed.qeReport.reportData;
  if (!equalBytes(qeData.subarray(0, 32), binding) || !isZero(qeData, 32)) {
    fail(
      'ERR_SIGNATURE_INVALID',
      'Cannot verify DCAP quote: the QE report does not bind the attestation key and QE auth data',
    );
  }
  const attestationKey = p256Key(parsed.attestationKey, 'the attestation key');
  checkRaw(
    parsed.signedBytes,
    parsed.signature,
    attestationKey,
    'the quote signature',
    'the attestation key',
  );

  const verified: DcapVerified = {
    quote: parsed,
    pck,
    pckCa: pckCaKind,
    rootFingerprint: chain.root.fingerprint,
    simulated: chain.simulated,
    collateralChecked: false,
  };
  if (options.collateral === undefined) {
    appraiseQe(parsed.qeReport, { ...BUILT_IN_QE[parsed.kind], ...QE_MASKS });
    return verified;
  }

  // 4. Collateral: CRLs, then the signed TCB info and QE identity, then the TCB appraisal. A simulated root the
  // quote's chain was trusted by anchors the collateral's chains as well, even those that leave it out.
  const roots =
    chain.simulated && !options.roots.intelRoots.some((d) => equalBytes(d, chain.root.der))
      ? { ...options.roots, intelRoots: [...options.roots.intelRoots, chain.root.der] }
      : options.roots;
  const c = readDcapCollateral(options.collateral);
  const rootCrl = parseCrl(c.rootCaCrl, 'the Root CA CRL');
  verifyCrl(rootCrl, chain.root, now, 'the Root CA CRL', 'intel-ecdsa');
  checkNotRevoked(rootCrl, pckCa, 'the PCK CA certificate');
  const crlIssuer = verifyIntelChain(
    c.pckCrlIssuerChain,
    ['the PCK CRL issuer'],
    roots,
    now,
    'ERR_COLLATERAL_INVALID',
  );
  const crlCa = crlIssuer.certs[0]!;
  if (!equalBytes(crlCa.subject.der, pckCa.subject.der) || !equalBytes(crlCa.spki, pckCa.spki)) {
    fail(
      'ERR_COLLATERAL_INVALID',
      `Cannot accept the PCK CRL: its issuer chain is for ${nameText(crlCa.subject)}, the PCK's CA is ${nameText(pckCa.subject)}`,
    );
  }
  const pckCrl = parseCrl(c.pckCrl, 'the PCK CRL');
  verifyCrl(pckCrl, pckCa, now, 'the PCK CRL', 'intel-ecdsa');
  checkNotRevoked(pckCrl, pckCert, 'the PCK certificate');

  verifySignedJson(
    c.tcbInfoText,
    c.tcbInfoSignature,
    c.tcbInfoIssuerChain,
    c.tcbInfo.issueDate,
    c.tcbInfo.nextUpdate,
    'the TCB info',
    roots,
    now,
    rootCrl,
  );
  verifySignedJson(
    c.qeIdentityText,
    c.qeIdentitySignature,
    c.qeIdentityIssuerChain,
    c.qeIdentity.issueDate,
    c.qeIdentity.nextUpdate,
    'the QE identity',
    roots,
    now,
    rootCrl,
  );
  verified.tcb = evaluateTcb(parsed, pck, c.tcbInfo, c.qeIdentity);
  verified.collateralChecked = true;
  return verified;
}
