// The one entry point of evidence appraisal: evidence + policy + time (+ roots) -> claims, or an
// AttestationError. Pure: no clock, no network, no filesystem.
import { toHex } from './bytes.ts';
import { AttestationError } from './errors.ts';
import { checkSnpPolicy, type Policy, parsePolicy } from './policy.ts';
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
}

/** Evidence of any kind this verifier appraises. Intel DCAP (`sgx`, `tdx`) will join this union. */
export type Evidence = SnpEvidence;

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
}

/** Claims of any evidence kind, discriminated by `kind`. */
export type Claims = SnpClaims;

/** Inputs besides evidence and policy. */
export interface VerifyOptions {
  /** The time at which certificates (and later, collateral) must be valid. */
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

/**
 * Verifies evidence and appraises it under `policy`: the signature chains to a pinned root (AMD's, or a
 * simulated root the policy opts into by fingerprint), every certificate is valid at `options.now`, and
 * every field the policy names holds. Returns the claims; throws {@link AttestationError} otherwise.
 *
 * @example
 * const claims = verify({ kind: 'sev-snp', report, certs: [vcek] }, parsePolicy(json), { now: new Date() });
 */
export function verify(evidence: Evidence, policy: Policy, options: VerifyOptions): Claims {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('Cannot verify: options are required');
  const parsedPolicy = parsePolicy(policy);
  if (typeof evidence !== 'object' || evidence === null) malformed('evidence must be an object');
  const kind: unknown = evidence.kind;
  if (kind !== 'sev-snp') {
    throw new AttestationError(
      'ERR_EVIDENCE_UNSUPPORTED',
      `Cannot verify evidence: kind ${typeof kind === 'string' ? kind : typeof kind} is not supported (sev-snp is)`,
    );
  }
  if (!(evidence.report instanceof Uint8Array)) malformed('the report is not bytes');
  const base = options.roots ?? defaultRoots;
  const roots: TrustRoots = {
    amdArks: base.amdArks,
    simulatedArkFingerprints: [...base.simulatedArkFingerprints, ...(parsedPolicy.trustSimulatedRoots ?? [])],
  };
  const verified = verifySnpReport(evidence.report, sortCertificates(evidence.certs), {
    now: options.now,
    roots,
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
  };
}
