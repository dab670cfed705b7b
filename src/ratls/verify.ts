import { timingSafeEqual } from 'node:crypto';
import type { Claims, Policy, TrustRoots } from '../attestation/index.ts';
import { verify as verifyEvidence } from '../attestation/index.ts';
import { readKeepCertificate, reportDataFor } from './certificate.ts';
import { BINDING_DOMAIN } from './cmw.ts';
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
  if (binding.domain !== BINDING_DOMAIN || !sameBytes(binding.spki, cert.spki)) {
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
  const options = expect.roots ? { now: expect.now, roots: expect.roots } : { now: expect.now };
  const claims = verifyEvidence(
    evidence.kind === 'tdx'
      ? { kind: 'tdx', quote: evidence.report }
      : { kind: evidence.kind, report: evidence.report, certs: evidence.certs },
    { ...expect.policy, reportData },
    options,
  );
  return { spki: cert.spki, claims };
}
