// The Keep's side of the broker: given a byte stream to the broker (relayed by the host, as a `connect` file
// is), the Keep runs TLS over it to the pinned broker, answers the KBS challenge with evidence whose
// report_data binds the nonce, its key and its workload and configuration digests, and receives each secret
// as a JWE that only its key opens. The host relaying the stream sees TLS records only.
import type { KeyObject } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { type FlattenedJWE, flattenedDecrypt } from 'jose';
import type { CarriedEvidence } from '../ratls/index.ts';
import { spkiOf } from '../ratls/index.ts';
import {
  brokerReportData,
  CONTENT_ENCRYPTION,
  fromBase64url,
  KEY_ALGORITHM,
  NONCE_BYTES,
  teePubkeyOf,
} from './binding.ts';
import { BrokerError } from './errors.ts';
import { encodeEvidence, type Tee } from './evidence.ts';
import { answerError, answerJson, connectPinned, PinnedConnection } from './http.ts';
import { SECRET_REPOSITORY, SECRET_TYPE } from './kbs.ts';

/** The KBS protocol version the client speaks. */
export const KBS_VERSION = '0.1.1';

/** What fetching secrets takes. */
export interface FetchSecretsOptions {
  /** A byte stream to the broker; TLS runs over it here, ending in the Keep. */
  stream: Duplex;
  /** The broker's certificate fingerprint (SHA-256 hex), as the workload's configuration pins it. */
  fingerprint: string;
  /** The Keep's private key (EC P-256 or P-384): evidence binds its public half, secrets are encrypted to it. */
  key: KeyObject;
  /** Evidence whose report_data is the given 64 bytes (the Keep asks its backend). */
  evidence: (reportData: Uint8Array) => Promise<CarriedEvidence>;
  /** SHA-256 of the workload. */
  workload: Uint8Array;
  /** SHA-256 of its configuration. */
  config: Uint8Array;
  /** The evidence kind the Keep will present, as a KBS `tee`. */
  tee: Tee;
  /** The names of the secrets to fetch. */
  secrets: readonly string[];
  /** TLS handshake timeout; default 30 s. */
  timeoutMs?: number;
}

function invalid(why: string): never {
  throw new BrokerError('ERR_BROKER_RESPONSE_INVALID', `Cannot use the broker's answer: ${why}`);
}

function sessionCookie(setCookie: string[] | undefined): string {
  for (const c of setCookie ?? []) {
    const m = /^kbs-session-id=([A-Za-z0-9_-]+)/.exec(c);
    if (m) return `kbs-session-id=${m[1]}`;
  }
  return invalid('the challenge came without a kbs-session-id cookie');
}

/**
 * Attests to the broker and fetches `secrets`, returning each by name. Refusals keep the broker's code
 * (ERR_SECRET_DENIED, ERR_BROKER_EVIDENCE_REFUSED, …); a broker that cannot be reached or broke off is
 * ERR_BROKER_UNREACHABLE, one whose certificate is not the pinned one ERR_BROKER_UNTRUSTED (nothing was sent).
 */
export async function fetchSecrets(o: FetchSecretsOptions): Promise<Map<string, Uint8Array>> {
  const socket = await connectPinned({ stream: o.stream }, o.fingerprint, o.timeoutMs);
  const http = new PinnedConnection(socket);
  try {
    const json = { 'content-type': 'application/json', accept: 'application/json' };
    const body = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

    const auth = await http.send(
      'POST',
      '/kbs/v0/auth',
      json,
      body({ version: KBS_VERSION, tee: o.tee, 'extra-params': '' }),
    );
    const challenge = answerJson(auth, 'open a session with the broker') as { nonce?: unknown };
    const nonce = fromBase64url(challenge.nonce);
    if (nonce === undefined || nonce.length !== NONCE_BYTES)
      invalid(`the challenge's nonce is not ${NONCE_BYTES} bytes of base64url`);
    const cookie = sessionCookie(auth.headers['set-cookie']);

    const reportData = brokerReportData({
      nonce,
      spki: spkiOf(o.key),
      workload: o.workload,
      config: o.config,
    });
    const carried = await o.evidence(reportData);
    const { tee, primary } = encodeEvidence(carried);
    if (tee !== o.tee) invalid(`the evidence is ${tee}, not ${o.tee}`);
    const attestation = {
      'runtime-data': {
        nonce: challenge.nonce,
        'tee-pubkey': teePubkeyOf(o.key),
        'workload-digest': Buffer.from(o.workload).toString('hex'),
        'config-digest': Buffer.from(o.config).toString('hex'),
      },
      'tee-evidence': { primary_evidence: primary, additional_evidence: '' },
    };
    const attested = await http.send('POST', '/kbs/v0/attest', { ...json, cookie }, body(attestation));
    answerJson(attested, 'attest to the broker');

    const out = new Map<string, Uint8Array>();
    for (const name of o.secrets) {
      const a = await http.send(
        'GET',
        `/kbs/v0/resource/${SECRET_REPOSITORY}/${SECRET_TYPE}/${encodeURIComponent(name)}`,
        {
          accept: 'application/json',
          cookie,
        },
      );
      if (a.status !== 200) throw answerError(a, `fetch secret ${name}`);
      out.set(name, await openSecret(answerJson(a, `fetch secret ${name}`), o.key, name));
    }
    return out;
  } finally {
    http.close();
  }
}

/**
 * Opens a released secret: a flattened JWE, ECDH-ES+A256KW with A256GCM and nothing else, to the Keep's key.
 */
export async function openSecret(jwe: unknown, key: KeyObject, name = 'the secret'): Promise<Uint8Array> {
  try {
    const { plaintext } = await flattenedDecrypt(jwe as FlattenedJWE, key, {
      keyManagementAlgorithms: [KEY_ALGORITHM],
      contentEncryptionAlgorithms: [CONTENT_ENCRYPTION],
    });
    return plaintext;
  } catch (cause) {
    throw new BrokerError('ERR_BROKER_RESPONSE_INVALID', `Cannot open ${name}: ${(cause as Error).message}`, {
      cause,
    });
  }
}
