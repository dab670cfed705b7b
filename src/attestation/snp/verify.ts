// Verification of one SEV-SNP report against its VCEK/VLEK chain: ARK (pinned) -> ASK/ASVK -> VCEK/VLEK
// -> report signature, plus the bindings between certificate and report (TCB, chip id, key kind).
// Policy (measurement, debug, ...) is not checked here: see policy.ts and verify.ts.

import { verify as cryptoVerify } from 'node:crypto';
import { reasonOf } from '../../lib/errors.ts';
import { equalBytes, isZero } from '../bytes.ts';
import { type Crl, checkNotRevoked, parseCrl, verifyCrl } from '../crl.ts';
import { AttestationError } from '../errors.ts';
import { amdIntermediates, type TrustRoots } from '../roots.ts';
import {
  type Certificate,
  checkCriticalExtensions,
  checkValidity,
  isSelfIssued,
  nameAttribute,
  nameText,
  OID,
  parseCertificate,
  publicKeyOf,
  verifyIssuedBy,
  type X509Name,
} from '../x509.ts';
import { assembleSnpReport } from './encode.ts';
import { parseSnpReport, type SnpReport } from './report.ts';
import { TCB_COMPONENTS } from './tcb.ts';
import { readVekExtensions, type VekInfo } from './vek.ts';

/** The certificates that come with a report (DER). Without `ask`/`ark`, the built-in AMD ones are used. */
export interface SnpCertificates {
  /** The VCEK or VLEK that signed the report. */
  vek: Uint8Array;
  /** The ASK (VCEK chains) or ASVK (VLEK chains). */
  ask?: Uint8Array;
  /** The ARK; it must be pinned by `roots` either way. */
  ark?: Uint8Array;
}

/** Inputs of a verification besides the evidence: the time, the trust anchors and optional CRLs. */
export interface SnpVerifyOptions {
  /** The time at which every certificate (and CRL) must be valid. */
  now: Date;
  roots: TrustRoots;
  /**
   * AMD KDS CRLs (DER), e.g. from /vcek/v1/{product}/crl. A CRL issued by the chain's ARK must verify
   * under it, be current, and not list the ASK/ASVK; one issued by the ASK/ASVK likewise for the
   * VCEK/VLEK. CRLs of other issuers (another product's) are ignored, so all products' CRLs may be given.
   */
  crls?: readonly Uint8Array[];
}

/** The product whose root signed the chain; `Simulated` for a simulated secure processor. */
export type SnpProduct = 'Milan' | 'Genoa' | 'Turin' | 'Simulated';

/** A report that verified, with what its chain says about it. */
export interface SnpVerified {
  report: SnpReport;
  product: SnpProduct;
  simulated: boolean;
  /** SHA-256 of the ARK DER, lower-case hex. */
  rootFingerprint: string;
  /** What the VCEK/VLEK certificate says (TCB, chip id or cloud provider). */
  vek: VekInfo;
  /** True when a CRL of the chain's ARK was given and checked (revocation of the ASK/ASVK). */
  crlChecked: boolean;
}

/** The word that marks a simulated root in its subject (the simulator writes O=Donjon SIMULATED). */
export const SIMULATED_MARK = 'SIMULATED';

/** Whether a certificate name marks a simulated secure processor. */
export function isSimulatedName(name: X509Name): boolean {
  return name.attributes.some((a) => a.value.includes(SIMULATED_MARK));
}

const PRODUCTS = ['Milan', 'Genoa', 'Turin'] as const;

function fail(code: AttestationError['code'], message: string, cause?: unknown): never {
  throw new AttestationError(code, message, cause === undefined ? undefined : { cause });
}

