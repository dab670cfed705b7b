// Registry credentials and the challenges that ask for them. A registry answers 401 with a
// `WWW-Authenticate` header: `Basic realm="…"` wants the credentials on the request itself; `Bearer
// realm="…",service="…",scope="…"` wants a token fetched from the realm (Docker's token flow), with the
// credentials, if any, sent there as Basic. Credentials come from an explicit option or from Docker's
// config file (`auths` entries with a base64 `auth`); credential helpers are not consulted.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { RegistryError } from './errors.ts';

/** A user name and password (or a registry token used as one). */
export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/** One parsed `WWW-Authenticate` challenge. */
export interface Challenge {
  /** Lower-case scheme: `basic` or `bearer` (others are kept and refused by the caller). */
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses a `WWW-Authenticate` value holding one challenge (what registries send):
 * `Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"`.
 * Returns undefined for an empty or unreadable header.
 */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (header === null) return undefined;
  const match = /^\s*([A-Za-z][A-Za-z0-9_-]*)\s*(.*)$/s.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*(?:,\s*|$)/gy;
  const rest = match[2]!;
  while (re.lastIndex < rest.length) {
    const m = re.exec(rest);
    if (m === null) break;
    params[m[1]!.toLowerCase()] = m[2] === undefined ? m[3]! : m[2].replace(/\\(.)/g, '$1');
  }
  return { scheme: match[1]!.toLowerCase(), params };
}

/** `USER:PASS` as `--registry-auth` takes it (the password may hold colons). */
export function parseCredentials(text: string): Credentials {
  const colon = text.indexOf(':');
  if (colon <= 0) {
    throw new RegistryError('ERR_REGISTRY_AUTH', 'Cannot read registry credentials: expected USER:PASSWORD');
  }
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** The registry name a Docker config key stands for: `https://host/v1/` → `host`. */
function keyHost(key: string): string {
  return key
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
}

/**
 * The credentials Docker's config file holds for `registry` (`auths[registry].auth`, base64 of
 * `user:password`), or undefined. Docker Hub is looked up under its historical `https://index.docker.io/v1/`
 * key too. `path` defaults to `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`; a missing file
 * means no credentials, an unreadable one is an error.
 */
export function dockerConfigCredentials(registry: string, path?: string): Credentials | undefined {
  const file = path ?? join(process.env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RegistryError(
      'ERR_REGISTRY_AUTH',
      `Cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      { cause: error },
    );
  }
  let auths: unknown;
  try {
    auths = (JSON.parse(text) as { auths?: unknown }).auths;
  } catch (error) {
    throw new RegistryError('ERR_REGISTRY_AUTH', `Cannot read ${file}: not JSON`, { cause: error });
  }
  if (typeof auths !== 'object' || auths === null) return undefined;
  const wanted = new Set([registry.toLowerCase()]);
  if (['docker.io', 'index.docker.io', 'registry-1.docker.io'].includes(registry)) {
    for (const alias of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) wanted.add(alias);
  }
  for (const [key, entry] of Object.entries(auths as Record<string, unknown>)) {
    if (!wanted.has(keyHost(key))) continue;
    const auth = (entry as { auth?: unknown } | null)?.auth;
    if (typeof auth !== 'string' || auth === '') continue;
    const decoded = Buffer.from(auth, 'base64').toString('utf8');
    try {
      return parseCredentials(decoded);
    } catch {
      throw new RegistryError(
        'ERR_REGISTRY_AUTH',
        `Cannot read ${file}: the auth of ${key} is not base64 of user:password`,
      );
    }
  }
  return undefined;
}

/** The `Authorization` value for Basic credentials. */
export function basicAuthorization(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}`;
}
