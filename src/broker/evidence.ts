// Evidence as it travels in a KBS `Attestation` (`tee-evidence.primary_evidence`), for the kinds Donjon
// appraises. The KBS protocol leaves the format of evidence to the attestation service; these are ours:
//   tee "snp": { "report": b64url(SNP report), "certs": [b64url(DER), …] }  (VCEK/VLEK, ASK, ARK)
//   tee "tdx": { "quote": b64url(DCAP quote), "collateral"?: b64url(CBOR DCAP collateral) }
// A `nil` Keep has no evidence and is never released anything; `sample`, `sgx` and others are refused.
import type { Claims, Evidence } from '../attestation/index.ts';
import { type CarriedEvidence, decodeDcapCollateral } from '../ratls/index.ts';
import { fromBase64url } from './binding.ts';
import { BrokerError } from './errors.ts';
import type { KeepClaims } from './policy.ts';

/** The KBS `tee` values the broker takes, with the evidence kind each names. */
export const TEES = { snp: 'sev-snp', tdx: 'tdx' } as const;

/** A KBS `tee` the broker appraises. */
export type Tee = keyof typeof TEES;

/** Whether a KBS `tee` is one the broker appraises. */
export function isTee(tee: unknown): tee is Tee {
  return tee === 'snp' || tee === 'tdx';
}

function bad(why: string): never {
  throw new BrokerError('ERR_BROKER_REQUEST_INVALID', `Cannot read the evidence: ${why}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function bytes(v: unknown, what: string, max: number): Uint8Array {
  const b = fromBase64url(v);
  if (b === undefined) bad(`${what} is not unpadded base64url`);
  if (b.length === 0 || b.length > max) bad(`${what} has ${b.length} bytes`);
  return b;
}

/** Decodes `primary_evidence` for a session's `tee` into the verifier's input. */
export function decodeEvidence(tee: Tee, primary: unknown): Evidence {
  if (!isRecord(primary)) bad('primary_evidence is not an object');
  if (tee === 'snp') {
    for (const k of Object.keys(primary))
      if (k !== 'report' && k !== 'certs') bad(`member ${k} is not allowed`);
    const certs = primary['certs'];
    if (!Array.isArray(certs) || certs.length > 8) bad('certs is not a list of at most 8 certificates');
    return {
      kind: 'sev-snp',
      report: bytes(primary['report'], 'report', 8192),
      certs: certs.map((c, i) => bytes(c, `certs[${i}]`, 16384)),
    };
  }
  for (const k of Object.keys(primary))
    if (k !== 'quote' && k !== 'collateral') bad(`member ${k} is not allowed`);
  const evidence: Evidence = { kind: 'tdx', quote: bytes(primary['quote'], 'quote', 65536) };
  if (primary['collateral'] !== undefined) {
    evidence.collateral = decodeDcapCollateral(bytes(primary['collateral'], 'collateral', 1 << 20));
  }
  return evidence;
}

/** The `tee` and `primary_evidence` of a Keep's evidence, as the Keep sends them. */
export function encodeEvidence(e: CarriedEvidence): { tee: Tee; primary: Record<string, unknown> } {
  const b64 = (x: Uint8Array) => Buffer.from(x).toString('base64url');
  if (e.kind === 'sev-snp')
    return { tee: 'snp', primary: { report: b64(e.report), certs: e.certs.map(b64) } };
  return {
    tee: 'tdx',
    primary: {
      quote: b64(e.report),
      ...(e.collateral === undefined ? {} : { collateral: b64(e.collateral) }),
    },
  };
}

/** The claims the policy sees, from what `verify` returned and what the evidence bound. */
export function keepClaimsOf(c: Claims, workload: string, config: string): KeepClaims {
  if (c.kind === 'sev-snp') {
    return {
      kind: 'sev-snp',
      measurement: c.measurement,
      simulated: c.simulated,
      rootFingerprint: c.rootFingerprint,
      debug: c.debug,
      tcb: { ...c.tcb },
      workload,
      config,
    };
  }
  if (c.kind !== 'tdx')
    throw new BrokerError('ERR_BROKER_TEE_UNSUPPORTED', `Cannot appraise ${c.kind} evidence`);
  return {
    kind: 'tdx',
    measurement: c.measurement,
    simulated: false,
    rootFingerprint: c.rootFingerprint,
    debug: c.debug,
    workload,
    config,
  };
}