function certificate(der: Uint8Array, role: string): Certificate {
  if (!(der instanceof Uint8Array))
    throw new TypeError(`Cannot verify SEV-SNP report: ${role} must be a Uint8Array`);
  try {
    return parseCertificate(der);
  } catch (cause) {
    const detail = cause instanceof Error ? reasonOf(cause) : 'unreadable';
    return fail('ERR_EVIDENCE_MALFORMED', `Cannot parse ${role}: ${detail}`, cause);
  }
}

function checkOptions(options: SnpVerifyOptions): void {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('Cannot verify: options are required');
  if (!(options.now instanceof Date)) throw new TypeError('Cannot verify: options.now must be a Date');
  if (Number.isNaN(options.now.getTime()))
    throw new RangeError('Cannot verify: options.now is an invalid Date');
  const roots = options.roots;
  if (
    typeof roots !== 'object' ||
    roots === null ||
    !Array.isArray(roots.amdArks) ||
    !Array.isArray(roots.simulatedArkFingerprints)
  ) {
    throw new TypeError('Cannot verify: options.roots must be TrustRoots');
  }
  const crls = options.crls;
  if (crls !== undefined && (!Array.isArray(crls) || !crls.every((c) => c instanceof Uint8Array))) {
    throw new TypeError('Cannot verify: options.crls must be a list of DER CRLs');
  }
}

/** The given CRLs whose issuer is `issuer`. */
function crlsOf(crls: readonly Crl[], issuer: Certificate): Crl[] {
  return crls.filter((c) => equalBytes(c.issuer.der, issuer.subject.der));
}

function toReportBytes(report: Uint8Array | SnpReport): Uint8Array {
  if (report instanceof Uint8Array) return report;
  if (typeof report !== 'object' || report === null) {
    throw new TypeError('Cannot verify SEV-SNP report: expected bytes or a parsed report');
  }
  // Rebuild the bytes from what the signature covers: the other fields of a caller's object are not
  // trusted to agree with them.
  try {
    return assembleSnpReport(report.signedBytes, report.signature);
  } catch (cause) {
    return fail(
      'ERR_EVIDENCE_MALFORMED',
      'Cannot verify SEV-SNP report: its signed bytes or signature are malformed',
      cause,
    );
  }
}

/**
 * Verifies an SEV-SNP report and its certificate chain at `options.now`:
 * the ARK is pinned (an AMD ARK in `roots.amdArks` by DER equality, or a simulated ARK whose SHA-256 is
 * in `roots.simulatedArkFingerprints`) and self-signed; the ASK/ASVK is signed by the ARK and the
 * VCEK/VLEK by the ASK/ASVK (RSA-PSS SHA-384); every certificate is valid at `now`; the VCEK/VLEK kind
 * matches the report's SIGNING_KEY; its TCB extensions equal REPORTED_TCB and (VCEK) its hwID equals
 * CHIP_ID; and the report's ECDSA P-384 signature verifies under its key.
 *
 * Without `certs.ask`/`certs.ark`, the built-in AMD ASK/ASVK naming the VCEK's issuer and the pinned ARK
 * naming the ASK's issuer are used. With `options.crls`, a CRL of the ARK (or of the ASK/ASVK) must be
 * signed by it and current at `now` (ERR_COLLATERAL_INVALID / ERR_COLLATERAL_EXPIRED) and must not list
 * the certificate it covers (ERR_REVOKED); `crlChecked` says whether an ARK CRL was applied.
 * Fails with an {@link AttestationError}.
 *
 * @example
 * const { report, product } = verifySnpReport(bytes, { vek: vcekDer }, { now: new Date(), roots: defaultRoots });
 */
