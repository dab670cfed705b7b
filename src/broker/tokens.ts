// Attestation tokens: short-lived EAR-style JWTs (draft-ietf-rats-ear) that the broker signs with its own
// identity key (ES384) after appraising a Keep's evidence. Each is bound to the Keep's key by `cnf.jwk`
// (RFC 7800; also KBS's `tee-pubkey` claim) and checked whole on every use: signature, issuer, expiry, shape.
// jose does every JOSE step; nothing here assembles a JWS by hand.
import { createPublicKey, type KeyObject, randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, jwtVerify, SignJWT } from 'jose';
import { readTeePubkey, type TeePubkey } from './binding.ts';
import { BrokerError } from './errors.ts';
import type { KeepClaims } from './policy.ts';

/** The EAR profile the tokens follow. */
export const EAR_PROFILE = 'tag:github.com,2023:veraison/ear';
/** The submodule of the EAR that describes the Keep. */
export const EAR_SUBMOD = 'donjon-keep';

/** What issuing a token takes. */
export interface IssueTokenOptions {
  /** The broker's identity key (P-384). */
  privateKey: KeyObject;
  /** `iss`: the broker, named by its certificate fingerprint. */
  issuer: string;
  claims: KeepClaims;
  teePubkey: TeePubkey;
  now: Date;
  ttlSeconds: number;
  /** `ear.verifier-id.build`. */
  build: string;
}

/** A token that verified: what it says, and the key it is bound to. */
export interface VerifiedToken {
  claims: KeepClaims;
  teePubkey: TeePubkey;
  /** The Keep's key, as a KeyObject: what a released secret is encrypted to. */
  key: KeyObject;
  /** RFC 7638 thumbprint of the bound key. */
  thumbprint: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
}

/** The issuer name of a broker: its certificate fingerprint, as a URN. */
export function issuerOf(fingerprint: string): string {
  return `urn:donjon:broker:${fingerprint}`;
}

/** Signs an attestation token for a Keep whose evidence was appraised. */
export async function issueToken(o: IssueTokenOptions): Promise<string> {
  const iat = Math.floor(o.now.getTime() / 1000);
  const brokerJwk = await exportJWK(createPublicKey(o.privateKey));
  return new SignJWT({
    eat_profile: EAR_PROFILE,
    'ear.verifier-id': { developer: 'donjon', build: o.build },
    submods: {
      [EAR_SUBMOD]: { 'ear.status': 'affirming', 'ear.veraison.annotated-evidence': { ...o.claims } },
    },
    cnf: { jwk: o.teePubkey },
    'tee-pubkey': o.teePubkey,
    jwk: brokerJwk,
  })
    .setProtectedHeader({ alg: 'ES384', typ: 'JWT' })
    .setIssuer(o.issuer)
    .setIssuedAt(iat)
    .setExpirationTime(iat + o.ttlSeconds)
    .setJti(randomBytes(16).toString('base64url'))
    .sign(o.privateKey);
}

function invalid(why: string, cause?: unknown): BrokerError {
  return new BrokerError('ERR_BROKER_TOKEN_INVALID', `Cannot accept the attestation token: ${why}`, {
    cause,
  });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readClaims(v: unknown): KeepClaims {
  if (!isRecord(v)) throw invalid('it carries no Keep claims');
  const s = (k: string): string => {
    if (typeof v[k] !== 'string') throw invalid(`claim ${k} is missing`);
    return v[k] as string;
  };
  const b = (k: string): boolean => {
    if (typeof v[k] !== 'boolean') throw invalid(`claim ${k} is missing`);
    return v[k] as boolean;
  };
  const kind = s('kind');
  if (kind !== 'sev-snp' && kind !== 'tdx')
    throw invalid(`evidence kind ${kind} is not one the broker issues`);
  const c: KeepClaims = {
    kind,
    measurement: s('measurement'),
    simulated: b('simulated'),
    rootFingerprint: s('rootFingerprint'),
    debug: b('debug'),
    workload: s('workload'),
    config: s('config'),
  };
  if (v['tcb'] !== undefined) {
    const t = v['tcb'];
    if (!isRecord(t)) throw invalid('claim tcb is not a map');
    const n = (k: string): number => {
      if (typeof t[k] !== 'number') throw invalid(`claim tcb.${k} is missing`);
      return t[k] as number;
    };
    c.tcb = { bootloader: n('bootloader'), tee: n('tee'), snp: n('snp'), microcode: n('microcode') };
    if (t['fmc'] !== undefined) c.tcb.fmc = n('fmc');
  }
  return c;
}

/**
 * Verifies a token this broker issued, at `now`: ES384 under the broker's key, issuer, `typ`, expiry, and the
 * EAR shape with an affirming status and a bound key. Throws ERR_BROKER_TOKEN_INVALID.
 */
export async function verifyToken(
  token: string,
  o: { publicKey: KeyObject; issuer: string; now: Date },
): Promise<VerifiedToken> {
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, o.publicKey, {
      algorithms: ['ES384'],
      issuer: o.issuer,
      typ: 'JWT',
      currentDate: o.now,
      requiredClaims: ['exp', 'iat', 'jti', 'cnf', 'submods'],
    }));
  } catch (cause) {
    throw invalid((cause as Error).message, cause);
  }
  if (payload['eat_profile'] !== EAR_PROFILE) throw invalid('it is not an EAR of the expected profile');
  const submods = payload['submods'];
  const keep = isRecord(submods) ? submods[EAR_SUBMOD] : undefined;
  if (!isRecord(keep) || keep['ear.status'] !== 'affirming') throw invalid('its status is not affirming');
  const claims = readClaims(keep['ear.veraison.annotated-evidence']);
  const cnf = payload['cnf'];
  if (!isRecord(cnf)) throw invalid('it is bound to no key');
  let bound: ReturnType<typeof readTeePubkey>;
  try {
    bound = readTeePubkey(cnf['jwk']);
  } catch (cause) {
    throw invalid('its cnf.jwk is not a key the broker encrypts to', cause);
  }
  return {
    claims,
    teePubkey: bound.jwk,
    key: bound.key,
    thumbprint: await calculateJwkThumbprint(bound.jwk, 'sha256'),
    exp: payload['exp'] as number,
  };
}
