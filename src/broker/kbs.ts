// The KBS attestation protocol of Confidential Containers' Trustee, as the broker speaks it, apart from HTTP:
//   auth     Request → Challenge: a session with a fresh single-use nonce (32 bytes, minutes to live)
//   attest   Attestation → token: evidence whose report_data binds nonce, Keep key, workload and config,
//            verified with src/attestation's `verify`, answered with an EAR token bound to the Keep's key
//   resource token (cookie session or bearer) → the secret as a JWE (ECDH-ES+A256KW, A256GCM) to that key,
//            if the policy as it is now releases it; the token is verified again on every use
// Every release and refusal is audited. docs/broker.md describes the protocol and its choices.
import { createPublicKey, randomBytes, timingSafeEqual } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { FlattenedEncrypt, type FlattenedJWE } from 'jose';
import { type Claims, type TrustRoots, verify } from '../attestation/index.ts';
import { reasonOf } from '../lib/errors.ts';
import {
  brokerReportData,
  CONTENT_ENCRYPTION,
  fromBase64url,
  fromHex,
  KEY_ALGORITHM,
  NONCE_BYTES,
  readTeePubkey,
} from './binding.ts';
import { BrokerError } from './errors.ts';
import { decodeEvidence, isTee, keepClaimsOf, TEES, type Tee } from './evidence.ts';
import type { BrokerIdentity } from './identity.ts';
import type { BrokerMetrics } from './metrics.ts';
import { type BrokerPolicy, decide, parseBrokerPolicyText, SECRET_NAME, simRootsOf } from './policy.ts';
import type { AuditEntry, BrokerStore } from './store.ts';
import { issuerOf, issueToken, type VerifiedToken, verifyToken } from './tokens.ts';

/** The broker's named timeouts. */
export const BROKER_TIMEOUTS = {
  /** How long a challenge's nonce may be answered. */
  nonceMs: 120_000,
  /** How long an attestation token (and its cookie session) lives. */
  tokenSeconds: 300,
  /** How long SIGTERM waits for requests under way before closing their connections. */
  drainMs: 10_000,
  /** How long a Keep's connection may idle between steps (evidence from real hardware can take a while). */
  keepAliveMs: 30_000,
} as const;

/** The KBS protocol versions the broker speaks (Trustee's `0.x`). */
const VERSION = /^0\.[0-9]{1,3}\.[0-9]{1,3}$/;

/** The resource repository and type under which secrets are found: `/kbs/v0/resource/donjon/secret/NAME`. */
export const SECRET_REPOSITORY = 'donjon';
export const SECRET_TYPE = 'secret';

/** A challenge, as the KBS `Challenge` payload. */
export interface Challenge {
  nonce: string;
  'extra-params': Record<string, never>;
}

/** What the KBS service takes. */
export interface KbsServiceOptions {
  store: BrokerStore;
  identity: Pick<BrokerIdentity, 'privateKey' | 'fingerprint'>;
  /** The runtime measurements a rule without `measurements` accepts: this version's (`donjon measure`). */
  defaultMeasurements: readonly string[];
  metrics: BrokerMetrics;
  /** The clock; a parameter so tests can age nonces and tokens. */
  now?: () => Date;
  /** Trust anchors for real evidence; default the pinned AMD and Intel roots. */
  roots?: TrustRoots;
  /** JSON log lines (never a secret byte). */
  log?: (entry: Record<string, unknown>) => void;
  /** The `ear.verifier-id.build` of tokens. */
  build?: string;
}

/** How a resource request authenticates: a session cookie, a bearer token, or both (then they must agree). */
export interface ResourceCredentials {
  sessionId?: string | undefined;
  bearer?: string | undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function requestInvalid(why: string): never {
  throw new BrokerError('ERR_BROKER_REQUEST_INVALID', `Cannot read the request: ${why}`);
}

/** The broker's side of the KBS protocol. */
export class KbsService {
  readonly #o: KbsServiceOptions;
  readonly #now: () => Date;
  readonly #issuer: string;
  readonly #publicKey;
  #policyCache: { source: string; policy: BrokerPolicy } | undefined;
  #prunedAt = 0;