export function verifySnpReport(
  report: Uint8Array | SnpReport,
  certs: SnpCertificates,
  options: SnpVerifyOptions,
): SnpVerified {
  checkOptions(options);
  if (typeof certs !== 'object' || certs === null)
    throw new TypeError('Cannot verify SEV-SNP report: certs are required');
  const { now, roots } = options;
  const parsed = parseSnpReport(toReportBytes(report));
  if (parsed.signingKey === 'none') {
    fail('ERR_EVIDENCE_UNSUPPORTED', 'Cannot verify SEV-SNP report: it is unsigned (SIGNING_KEY is none)');
  }

  const vek = certificate(certs.vek, 'the VCEK/VLEK certificate');
  const vekInfo = readVekExtensions(vek);
  const vekRole = vekInfo.kind === 'vcek' ? 'the VCEK' : 'the VLEK';
  if (vekInfo.kind !== parsed.signingKey) {
    fail(
      'ERR_CHAIN_INVALID',
      `Cannot verify SEV-SNP report: it is signed by a ${parsed.signingKey.toUpperCase()} but the certificate is a ${vekInfo.kind.toUpperCase()}`,
    );
  }
  const askRole = vekInfo.kind === 'vcek' ? 'the ASK' : 'the ASVK';

  let ask: Certificate;
  if (certs.ask !== undefined) {
    ask = certificate(certs.ask, askRole);
  } else {
    const found = amdIntermediates
      .map((d) => parseCertificate(d))
      .find((c) => equalBytes(c.subject.der, vek.issuer.der));
    if (found === undefined) {
      fail(
        'ERR_CHAIN_INVALID',
        `Cannot verify ${vekRole}: no ${askRole} was given and none is built in for ${nameText(vek.issuer)}`,
      );
    }
    ask = found;
  }

  let ark: Certificate;
  if (certs.ark !== undefined) {
    ark = certificate(certs.ark, 'the ARK');
  } else {
    const found = roots.amdArks
      .map((d) => parseCertificate(d))
      .find((c) => equalBytes(c.subject.der, ask.issuer.der));
    if (found === undefined) {
      fail(
        'ERR_CHAIN_INVALID',
        `Cannot verify ${askRole}: no ARK was given and none is pinned for ${nameText(ask.issuer)}`,
      );
    }
    ark = found;
  }

  // Pin the root before spending any work on the chain.
  const pinnedAmd = roots.amdArks.some((d) => equalBytes(d, ark.der));
  const pinnedSimulated =
    !pinnedAmd &&
    roots.simulatedArkFingerprints.some((f) => typeof f === 'string' && f.toLowerCase() === ark.fingerprint);
  const simulated = pinnedSimulated || isSimulatedName(ark.subject);
  if (!pinnedAmd && !pinnedSimulated) {
    if (simulated) {
      throw new AttestationError(
        'ERR_SIMULATED_ROOT_NOT_TRUSTED',
        `Cannot trust the simulated ARK ${ark.fingerprint}: the policy did not opt into this simulated root`,
        { value: ark.fingerprint },
      );
    }
    fail(
      'ERR_ROOT_UNTRUSTED',
      `Cannot trust the ARK ${nameText(ark.subject)} (${ark.fingerprint}): it is not pinned`,
    );
  }

  if (!isSelfIssued(ark)) fail('ERR_CHAIN_INVALID', 'Cannot verify the ARK: it is not self-issued');
  for (const [cert, role] of [
    [ark, 'the ARK'],
    [ask, askRole],
    [vek, vekRole],
  ] as const) {
    checkCriticalExtensions(cert, role);
  }
  verifyIssuedBy(ark, ark, 'the ARK');
  // The ARK's CRL needs only the (now verified) ARK: a revoked ASK is refused as revoked, whatever else
  // is wrong with it.
  const crls = (options.crls ?? []).map((der, i) => parseCrl(der, `CRL ${i}`));
  const arkCrls = crlsOf(crls, ark);
  for (const crl of arkCrls) {
    verifyCrl(crl, ark, now, "the ARK's CRL", 'amd-rsa-pss');
    checkNotRevoked(crl, ask, askRole);
  }
  verifyIssuedBy(ask, ark, askRole);
  verifyIssuedBy(vek, ask, vekRole);
  for (const crl of crlsOf(crls, ask)) {
    verifyCrl(crl, ask, now, `the CRL of ${askRole}`, 'amd-rsa-pss');
    checkNotRevoked(crl, vek, vekRole);
  }
  checkValidity(ark, now, 'the ARK');
  checkValidity(ask, now, askRole);
  checkValidity(vek, now, vekRole);

  let product: SnpProduct = 'Simulated';
  if (!simulated) {
    const cn = nameAttribute(ark.subject, OID.commonName) ?? '';
    const name = PRODUCTS.find((p) => cn === `ARK-${p}`);
    if (name === undefined)
      fail('ERR_EVIDENCE_UNSUPPORTED', `Cannot verify SEV-SNP report: unknown AMD product root ${cn}`);
    product = name;
    if (vekInfo.productName !== name && !vekInfo.productName.startsWith(`${name}-`)) {
      fail(
        'ERR_CHAIN_INVALID',
        `Cannot verify ${vekRole}: its product ${vekInfo.productName} is not ${name}`,
      );
    }
    if ((name === 'Turin') !== (parsed.reportedTcb.fmc !== undefined)) {
      fail(
        'ERR_TCB_MISMATCH',
        `Cannot verify SEV-SNP report: its TCB layout does not match the ${name} product`,
      );
    }
  }

  checkTcb(parsed, vekInfo, vekRole);
  if (vekInfo.hwId !== undefined) checkChipId(parsed, vekInfo.hwId, vekRole);
  checkSignature(parsed, vek, vekRole);
  return {
    report: parsed,
    product,
    simulated,
    rootFingerprint: ark.fingerprint,
    vek: vekInfo,
    crlChecked: arkCrls.length > 0,
  };
}

