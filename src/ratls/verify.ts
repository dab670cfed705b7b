import { timingSafeEqual } from 'node:crypto';
import type { Claims, Policy, TrustRoots } from '../attestation/index.ts';
import { verify as verifyEvidence } from '../attestation/index.ts';
import { readKeepCertificate, reportDataFor } from './certificate.ts';
import {
  BINDING_DOMAIN,
  type CarriedEvidence,
  decodeDcapCollateral,
  isServiceBinding,
  SERVICE_BINDING_DOMAIN,
} from './cmw.ts';
import { RatlsError } from './errors.ts';

export interface KeepExpectations {
  /** The nonce this client sent in CreateKeep; evidence made for any other nonce is a replay. */
  nonce: Uint8Array;
  /** The policy the evidence must satisfy; its reportData is set here, from the certificate's key and the nonce. */
  policy: Policy;
  now: Date;
  roots?: TrustRoots;
  /** Accept a Keep without evidence (`nil`). Only with the user's explicit `--insecure`. */
  insecure?: boolean;
}

/** The outcome of checking a Keep certificate: `claims` is null only for an accepted insecure `nil` Keep. */
export interface KeepIdentity {
  spki: Uint8Array;
  claims: Claims | null;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Verifies the evidence a Keep's certificate carries, bound to `reportData`, under the caller's policy. A
 * DCAP quote must come with checked collateral (TCB status, revocation) unless the policy says otherwise:
 * without it nothing says the platform is not out of date or revoked. The collateral the host put beside the
 * quote is Intel-signed, so the client checks it as if it had fetched it itself.
 */
function appraise(
  evidence: CarriedEvidence,
  reportData: Uint8Array,
  expect: { policy: Policy; now: Date; roots?: TrustRoots },
): Claims {
  const options = expect.roots ? { now: expect.now, roots: expect.roots } : { now: expect.now };
  if (evidence.kind === 'tdx' || evidence.kind === 'sgx') {
    const policy: Policy = { requireCollateral: true, ...expect.policy, reportData };
    const collateral =
      evidence.collateral === undefined ? undefined : decodeDcapCollateral(evidence.collateral);
    return verifyEvidence(
      { kind: evidence.kind, quote: evidence.report, ...(collateral === undefined ? {} : { collateral }) },
      policy,
      options,
    );
  }
  return verifyEvidence(
    { kind: evidence.kind, report: evidence.report, certs: evidence.certs },
    { ...expect.policy, reportData },
    options,
  );
}

/**
 * Decides whether the TLS server behind a certificate is a genuine Keep made for this client: the certificate
 * is self-signed by the key whose SPKI, with this client's nonce, is hashed into the evidence's report_data,
 * and the evidence verifies under the policy. Throws RatlsError or AttestationError; returns only on success.
 */
export function verifyKeepCertificate(der: Uint8Array, expect: KeepExpectations): KeepIdentity {
  const cert = readKeepCertificate(der);
  const t = expect.now.getTime();
  if (t < cert.notBefore.getTime() || t > cert.notAfter.getTime()) {
    throw new RatlsError(
      'ERR_KEEP_CERT_EXPIRED',
      'Cannot trust the Keep certificate: it is not valid at this time',
    );
  }
  if (!cert.cmw) {
    if (expect.insecure) return { spki: cert.spki, claims: null };
    throw new RatlsError(
      'ERR_KEEP_NOT_ATTESTED',
      'Cannot trust the Keep: it presents no attestation evidence (a nil Keep); pass --insecure to accept an unattested Keep',
    );
  }
  const { binding, evidence } = cert.cmw;
  if (isServiceBinding(binding) || binding.domain !== BINDING_DOMAIN || !sameBytes(binding.spki, cert.spki)) {
    throw new RatlsError(
      'ERR_KEEP_BINDING_MISMATCH',
      "Cannot trust the Keep: its evidence is bound to another key than the certificate's",
    );
  }
  if (!sameBytes(binding.nonce, expect.nonce)) {
    throw new RatlsError(
      'ERR_KEEP_NONCE_MISMATCH',
      'Cannot trust the Keep: its evidence was made for another nonce (a replayed or swapped Keep)',
    );
  }
  const reportData = reportDataFor({ domain: BINDING_DOMAIN, spki: cert.spki, nonce: expect.nonce });
  const claims = appraise(evidence, reportData, expect);
  return { spki: cert.spki, claims };
}

/** What a relying party requires of a service's certificate. */
export interface ServiceExpectations {
  /**
   * The policy the evidence must satisfy (measurement, TCB, simulated roots, ...); its reportData is set here,
   * from the certificate's key and the digests it names.
   */
  policy: Policy;
  now: Date;
  roots?: TrustRoots;
  /** Allowed SHA-256 digests of the Wasm module (hex); absent: any workload. */
  workloadDigests?: readonly string[];
  /** Allowed SHA-256 digests of the workload's configuration (hex); absent: any configuration. */
  configDigests?: readonly string[];
  /**
   * Allowed signers (hex SHA-256 of a verifying key's DER SubjectPublicKeyInfo, as `signerDigest()` computes it):
   * the service must run a registry artifact whose signature by one of them verified in the Keep. Absent: any
   * workload, signed or not. Combines with the digests: every list given must hold.
   */
  signerKeys?: readonly string[];
  /** Accept a service without evidence (a `nil` Keep), and so without a proven workload. */
  insecure?: boolean;
}

/** What a service's certificate proved: `claims` and the digests are null only for an accepted insecure one. */
export interface ServiceIdentity {
  spki: Uint8Array;
  claims: Claims | null;
  /** SHA-256 of the Wasm module the Keep runs (hex). */
  workloadDigest: string | null;
  /** SHA-256 of its configuration (hex). */
  configDigest: string | null;
  /** The registry manifest digest (`sha256:…`) it was deployed from, when its evidence names one. */
  artifactDigest?: string;
  /**
   * Who signed that artifact, when its evidence names signers: hex SHA-256 of the SPKI of each key whose
   * signature verified in the Keep, sorted.
   */
  signers?: string[];
}

function hexDigests(list: readonly string[] | undefined, what: string, hint = ''): Set<string> | undefined {
  if (list === undefined) return undefined;
  const out = new Set<string>();
  for (const d of list) {
    const hex = typeof d === 'string' ? d.toLowerCase() : '';
    if (!/^[0-9a-f]{64}$/.test(hex))
      throw new TypeError(`Cannot check the ${what}: ${String(d)} is not 64 hex digits${hint}`);
    out.add(hex);
  }
  return out;
}

/**
 * Decides whether the TLS server behind a certificate is a genuine Keep serving the expected workload: the
 * certificate is self-signed by the key whose SPKI, with the workload's and the configuration's digests, is
 * hashed into the evidence's report_data; the evidence verifies under the policy; the digests are allowed
 * ones. Throws RatlsError or AttestationError; returns only on success.
 *
 * A service's evidence carries no client nonce: it is made once per Keep (and renewed before the certificate
 * expires). What makes a replayed certificate useless is the TLS handshake itself, which proves the server
 * holds the private key the evidence binds.
 */
export function verifyServiceCertificate(der: Uint8Array, expect: ServiceExpectations): ServiceIdentity {
  const workloads = hexDigests(expect.workloadDigests, 'workload digest');
  const configs = hexDigests(expect.configDigests, 'config digest');
  const signerKeys = hexDigests(
    expect.signerKeys,
    'signer key digest',
    ' (signerDigest() makes one from a PEM public key)',
  );
  const cert = readKeepCertificate(der);
  const t = expect.now.getTime();
  if (t < cert.notBefore.getTime() || t > cert.notAfter.getTime()) {
    throw new RatlsError(
      'ERR_KEEP_CERT_EXPIRED',
      'Cannot trust the service certificate: it is not valid at this time',
    );
  }
  if (!cert.cmw) {
    // A policy naming a workload cannot be met by a certificate that proves none.
    if (expect.insecure && workloads === undefined && configs === undefined && signerKeys === undefined) {
      return { spki: cert.spki, claims: null, workloadDigest: null, configDigest: null };
    }
    throw new RatlsError(
      'ERR_KEEP_NOT_ATTESTED',
      expect.insecure
        ? 'Cannot trust the service: it presents no attestation evidence, so nothing proves which workload it runs'
        : 'Cannot trust the service: it presents no attestation evidence (a nil Keep); pass --insecure to accept an unattested service',
    );
  }
  const { binding, evidence } = cert.cmw;
  if (
    !isServiceBinding(binding) ||
    binding.domain !== SERVICE_BINDING_DOMAIN ||
    !sameBytes(binding.spki, cert.spki)
  ) {
    throw new RatlsError(
      'ERR_KEEP_BINDING_MISMATCH',
      "Cannot trust the service: its evidence is not a service's evidence for the certificate's key",
    );
  }
  const reportData = reportDataFor({
    domain: SERVICE_BINDING_DOMAIN,
    spki: cert.spki,
    workload: binding.workload,
    config: binding.config,
    ...(binding.artifact === undefined ? {} : { artifact: binding.artifact }),
    ...(binding.signers === undefined ? {} : { signers: binding.signers }),
  });
  const claims = appraise(evidence, reportData, expect);
  const workloadDigest = Buffer.from(binding.workload).toString('hex');
  const configDigest = Buffer.from(binding.config).toString('hex');
  if (workloads !== undefined && !workloads.has(workloadDigest)) {
    throw new RatlsError(
      'ERR_SERVICE_WORKLOAD_MISMATCH',
      `Cannot trust the service: it runs workload ${workloadDigest}, not ${[...workloads].join(' or ')}`,
    );
  }
  if (configs !== undefined && !configs.has(configDigest)) {
    throw new RatlsError(
      'ERR_SERVICE_CONFIG_MISMATCH',
      `Cannot trust the service: its configuration is ${configDigest}, not ${[...configs].join(' or ')}`,
    );
  }
  const signers = binding.signers?.map((s) => Buffer.from(s).toString('hex'));
  if (signerKeys !== undefined && !signers?.some((s) => signerKeys.has(s))) {
    throw new RatlsError(
      'ERR_SERVICE_SIGNER_MISMATCH',
      signers === undefined
        ? `Cannot trust the service: nothing proves who signed its workload (it was not deployed from a signed registry artifact), and the policy requires a signer among ${[...signerKeys].join(', ')}`
        : `Cannot trust the service: its workload is signed by ${signers.join(', ')}, not by ${[...signerKeys].join(' or ')}`,
    );
  }
  const identity: ServiceIdentity = { spki: cert.spki, claims, workloadDigest, configDigest };
  if (binding.artifact !== undefined)
    identity.artifactDigest = `sha256:${Buffer.from(binding.artifact).toString('hex')}`;
  if (signers !== undefined) identity.signers = signers;
  return identity;
}
