// The one entry point of evidence appraisal: evidence + policy + time (+ roots) -> claims, or an
// AttestationError. Pure: no clock, no network, no filesystem.
import { toHex } from './bytes.ts';
import type { DcapCollateral, TcbStatus } from './dcap/collateral.ts';
import { type DcapVerified, verifyDcapQuote } from './dcap/verify.ts';
import { AttestationError } from './errors.ts';
import { checkDcapPolicy, checkSnpPolicy, type Policy, parsePolicy } from './policy.ts';
import { defaultRoots, type TrustRoots } from './roots.ts';
import { VEK_OID } from './snp/vek.ts';
import { type SnpCertificates, verifySnpReport } from './snp/verify.ts';
import { type Certificate, isSelfIssued, parseCertificate } from './x509.ts';

/** SEV-SNP evidence: the raw report and the certificates that came with it (DER, in any order). */
export interface SnpEvidence {
  kind: 'sev-snp';
  report: Uint8Array;
  /** VCEK or VLEK, and optionally the ASK/ASVK and ARK. */
  certs: readonly Uint8Array[];
  /** AMD KDS CRLs (DER) to check the chain against; see `SnpVerifyOptions.crls`. */
  crls?: readonly Uint8Array[];
}

/** Intel DCAP evidence: a raw SGX (v3) or TDX (v4/v5) quote and, optionally, its collateral. */
export interface DcapEvidence {
  /** Must be the quote's own kind (see `detectEvidenceKind`). */
  kind: 'sgx' | 'tdx';
  quote: Uint8Array;
  /** Without collateral, revocation and TCB status are not checked (`collateralChecked` false). */
  collateral?: DcapCollateral;
}

/** Evidence of any kind this verifier appraises. */
export type Evidence = SnpEvidence | DcapEvidence;

/** A TCB in claims: plain numbers, `fmc` on Turin and later. */
export interface ClaimsTcb {
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  fmc?: number;
}

/** What verified SEV-SNP evidence says, in plain serialisable values (hex strings, numbers). */
export interface SnpClaims {
  kind: 'sev-snp';
  /** Report version (2 to 5). */
  version: number;
  measurement: string;
  reportData: string;
  debug: boolean;
  /** True when the chain ends in a simulated root: the evidence proves no hardware isolation. */
  simulated: boolean;
  /** SHA-256 of the ARK, lower-case hex. */
  rootFingerprint: string;
  /** `Milan`, `Genoa`, `Turin` or `Simulated`. */
  product: string;
  /** REPORTED_TCB: the TCB the VCEK/VLEK vouches for. */
  tcb: ClaimsTcb;
  chipId: string;
  /** Guest POLICY as 0x-prefixed hex. */
  policy: string;
  vmpl: number;
  hostData: string;
  guestSvn: number;
  signingKey: 'vcek' | 'vlek';
  familyId: string;
  imageId: string;
  idKeyDigest: string;
  authorKeyDigest: string;
  /** Firmware version "major.minor.build" running now and committed (the anti-rollback floor). */
  currentVersion: string;
  committedVersion: string;
  /** True when a CRL of the ARK was given and checked. */
  collateralChecked: boolean;
}

/** What verified DCAP evidence says in common for SGX and TDX. */
interface DcapClaimsCommon {
  /** Quote version (3, 4 or 5). */
  version: number;
  /** MRENCLAVE (SGX) or MRTD (TDX), lower-case hex. */
  measurement: string;
  reportData: string;
  /** SGX ATTRIBUTES.DEBUG or TD_ATTRIBUTES.DEBUG. */
  debug: boolean;
  /** The TCB status Intel's collateral gives; absent when no collateral was checked. */
  tcbStatus?: TcbStatus;
  /** The Intel security advisories behind `tcbStatus`; absent when no collateral was checked. */
  advisoryIds?: string[];
  /** The platform's FMSPC (from the PCK certificate), lower-case hex. */
  fmspc: string;
  /** False when no collateral was given: TCB status and revocation were not checked. */
  collateralChecked: boolean;
  /** SHA-256 of the Intel SGX Root CA the PCK chain ends in, lower-case hex. */
  rootFingerprint: string;
  /** True when the chain ends in a simulated Intel root: the quote proves no hardware isolation. */
  simulated: boolean;
}

/** What a verified SGX quote says, in plain serialisable values. */
export interface SgxClaims extends DcapClaimsCommon {
  kind: 'sgx';
  mrSigner: string;
  isvProdId: number;
  isvSvn: number;
  /** The 16 ATTRIBUTES bytes (FLAGS then XFRM), hex. */
  attributes: string;
  miscSelect: number;
  configSvn: number;
  configId: string;
  cpuSvn: string;
}