  constructor(options: KbsServiceOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
    this.#issuer = issuerOf(options.identity.fingerprint);
    this.#publicKey = createPublicKey(options.identity.privateKey);
  }

  /** The token issuer name (`iss`). */
  get issuer(): string {
    return this.#issuer;
  }

  /** The policy as stored now (parsed once per text): an edit takes effect on the next request. */
  policy(): BrokerPolicy {
    const source = this.#o.store.policySource();
    if (source === undefined) return { allow: [] };
    if (this.#policyCache?.source !== source) {
      this.#policyCache = { source, policy: parseBrokerPolicyText(source) };
    }
    return this.#policyCache.policy;
  }

  #audit(e: Omit<AuditEntry, 'at'>): void {
    this.#o.store.audit({ at: this.#now().getTime(), ...e });
    if (e.verdict === 'refused') this.#o.metrics.inc('donjon_broker_refusals_total', { stage: e.stage });
    this.#o.log?.({ event: e.verdict === 'refused' ? 'refusal' : e.verdict, ...e });
  }

  /** KBS `Request` to `Challenge`: opens a session with a fresh nonce. */
  auth(body: unknown): { sessionId: string; challenge: Challenge; maxAgeSeconds: number } {
    if (!isRecord(body)) requestInvalid('the body is not a KBS Request object');
    if (typeof body['version'] !== 'string' || !VERSION.test(body['version'])) {
      requestInvalid(`KBS protocol version ${String(body['version'])} is not spoken here (0.x is)`);
    }
    const tee = body['tee'];
    if (!isTee(tee)) {
      const refused = new BrokerError(
        'ERR_BROKER_TEE_UNSUPPORTED',
        `Cannot attest a ${typeof tee === 'string' ? tee : 'unnamed'} TEE: the broker appraises snp and tdx evidence only`,
      );
      this.#audit({ stage: 'attest', verdict: 'refused', reason: refused.detail });
      throw refused;
    }
    const now = this.#now().getTime();
    // Ended sessions are forgotten now and then, not on every request (each prune is a write).
    if (now - this.#prunedAt > BROKER_TIMEOUTS.nonceMs) {
      this.#o.store.pruneSessions(now);
      this.#prunedAt = now;
    }
    const sessionId = randomBytes(32).toString('base64url');
    const nonce = new Uint8Array(randomBytes(NONCE_BYTES));
    this.#o.store.insertSession({
      id: sessionId,
      state: 'challenged',
      tee,
      nonce,
      nonceExpiresAt: now + BROKER_TIMEOUTS.nonceMs,
      expiresAt: now + BROKER_TIMEOUTS.nonceMs,
    });
    return {
      sessionId,
      challenge: { nonce: Buffer.from(nonce).toString('base64url'), 'extra-params': {} },
      maxAgeSeconds: BROKER_TIMEOUTS.tokenSeconds,
    };
  }

  /** KBS `Attestation` to token. The session's nonce is spent whatever the outcome. */
  async attest(sessionId: string | undefined, body: unknown): Promise<{ token: string; expiresAt: number }> {
    const now = this.#now();
    const session =
      sessionId === undefined ? undefined : this.#o.store.takeChallenge(sessionId, now.getTime());
    if (session === undefined) {
      const refused = new BrokerError(
        'ERR_BROKER_NONCE_INVALID',
        'Cannot appraise the evidence: the session has no open challenge (unknown, expired, or already answered)',
      );
      this.#audit({ stage: 'attest', verdict: 'refused', reason: refused.detail });
      this.#o.metrics.inc('donjon_broker_attestations_total', { verdict: 'refused' });
      throw refused;
    }
    const tee = session.tee as Tee;
    let workload: string | undefined;
    let config: string | undefined;
    try {
      if (!isRecord(body)) requestInvalid('the body is not a KBS Attestation object');
      for (const k of Object.keys(body)) {
        if (k !== 'runtime-data' && k !== 'tee-evidence') {
          requestInvalid(
            `member ${k} is not taken here${k === 'init-data' ? ' (init-data is not supported)' : ''}`,
          );
        }
      }
      const rd = body['runtime-data'];
      if (!isRecord(rd)) requestInvalid('runtime-data is missing');
      for (const k of Object.keys(rd)) {
        if (!['nonce', 'tee-pubkey', 'workload-digest', 'config-digest'].includes(k)) {
          requestInvalid(`runtime-data member ${k} is not taken here`);
        }
      }
      const nonce = fromBase64url(rd['nonce']);
      if (nonce === undefined || nonce.length !== NONCE_BYTES || !timingSafeEqual(nonce, session.nonce)) {
        throw new BrokerError(
          'ERR_BROKER_NONCE_INVALID',
          "Cannot appraise the evidence: runtime-data's nonce is not this session's challenge",
        );
      }
      const wl = fromHex(rd['workload-digest'], 32);
      const cf = fromHex(rd['config-digest'], 32);
      if (wl === undefined || cf === undefined)
        requestInvalid('workload-digest and config-digest must be 64 hex digits');
      workload = Buffer.from(wl).toString('hex');
      config = Buffer.from(cf).toString('hex');
      const teeKey = readTeePubkey(rd['tee-pubkey']);
      const te = body['tee-evidence'];
      if (!isRecord(te)) requestInvalid('tee-evidence is missing');
      for (const k of Object.keys(te)) {
        if (k !== 'primary_evidence' && k !== 'additional_evidence')
          requestInvalid(`tee-evidence member ${k} is not taken here`);
      }
      const extra = te['additional_evidence'];
      if (extra !== undefined && extra !== '' && extra !== '{}') {
        requestInvalid('additional_evidence is not appraised here, so it must be empty');
      }
      const evidence = decodeEvidence(tee, te['primary_evidence']);
      const reportData = brokerReportData({
        nonce: session.nonce,
        spki: teeKey.spki,
        workload: wl,
        config: cf,
      });
      const t0 = performance.now();
      let claims: Claims;
      try {
        claims = verify(
          evidence,
          {
            reportData,
            // Debug, measurements and TCB are the release policy's, per secret; here only what every release needs.
            allowDebug: true,
            trustSimulatedRoots: simRootsOf(this.policy()),
            ...(tee === 'tdx' ? { requireCollateral: true } : {}),
          },
          { now, ...(this.#o.roots === undefined ? {} : { roots: this.#o.roots }) },
        );
      } finally {
        this.#o.metrics.inc('donjon_broker_evidence_verify_seconds_sum', {}, (performance.now() - t0) / 1000);
        this.#o.metrics.inc('donjon_broker_evidence_verify_seconds_count');
      }
      if (claims.kind !== TEES[tee])
        requestInvalid(`the evidence is ${claims.kind}, the session's tee is ${tee}`);
      const keep = keepClaimsOf(claims, workload, config);
      const token = await issueToken({
        privateKey: this.#o.identity.privateKey,
        issuer: this.#issuer,
        claims: keep,
        teePubkey: teeKey.jwk,
        now,
        ttlSeconds: BROKER_TIMEOUTS.tokenSeconds,
        build: this.#o.build ?? 'donjon',
      });
      const expiresAt = now.getTime() + BROKER_TIMEOUTS.tokenSeconds * 1000;
      this.#o.store.attestSession(session.id, token, expiresAt);
      this.#audit({
        stage: 'attest',
        verdict: 'attested',
        evidenceKind: keep.kind,
        measurement: keep.measurement,
        simulated: keep.simulated,
        workload,
        config,
      });
      this.#o.metrics.inc('donjon_broker_attestations_total', { verdict: 'attested' });
      return { token, expiresAt };
    } catch (error) {
      const refused =
        error instanceof BrokerError
          ? error
          : new BrokerError('ERR_BROKER_EVIDENCE_REFUSED', `Cannot accept the evidence: ${reasonOf(error)}`, {
              cause: error,
            });
      this.#audit({
        stage: 'attest',
        verdict: 'refused',
        evidenceKind: TEES[tee],
        ...(workload === undefined ? {} : { workload }),
        ...(config === undefined ? {} : { config }),
        reason: refused.detail,
      });
      this.#o.metrics.inc('donjon_broker_attestations_total', { verdict: 'refused' });
      throw refused;
    }
  }

  /** The token a resource request stands on, verified now (cookie and bearer must agree when both come). */
  async #tokenOf(credentials: ResourceCredentials, now: Date): Promise<VerifiedToken> {
    const check = (token: string) =>
      verifyToken(token, { publicKey: this.#publicKey, issuer: this.#issuer, now });
    let fromSession: VerifiedToken | undefined;
    if (credentials.sessionId !== undefined) {
      const session = this.#o.store.getSession(credentials.sessionId, now.getTime());
      if (session?.state !== 'attested' || session.token === undefined) {
        throw new BrokerError(
          'ERR_BROKER_TOKEN_INVALID',
          'Cannot release: the session is unknown, expired, or not attested',
        );
      }
      // The cookie path checks the session's token exactly as the bearer path does.
      fromSession = await check(session.token);
    }
    if (credentials.bearer === undefined) {
      if (fromSession === undefined) {
        throw new BrokerError(
          'ERR_BROKER_TOKEN_INVALID',
          'Cannot release: no attestation token or session came with the request',
        );
      }
      return fromSession;
    }
    const fromBearer = await check(credentials.bearer);
    if (fromSession !== undefined && fromSession.thumbprint !== fromBearer.thumbprint) {
      throw new BrokerError(
        'ERR_BROKER_TOKEN_INVALID',
        "Cannot release: the token is bound to another key than the session's",
      );
    }
    return fromBearer;
  }

  /** A KBS resource path's secret name, or ERR_BROKER_NOT_FOUND. */
  static secretName(path: string): string {
    const m = /^\/kbs\/v0\/resource\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(path);
    if (!m || m[1] !== SECRET_REPOSITORY || m[2] !== SECRET_TYPE || !SECRET_NAME.test(m[3]!)) {
      throw new BrokerError(
        'ERR_BROKER_NOT_FOUND',
        `Cannot find ${path}: secrets are at /kbs/v0/resource/${SECRET_REPOSITORY}/${SECRET_TYPE}/NAME`,
      );
    }
    return m[3]!;
  }

  /** A resource request, answered with the secret as a flattened JWE to the token's key, if the policy releases it now. */
  async resource(credentials: ResourceCredentials, name: string): Promise<FlattenedJWE> {
    const now = this.#now();
    let token: VerifiedToken;
    try {
      token = await this.#tokenOf(credentials, now);
    } catch (error) {
      this.#audit({ stage: 'resource', verdict: 'refused', secret: name, reason: reasonOf(error) });
      throw error;
    }
    const c = token.claims;
    const about = {
      evidenceKind: c.kind,
      measurement: c.measurement,
      simulated: c.simulated,
      workload: c.workload,
      config: c.config,
      secret: name,
    };
    const verdict = decide(this.policy(), name, c, this.#o.defaultMeasurements);
    if (!verdict.allowed) {
      this.#audit({ stage: 'resource', verdict: 'refused', ...about, reason: verdict.reason });
      throw new BrokerError('ERR_SECRET_DENIED', `Cannot release secret ${name}: ${verdict.reason}`);
    }
    const value = this.#o.store.getSecret(name);
    if (value === undefined) {
      this.#audit({
        stage: 'resource',
        verdict: 'refused',
        ...about,
        reason: 'no secret of that name is held',
      });
      throw new BrokerError(
        'ERR_SECRET_NOT_FOUND',
        `Cannot release secret ${name}: no secret of that name is held`,
      );
    }
    const jwe = await new FlattenedEncrypt(value)
      .setProtectedHeader({ alg: KEY_ALGORITHM, enc: CONTENT_ENCRYPTION })
      .encrypt(token.key);
    value.fill(0);
    this.#audit({ stage: 'resource', verdict: 'released', ...about, reason: `rule allow[${verdict.rule}]` });
    this.#o.metrics.inc('donjon_broker_releases_total');
    return jwe;
  }
}
