// X.509 certificate revocation lists (RFC 5280 section 5), read as strictly as certificates: v2 only, a
// nextUpdate required (a CRL without one never goes stale), unknown critical extensions refused, no
// duplicate entries. AMD's KDS publishes one per product, signed by the ARK with RSA-PSS; Intel publishes
// the Root CA CRL and the PCK Platform/Processor CA CRLs, signed with ECDSA P-256.
// Internal: not re-exported from index.ts.
import { TAG } from '../lib/der.ts';
import { reasonOf } from '../lib/errors.ts';
import { equalBytes, sha256Hex } from './bytes.ts';
import { children, type DerNode, readBigInt, readBitStringBytes, readOne, readTime } from './der.ts';
import { AttestationError } from './errors.ts';
import {
  type Certificate,
  checkSignedBy,
  isCa,
  nameText,
  OID,
  parseName,
  readExtensions,
  type SignatureProfile,
  type X509Extension,
  type X509Name,
} from './x509.ts';

/** A parsed CRL. Byte fields are views into `der`, which the parser copied. */
export interface Crl {
  readonly der: Uint8Array;
  /** SHA-256 of `der`, lower-case hex. */
  readonly fingerprint: string;
  readonly tbs: Uint8Array;
  readonly issuer: X509Name;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  /** Serial numbers of the revoked certificates (of this issuer). */
  readonly revoked: ReadonlySet<bigint>;
  readonly extensions: ReadonlyMap<string, X509Extension>;
  readonly signatureAlgorithm: Uint8Array;
  readonly signatureValue: Uint8Array;
}

/** CRL extensions whose meaning is known; a critical one outside this set makes the CRL unusable. */
const UNDERSTOOD_CRL_CRITICAL = new Set<string>();
/** Entry extensions that only inform (reason, date); any critical entry extension is refused. */
const UNDERSTOOD_ENTRY = new Set<string>([OID.crlReason, OID.invalidityDate]);

function invalid(role: string, state: string, cause?: unknown): never {
  throw new AttestationError(
    'ERR_COLLATERAL_INVALID',
    `Cannot parse ${role}: ${state}`,
    cause === undefined ? undefined : { cause },
  );
}

function checkCritical(extensions: ReadonlyMap<string, X509Extension>, allowed: Set<string>, role: string) {
  for (const [id, ext] of extensions) {
    if (ext.critical && !allowed.has(id)) invalid(role, `it has the unknown critical extension ${id}`);
  }
}

function readEntries(node: DerNode, role: string): Set<bigint> {
  const revoked = new Set<bigint>();
  const list = children(node);
  // RFC 5280 5.1.2.6: an empty list is left out rather than encoded, so an empty one is a second form.
  if (list.done) invalid(role, 'its list of revoked certificates is present but empty');
  while (!list.done) {
    const entry = children(list.next(TAG.SEQUENCE));
    const serial = readBigInt(entry.next(TAG.INTEGER));
    readTime(entry.next());
    const ext = entry.optional(TAG.SEQUENCE);
    entry.end();
    if (ext !== undefined) {
      const extensions = readExtensions(ext);
      for (const [id, e] of extensions) {
        if (e.critical && !UNDERSTOOD_ENTRY.has(id))
          invalid(role, `an entry has the unknown critical extension ${id}`);
      }
    }
    if (revoked.has(serial)) invalid(role, `it lists serial ${serial.toString(16)} twice`);
    revoked.add(serial);
  }
  return revoked;
}

function parseUncached(der: Uint8Array, fingerprint: string, role: string): Crl {
  const top = children(readOne(der, TAG.SEQUENCE));
  const tbsNode = top.next(TAG.SEQUENCE);
  const outerAlg = top.next(TAG.SEQUENCE);
  const signatureValue = readBitStringBytes(top.next(TAG.BIT_STRING));
  top.end();

  const tbs = children(tbsNode);
  const versionNode = tbs.optional(TAG.INTEGER);
  if (versionNode === undefined || readBigInt(versionNode) !== 1n) invalid(role, 'only v2 CRLs are accepted');
  const innerAlg = tbs.next(TAG.SEQUENCE);
  const issuer = parseName(tbs.next(TAG.SEQUENCE));
  const thisUpdate = readTime(tbs.next());
  const next = tbs.peekTag();
  if (next !== TAG.UTC_TIME && next !== TAG.GENERALIZED_TIME) invalid(role, 'it has no nextUpdate');
  const nextUpdate = readTime(tbs.next());
  const entries = tbs.optional(TAG.SEQUENCE);
  const extNode = tbs.optional(0xa0);
  tbs.end();

  if (!equalBytes(innerAlg.bytes, outerAlg.bytes)) {
    invalid(role, 'its signature algorithm differs inside and outside the signed part');
  }
  if (nextUpdate.getTime() < thisUpdate.getTime()) invalid(role, 'its nextUpdate is before its thisUpdate');
  let extensions: ReadonlyMap<string, X509Extension> = new Map();
  if (extNode !== undefined) {
    const outer = children(extNode);
    extensions = readExtensions(outer.next(TAG.SEQUENCE));
    outer.end();
  }
  checkCritical(extensions, UNDERSTOOD_CRL_CRITICAL, role);
  return {
    der,
    fingerprint,
    tbs: tbsNode.bytes,
    issuer,
    thisUpdate,
    nextUpdate,
    revoked: entries === undefined ? new Set() : readEntries(entries, role),
    extensions,
    signatureAlgorithm: outerAlg.bytes,
    signatureValue,
  };
}