/** What a verified TDX quote says, in plain serialisable values. */
export interface TdxClaims extends DcapClaimsCommon {
  kind: 'tdx';
  /** The TD report layout: "1.0" or "1.5". */
  tdxVersion: string;
  rtmr0: string;
  rtmr1: string;
  rtmr2: string;
  rtmr3: string;
  mrSeam: string;
  mrSignerSeam: string;
  seamAttributes: string;
  tdAttributes: string;
  xfam: string;
  teeTcbSvn: string;
  mrConfigId: string;
  mrOwner: string;
  mrOwnerConfig: string;
  /** TDX 1.5 only. */
  teeTcbSvn2?: string;
  /** TDX 1.5 only. */
  mrServiceTd?: string;
}

/** Claims of a verified DCAP quote, discriminated by `kind`. */
export type DcapClaims = SgxClaims | TdxClaims;

/** Claims of any evidence kind, discriminated by `kind`. */
export type Claims = SnpClaims | DcapClaims;

/** Inputs besides evidence and policy. */
export interface VerifyOptions {
  /** The time at which certificates and collateral must be valid. */
  now: Date;
  /** Trust anchors; default {@link defaultRoots}. The policy's `trustSimulatedRoots` are added either way. */
  roots?: TrustRoots;
}

function malformed(state: string, cause?: unknown): never {
  throw new AttestationError(
    'ERR_EVIDENCE_MALFORMED',
    `Cannot verify evidence: ${state}`,
    cause === undefined ? undefined : { cause },
  );
}

/** Sorts the certificates that came with a report into VCEK/VLEK, ASK/ASVK and ARK. */
function sortCertificates(ders: readonly Uint8Array[]): SnpCertificates {
  if (!Array.isArray(ders)) malformed('certs must be a list of DER certificates');
  const seen = new Set<string>();
  const veks: Certificate[] = [];
  const asks: Certificate[] = [];
  const arks: Certificate[] = [];
  for (const [i, der] of ders.entries()) {
    if (!(der instanceof Uint8Array)) malformed(`certs[${i}] is not bytes`);
    let cert: Certificate;
    try {
      cert = parseCertificate(der);
    } catch (cause) {
      return malformed(`certs[${i}] is not a certificate`, cause);
    }
    if (seen.has(cert.fingerprint)) continue;
    seen.add(cert.fingerprint);
    if (cert.extensions.has(VEK_OID.blSpl)) veks.push(cert);
    else if (isSelfIssued(cert)) arks.push(cert);
    else asks.push(cert);
  }
  const one = (list: Certificate[], role: string): Certificate | undefined => {
    if (list.length > 1) {
      throw new AttestationError(
        'ERR_CHAIN_INVALID',
        `Cannot verify evidence: it carries ${list.length} ${role} certificates`,
      );
    }
    return list[0];
  };
  const vek = one(veks, 'VCEK/VLEK');
  if (vek === undefined)
    throw new AttestationError('ERR_CHAIN_INVALID', 'Cannot verify evidence: it carries no VCEK or VLEK');
  const ask = one(asks, 'ASK/ASVK');
  const ark = one(arks, 'ARK');
  const certs: SnpCertificates = { vek: vek.der };
  if (ask !== undefined) certs.ask = ask.der;
  if (ark !== undefined) certs.ark = ark.der;
  return certs;
}

function dcapClaims(v: DcapVerified): DcapClaims {
  const q = v.quote;
  const common: DcapClaimsCommon = {
    version: q.version,
    measurement: toHex(q.kind === 'sgx' ? q.body.mrEnclave : q.body.mrTd),
    reportData: toHex(q.body.reportData),
    debug: q.body.debug,
    fmspc: toHex(v.pck.fmspc),
    collateralChecked: v.collateralChecked,
    rootFingerprint: v.rootFingerprint,
    simulated: v.simulated,
  };
  if (v.tcb !== undefined) {
    common.tcbStatus = v.tcb.status;
    common.advisoryIds = [...v.tcb.advisoryIds];
  }
  if (q.kind === 'sgx') {
    const b = q.body;
    return {
      kind: 'sgx',
      ...common,
      mrSigner: toHex(b.mrSigner),
      isvProdId: b.isvProdId,
      isvSvn: b.isvSvn,
      attributes: toHex(b.attributes),
      miscSelect: b.miscSelect,
      configSvn: b.configSvn,
      configId: toHex(b.configId),
      cpuSvn: toHex(b.cpuSvn),
    };
  }
  const b = q.body;
  const claims: TdxClaims = {
    kind: 'tdx',
    ...common,
    tdxVersion: q.tdxVersion,
    rtmr0: toHex(b.rtmrs[0]),
    rtmr1: toHex(b.rtmrs[1]),
    rtmr2: toHex(b.rtmrs[2]),
    rtmr3: toHex(b.rtmrs[3]),
    mrSeam: toHex(b.mrSeam),
    mrSignerSeam: toHex(b.mrSignerSeam),
    seamAttributes: toHex(b.seamAttributes),
    tdAttributes: toHex(b.tdAttributes),
    xfam: toHex(b.xfam),
    teeTcbSvn: toHex(b.teeTcbSvn),
    mrConfigId: toHex(b.mrConfigId),
    mrOwner: toHex(b.mrOwner),
    mrOwnerConfig: toHex(b.mrOwnerConfig),
  };
  if (b.teeTcbSvn2 !== undefined) claims.teeTcbSvn2 = toHex(b.teeTcbSvn2);
  if (b.mrServiceTd !== undefined) claims.mrServiceTd = toHex(b.mrServiceTd);
  return claims;
}

