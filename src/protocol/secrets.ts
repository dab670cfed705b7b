import type { ErrorCategory } from '../lib/errors.ts';
import { ProtocolError } from './errors.ts';
import type { SecretSpec } from './messages.ts';

// What client and Keep agree on about a workload's `[[secrets]]`: which entries are valid, and where the Keep
// connects for each. The client checks them before it sends a deploy, the Keep again when it receives one.

/** Most secrets a workload may name. */
export const MAX_SECRETS = 64;

/** The names a secret may have at the broker (the broker's own rule: they appear in its resource paths). */
export const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A broker's certificate fingerprint as a deploy carries it: SHA-256, 64 lower-case hex digits. */
export const FINGERPRINT = /^[0-9a-f]{64}$/;

/** The names an environment variable given a secret may have. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The codes a Keep refuses a deploy with when it could not fetch the workload's secrets (the broker's and its
 * Keep-side client's codes, passed on unchanged), with the category the client meets each under. A test holds
 * them to the broker's registry.
 */
export const SECRET_REFUSALS = {
  ERR_SECRET_DENIED: 'refused',
  ERR_SECRET_NOT_FOUND: 'usage',
  ERR_BROKER_TEE_UNSUPPORTED: 'refused',
  ERR_BROKER_NONCE_INVALID: 'refused',
  ERR_BROKER_EVIDENCE_REFUSED: 'refused',
  ERR_BROKER_TOKEN_INVALID: 'refused',
  ERR_BROKER_REQUEST_INVALID: 'usage',
  ERR_BROKER_UNREACHABLE: 'host',
  ERR_BROKER_UNTRUSTED: 'refused',
  ERR_BROKER_RESPONSE_INVALID: 'host',
} as const satisfies Record<string, ErrorCategory>;

/** The category of a Keep's refusal code when it is one of {@link SECRET_REFUSALS}. */
export function secretRefusalCategory(code: string): ErrorCategory | undefined {
  return Object.hasOwn(SECRET_REFUSALS, code)
    ? SECRET_REFUSALS[code as keyof typeof SECRET_REFUSALS]
    : undefined;
}

/** Where a broker is reached: what the Keep asks the host to connect to. */
export interface BrokerAddress {
  host: string;
  port: number;
}

function invalid(index: number, state: string): ProtocolError {
  return new ProtocolError('ERR_MESSAGE_INVALID', `Cannot use the secrets: secrets[${index}]: ${state}`);
}

/**
 * The host and port of a broker URL: `https://HOST[:PORT]` with nothing else (no credentials, path, query or
 * fragment). Throws a {@link ProtocolError} for anything else.
 */
export function brokerAddress(url: string, index = 0): BrokerAddress {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalid(index, `broker ${JSON.stringify(url)} is not a URL`);
  }
  if (u.protocol !== 'https:') throw invalid(index, `broker ${url} is not an https URL`);
  if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '' || u.pathname !== '/') {
    throw invalid(index, `broker ${url} must be https://HOST[:PORT] without a path, query or credentials`);
  }
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return { host, port: u.port === '' ? 443 : Number(u.port) };
}

/** The folder a secret's file lies in, and its name there: "/secrets/db" is "db" in "/secrets". */
export function secretFileOf(path: string): { dir: string; file: string } {
  const at = path.lastIndexOf('/');
  return { dir: at === 0 ? '/' : path.slice(0, at), file: path.slice(at + 1) };
}

function checkPath(index: number, path: string): void {
  const parts = path.split('/').slice(1);
  const valid = (p: string): boolean =>
    p !== '' && p !== '.' && p !== '..' && !p.includes('\0') && Buffer.byteLength(p) <= 255;
  if (!path.startsWith('/') || parts.length === 0 || !parts.every(valid)) {
    throw invalid(index, `path ${JSON.stringify(path)} is not an absolute path of valid names`);
  }
}

/**
 * Checks a workload's secrets: at most {@link MAX_SECRETS}; each a valid name, an https broker URL, a
 * fingerprint of 64 lower-case hex digits, and exactly one of an absolute `path` or an `env` name; no two
 * secrets given the same path or variable. Throws a {@link ProtocolError} (`ERR_MESSAGE_INVALID`) naming the
 * entry.
 */
export function checkSecrets(secrets: readonly SecretSpec[]): void {
  if (secrets.length > MAX_SECRETS) {
    throw new ProtocolError(
      'ERR_MESSAGE_INVALID',
      `Cannot use the secrets: ${secrets.length} entries is over the limit of ${MAX_SECRETS}`,
    );
  }
  const paths = new Set<string>();
  const envs = new Set<string>();
  for (const [i, s] of secrets.entries()) {
    if (!SECRET_NAME.test(s.name)) {
      throw invalid(
        i,
        `name ${JSON.stringify(s.name)} is not 1 to 128 of A-Z a-z 0-9 . _ - (not first . _ -)`,
      );
    }
    brokerAddress(s.broker, i);
    if (!FINGERPRINT.test(s.fingerprint)) {
      throw invalid(i, 'fingerprint must be the SHA-256 of the broker certificate, 64 hex digits');
    }
    if ((s.path === undefined) === (s.env === undefined)) {
      throw invalid(i, 'give exactly one of path (a file) and env (a variable)');
    }
    if (s.path !== undefined) {
      checkPath(i, s.path);
      if (paths.has(s.path)) throw invalid(i, `path ${s.path} is given to two secrets`);
      paths.add(s.path);
    }
    if (s.env !== undefined) {
      if (!ENV_NAME.test(s.env)) throw invalid(i, `env ${JSON.stringify(s.env)} is not a variable name`);
      if (s.env === 'FD_COUNT' || s.env === 'FD_NAMES') {
        throw invalid(i, `env ${s.env} is the Keep's own (the descriptor table's names)`);
      }
      if (envs.has(s.env)) throw invalid(i, `env ${s.env} is given to two secrets`);
      envs.add(s.env);
    }
  }
  // A file and a folder of the same name cannot both exist: "/s/a" and "/s/a/b" are refused.
  for (const p of paths) {
    if ([...paths].some((q) => q.startsWith(`${p}/`))) {
      throw new ProtocolError('ERR_MESSAGE_INVALID', `Cannot use the secrets: ${p} is a file and a folder`);
    }
  }
}