// Parsing and signature checks depend only on the bytes (and the issuer), so both are memoised by
// fingerprint, bounded like the certificate caches. The time window is checked on every use.
const CACHE_LIMIT = 64;
const crlCache = new Map<string, Crl>();
const verified = new Set<string>();

/** Empties the CRL parse and signature caches (for measurements and tests). */
export function clearCrlCache(): void {
  crlCache.clear();
  verified.clear();
}

/**
 * Parses one DER CRL strictly. `role` names it in messages (e.g. "the PCK CRL").
 * Fails with ERR_COLLATERAL_INVALID: a CRL is collateral, and a malformed one proves nothing.
 */
export function parseCrl(der: Uint8Array, role = 'the CRL'): Crl {
  if (!(der instanceof Uint8Array)) throw new TypeError(`Cannot parse ${role}: expected a Uint8Array`);
  const fingerprint = sha256Hex(der);
  const cached = crlCache.get(fingerprint);
  if (cached !== undefined) return cached;
  let crl: Crl;
  try {
    crl = parseUncached(der.slice(), fingerprint, role);
  } catch (e) {
    if (e instanceof AttestationError && e.code === 'ERR_COLLATERAL_INVALID') throw e;
    return invalid(role, e instanceof Error ? reasonOf(e) : 'unreadable', e);
  }
  if (crlCache.size >= CACHE_LIMIT) crlCache.delete(crlCache.keys().next().value as string);
  crlCache.set(fingerprint, crl);
  return crl;
}

/**
 * Checks that `crl` was issued and signed by `issuer` (a CA allowed to sign CRLs) under the vendor
 * `profile`, and that `now` lies in [thisUpdate, nextUpdate]. Fails with ERR_COLLATERAL_INVALID, or
 * ERR_COLLATERAL_EXPIRED for the window.
 */
export function verifyCrl(
  crl: Crl,
  issuer: Certificate,
  now: Date,
  role: string,
  profile: SignatureProfile,
): void {
  const t = now.getTime();
  if (Number.isNaN(t)) throw new RangeError(`Cannot check ${role}: \`now\` is an invalid Date`);
  if (!equalBytes(crl.issuer.der, issuer.subject.der)) {
    throw new AttestationError(
      'ERR_COLLATERAL_INVALID',
      `Cannot accept ${role}: it is issued by ${nameText(crl.issuer)}, not ${nameText(issuer.subject)}`,
    );
  }
  const key = `${profile}:${crl.fingerprint}:${issuer.fingerprint}`;
  if (!verified.has(key)) {
    if (!isCa(issuer) || !mayIssueCrls(issuer)) {
      throw new AttestationError(
        'ERR_COLLATERAL_INVALID',
        `Cannot accept ${role}: ${nameText(issuer.subject)} may not sign CRLs`,
      );
    }
    try {
      checkSignedBy(crl, issuer, role, profile);
    } catch (cause) {
      const detail = cause instanceof Error ? reasonOf(cause) : 'bad signature';
      throw new AttestationError('ERR_COLLATERAL_INVALID', `Cannot accept ${role}: ${detail}`, { cause });
    }
    if (verified.size >= CACHE_LIMIT) verified.delete(verified.values().next().value as string);
    verified.add(key);
  }
  if (t < crl.thisUpdate.getTime()) {
    throw new AttestationError(
      'ERR_COLLATERAL_EXPIRED',
      `Cannot accept ${role}: it is not valid before ${crl.thisUpdate.toISOString()}`,
    );
  }
  if (t > crl.nextUpdate.getTime()) {
    throw new AttestationError(
      'ERR_COLLATERAL_EXPIRED',
      `Cannot accept ${role}: it was due for renewal at ${crl.nextUpdate.toISOString()}`,
    );
  }
}

/** Whether keyUsage, when present, grants cRLSign (bit 6). */
function mayIssueCrls(cert: Certificate): boolean {
  const ku = cert.extensions.get(OID.keyUsage);
  if (ku === undefined) return true;
  try {
    const node = readOne(ku.value, TAG.BIT_STRING);
    return node.value.byteLength >= 2 && (node.value[1]! & 0x02) !== 0;
  } catch {
    return false;
  }
}

/**
 * Fails with ERR_REVOKED when `crl` lists `cert`. The caller has checked that the CRL belongs to the
 * certificate's issuer: serial numbers are unique only per issuer.
 */
export function checkNotRevoked(crl: Crl, cert: Certificate, role: string): void {
  if (crl.revoked.has(cert.serial)) {
    throw new AttestationError(
      'ERR_REVOKED',
      `Cannot accept ${role}: its serial ${cert.serial.toString(16)} is revoked by ${nameText(crl.issuer)}`,
    );
  }
}