function verifyDcap(evidence: DcapEvidence, policy: Policy, now: Date, roots: TrustRoots): DcapClaims {
  if (!(evidence.quote instanceof Uint8Array)) malformed('the quote is not bytes');
  const options =
    evidence.collateral === undefined ? { now, roots } : { now, roots, collateral: evidence.collateral };
  const verified = verifyDcapQuote(evidence.quote, options);
  if (verified.quote.kind !== evidence.kind) {
    malformed(
      `it is labelled ${evidence.kind} but the quote is ${verified.quote.kind === 'sgx' ? 'an SGX' : 'a TDX'} quote`,
    );
  }
  checkDcapPolicy(verified, policy);
  return dcapClaims(verified);
}

/**
 * Verifies evidence and appraises it under `policy`: the signature chains to a pinned root (AMD's or
 * Intel's, or a simulated root the policy opts into by fingerprint), every certificate and piece of
 * collateral is valid at `options.now`, and every field the policy names holds. Returns the claims;
 * throws {@link AttestationError} otherwise.
 *
 * @example
 * const claims = verify({ kind: 'sev-snp', report, certs: [vcek] }, parsePolicy(json), { now: new Date() });
 * const tdx = verify({ kind: 'tdx', quote, collateral }, parsePolicy({ mrTds: [mrtd] }), { now: new Date() });
 */
export function verify(evidence: Evidence, policy: Policy, options: VerifyOptions): Claims {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('Cannot verify: options are required');
  const parsedPolicy = parsePolicy(policy);
  if (typeof evidence !== 'object' || evidence === null) malformed('evidence must be an object');
  const kind: unknown = evidence.kind;
  if (kind !== 'sev-snp' && kind !== 'sgx' && kind !== 'tdx') {
    throw new AttestationError(
      'ERR_EVIDENCE_UNSUPPORTED',
      `Cannot verify evidence: kind ${typeof kind === 'string' ? kind : typeof kind} is not supported (sev-snp, sgx and tdx are)`,
    );
  }
  const base = options.roots ?? defaultRoots;
  const roots: TrustRoots = {
    amdArks: base.amdArks,
    simulatedArkFingerprints: [...base.simulatedArkFingerprints, ...(parsedPolicy.trustSimulatedRoots ?? [])],
    intelRoots: base.intelRoots ?? [],
  };
  if (evidence.kind !== 'sev-snp') return verifyDcap(evidence, parsedPolicy, options.now, roots);
  if (!(evidence.report instanceof Uint8Array)) malformed('the report is not bytes');
  const verified = verifySnpReport(evidence.report, sortCertificates(evidence.certs), {
    now: options.now,
    roots,
    ...(evidence.crls === undefined ? {} : { crls: evidence.crls }),
  });
  checkSnpPolicy(verified, parsedPolicy);

  const r = verified.report;
  const tcb: ClaimsTcb = {
    bootloader: r.reportedTcb.bootloader,
    tee: r.reportedTcb.tee,
    snp: r.reportedTcb.snp,
    microcode: r.reportedTcb.microcode,
  };
  if (r.reportedTcb.fmc !== undefined) tcb.fmc = r.reportedTcb.fmc;
  return {
    kind: 'sev-snp',
    version: r.version,
    measurement: toHex(r.measurement),
    reportData: toHex(r.reportData),
    debug: r.debug,
    simulated: verified.simulated,
    rootFingerprint: verified.rootFingerprint,
    product: verified.product,
    tcb,
    chipId: toHex(r.chipId),
    policy: `0x${r.policy.toString(16)}`,
    vmpl: r.vmpl,
    hostData: toHex(r.hostData),
    guestSvn: r.guestSvn,
    signingKey: r.signingKey === 'vlek' ? 'vlek' : 'vcek',
    familyId: toHex(r.familyId),
    imageId: toHex(r.imageId),
    idKeyDigest: toHex(r.idKeyDigest),
    authorKeyDigest: toHex(r.authorKeyDigest),
    currentVersion: r.currentVersion,
    committedVersion: r.committedVersion,
    collateralChecked: verified.crlChecked,
  };
}