function checkTcb(report: SnpReport, vek: VekInfo, role: string): void {
  const reported = report.reportedTcb;
  if ((reported.fmc === undefined) !== (vek.tcb.fmc === undefined)) {
    fail(
      'ERR_TCB_MISMATCH',
      `Cannot accept ${role}: it ${vek.tcb.fmc === undefined ? 'lacks' : 'has'} an fmcSPL but the report's TCB ${reported.fmc === undefined ? 'has no' : 'has an'} FMC`,
    );
  }
  for (const c of TCB_COMPONENTS) {
    if (reported[c] !== vek.tcb[c]) {
      fail(
        'ERR_TCB_MISMATCH',
        `Cannot accept ${role}: it was issued for ${c} ${vek.tcb[c]} but the report's REPORTED_TCB has ${reported[c]}`,
      );
    }
  }
}

function checkChipId(report: SnpReport, hwId: Uint8Array, role: string): void {
  const turin = report.reportedTcb.fmc !== undefined;
  const expected = turin ? report.chipId.subarray(0, 8) : report.chipId;
  if (
    hwId.byteLength !== expected.byteLength ||
    !equalBytes(hwId, expected) ||
    (turin && !isZero(report.chipId, 8))
  ) {
    fail(
      'ERR_CHIP_ID_MISMATCH',
      `Cannot accept ${role}: it belongs to another chip than the report's CHIP_ID`,
    );
  }
}

function checkSignature(report: SnpReport, vek: Certificate, role: string): void {
  const key = publicKeyOf(vek);
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'secp384r1') {
    fail('ERR_CHAIN_INVALID', `Cannot verify SEV-SNP report: ${role} key is not ECDSA P-384`);
  }
  let ok = false;
  try {
    ok = cryptoVerify('sha384', report.signedBytes, { key, dsaEncoding: 'ieee-p1363' }, report.signature);
  } catch (cause) {
    fail('ERR_SIGNATURE_INVALID', 'Cannot verify SEV-SNP report: the signature check failed', cause);
  }
  if (!ok)
    fail(
      'ERR_SIGNATURE_INVALID',
      `Cannot verify SEV-SNP report: its signature does not verify under ${role}`,
    );
}
