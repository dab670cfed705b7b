// What a Keep's evidence binds when it asks the broker for secrets: the broker's nonce, the Keep's public key
// (the key every secret is encrypted to), and the workload and configuration digests the policy names. The
// house pattern of src/ratls (SHA-512 over a domain string and the parts), with a domain of its own so that
// evidence made for a client's channel or for a service certificate never stands for a broker request.
import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { spkiOf } from '../ratls/index.ts';
import { BrokerError } from './errors.ts';

/** The domain string that opens the report_data preimage of a broker request. */
export const BROKER_BINDING_DOMAIN = 'donjon/broker/v1';

/** Length of the broker's nonces in bytes (the protocol's minimum is 32). */
export const NONCE_BYTES = 32;

/** The JWE key management algorithm the broker encrypts secrets with; the only one it speaks. */
export const KEY_ALGORITHM = 'ECDH-ES+A256KW';
/** The JWE content encryption the broker encrypts secrets with; the only one it speaks. */
export const CONTENT_ENCRYPTION = 'A256GCM';

/** The runtime data a broker request binds, as bytes. */
export interface BrokerBinding {
  /** The broker's challenge nonce ({@link NONCE_BYTES} bytes). */
  nonce: Uint8Array;
  /** The Keep's public key (SubjectPublicKeyInfo DER): secrets are encrypted to it. */
  spki: Uint8Array;
  /** SHA-256 of the Wasm module. */
  workload: Uint8Array;
  /** SHA-256 of the workload's configuration. */
  config: Uint8Array;
}

/**
 * report_data for a broker request: SHA-512(domain ‖ SPKI DER ‖ nonce ‖ workload ‖ config). Every part but the
 * self-delimiting DER has a fixed length, so the preimage has one reading.
 */
export function brokerReportData(binding: BrokerBinding): Uint8Array {
  if (binding.nonce.length !== NONCE_BYTES) {
    throw new RangeError(`Cannot bind the runtime data: the nonce must be ${NONCE_BYTES} bytes`);
  }
  if (binding.workload.length !== 32 || binding.config.length !== 32) {
    throw new RangeError('Cannot bind the runtime data: the digests must be 32 bytes each');
  }
  return new Uint8Array(
    createHash('sha512')
      .update(BROKER_BINDING_DOMAIN)
      .update(binding.spki)
      .update(binding.nonce)
      .update(binding.workload)
      .update(binding.config)
      .digest(),
  );
}

/** The `tee-pubkey` a Keep sends: an EC public JWK (P-256 or P-384) for {@link KEY_ALGORITHM}. */
export interface TeePubkey {
  kty: 'EC';
  crv: 'P-256' | 'P-384';
  alg: typeof KEY_ALGORITHM;
  x: string;
  y: string;
}

/** The `tee-pubkey` JWK of a Keep's key (private or public). */
export function teePubkeyOf(key: KeyObject): TeePubkey {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const jwk = pub.export({ format: 'jwk' });
  if (jwk.kty !== 'EC' || (jwk.crv !== 'P-256' && jwk.crv !== 'P-384') || !jwk.x || !jwk.y) {
    throw new TypeError('Cannot use this key for the broker: it must be an EC key on P-256 or P-384');
  }
  return { kty: 'EC', crv: jwk.crv, alg: KEY_ALGORITHM, x: jwk.x, y: jwk.y };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads a `tee-pubkey` strictly: EC on P-256 or P-384, public only, `alg` absent or {@link KEY_ALGORITHM}, no
 * other member. RSA keys are refused (the broker never wraps keys with RSA, so RSA1_5 cannot be chosen).
 */
export function readTeePubkey(value: unknown): { jwk: TeePubkey; key: KeyObject; spki: Uint8Array } {
  const bad = (why: string): never => {
    throw new BrokerError('ERR_BROKER_REQUEST_INVALID', `Cannot read the tee-pubkey: ${why}`);
  };
  if (!isRecord(value)) return bad('it is not a JSON Web Key');
  for (const k of Object.keys(value)) {
    if (!['kty', 'crv', 'alg', 'x', 'y'].includes(k)) bad(`member ${k} is not allowed`);
  }
  if (value['kty'] !== 'EC') bad('only EC keys are accepted (kty "EC")');
  if (value['crv'] !== 'P-256' && value['crv'] !== 'P-384') bad('crv must be P-256 or P-384');
  if (value['alg'] !== undefined && value['alg'] !== KEY_ALGORITHM) bad(`alg must be ${KEY_ALGORITHM}`);
  if (typeof value['x'] !== 'string' || typeof value['y'] !== 'string') bad('x and y must be strings');
  const jwk: TeePubkey = {
    kty: 'EC',
    crv: value['crv'] as TeePubkey['crv'],
    alg: KEY_ALGORITHM,
    x: value['x'] as string,
    y: value['y'] as string,
  };
  let key: KeyObject;
  try {
    key = createPublicKey({
      key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } as JsonWebKey,
      format: 'jwk',
    });
  } catch (cause) {
    throw new BrokerError(
      'ERR_BROKER_REQUEST_INVALID',
      'Cannot read the tee-pubkey: it is not a point on its curve',
      {
        cause,
      },
    );
  }
  // Only the canonical encoding: what the key exports must be what was sent.
  const back = key.export({ format: 'jwk' });
  if (back.x !== jwk.x || back.y !== jwk.y) bad('its coordinates are not in canonical base64url');
  return { jwk, key, spki: spkiOf(key) };
}

/** Lower-case hex of bytes. */
export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** Bytes of a lower-case or upper-case hex string of exactly `length` bytes, or undefined. */
export function fromHex(text: unknown, length: number): Uint8Array | undefined {
  if (typeof text !== 'string' || text.length !== length * 2 || !/^[0-9a-fA-F]*$/.test(text))
    return undefined;
  return new Uint8Array(Buffer.from(text, 'hex'));
}

/** Bytes of an unpadded base64url string, accepting only the canonical encoding. */
export function fromBase64url(text: unknown): Uint8Array | undefined {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? new Uint8Array(bytes) : undefined;
}
