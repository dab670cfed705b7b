// OCI references as Docker and the distribution spec write them: host[:port]/repo[:tag][@sha256:hex]. Only
// references that name their registry are accepted (the first component holds a dot or a colon, or is
// `localhost`): a mistyped file name must never turn into a pull from Docker Hub.
import { RegistryError } from './errors.ts';

/** A parsed reference. `tag` and `digest` may both be present; the digest then wins. */
export interface Reference {
  /** `host[:port]` as written (IPv6 hosts in brackets). */
  readonly registry: string;
  /** The repository path, e.g. `library/hello` or `team/hello`. */
  readonly repository: string;
  readonly tag?: string;
  /** `sha256:` and 64 lower-case hex digits. */
  readonly digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HOST_NAME =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const MAX_NAME = 255;

/** Whether `text` is a `sha256:` digest as references and descriptors carry them. */
export function isDigest(text: string): boolean {
  return DIGEST.test(text);
}

function invalid(text: string, why: string): RegistryError {
  return new RegistryError('ERR_REFERENCE_INVALID', `Cannot read reference ${text}: ${why}`);
}

function checkHost(text: string, registry: string): void {
  let host = registry;
  let port: string | undefined;
  if (registry.startsWith('[')) {
    const end = registry.indexOf(']');
    if (end === -1) throw invalid(text, 'the IPv6 host has no closing bracket');
    host = registry.slice(1, end);
    const rest = registry.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':')) throw invalid(text, `${registry} is not host[:port]`);
    if (rest !== '') port = rest.slice(1);
    if (!/^[0-9a-fA-F:.]+$/.test(host)) throw invalid(text, `${host} is not an IPv6 address`);
  } else {
    const colon = registry.lastIndexOf(':');
    if (colon !== -1) {
      host = registry.slice(0, colon);
      port = registry.slice(colon + 1);
    }
    if (!HOST_NAME.test(host)) throw invalid(text, `${host} is not a host name`);
  }
  if (port !== undefined && !(/^\d{1,5}$/.test(port) && Number(port) > 0 && Number(port) < 65536)) {
    throw invalid(text, `${port} is not a port number`);
  }
}

/** Whether the first path component of a reference names a registry (as Docker decides it). */
function namesRegistry(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[');
}

/**
 * Parses `host[:port]/repo[:tag][@sha256:hex]`. Throws ERR_REFERENCE_INVALID naming what is wrong; a
 * reference without a registry host is refused, not completed with Docker Hub.
 */
export function parseReference(text: string): Reference {
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest))
      throw invalid(text, `${digest} is not a sha256 digest (sha256: and 64 hex digits)`);
  }
  const slash = rest.indexOf('/');
  if (slash === -1 || !namesRegistry(rest.slice(0, slash))) {
    throw invalid(text, 'it names no registry (expected host[:port]/repository[:tag])');
  }
  const registry = rest.slice(0, slash);
  checkHost(text, registry);
  let path = rest.slice(slash + 1);
  let tag: string | undefined;
  const lastSlash = path.lastIndexOf('/');
  const colon = path.indexOf(':', lastSlash + 1);
  if (colon !== -1) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(text, `${tag} is not a tag (letters, digits, _ . -, at most 128)`);
  }
  if (path === '') throw invalid(text, 'it names no repository');
  for (const component of path.split('/')) {
    if (!COMPONENT.test(component)) {
      throw invalid(
        text,
        `${component === '' ? 'an empty path component' : component} is not a repository name component (lower-case letters, digits, separators . _ __ -)`,
      );
    }
  }
  if (registry.length + 1 + path.length > MAX_NAME)
    throw invalid(text, `the name is longer than ${MAX_NAME} characters`);
  return {
    registry,
    repository: path,
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
  };
}

/**
 * Whether a command-line WORKLOAD argument is meant as a reference rather than a file: it parses, and it
 * does not end in `.wasm` (a missing `dir.v2/app.wasm` is a missing file, not a repository).
 */
export function looksLikeReference(text: string): boolean {
  if (text.endsWith('.wasm')) return false;
  try {
    parseReference(text);
    return true;
  } catch {
    return false;
  }
}

/** The reference as text: `registry/repository`, then `:tag`, then `@digest`, each when present. */
export function formatReference(ref: Reference): string {
  return `${ref.registry}/${ref.repository}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}

/** The same repository pinned to `digest` (the tag dropped: after resolution everything goes by digest). */
export function pinned(ref: Reference, digest: string): Reference {
  return { registry: ref.registry, repository: ref.repository, digest };
}

/** The tag or the digest a manifest request names: the digest when there is one, else the tag, else `latest`. */
export function manifestReference(ref: Reference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

/** The tag under which cosign stores the signatures of `digest`: `sha256-<hex>.sig`. */
export function signatureTag(digest: string): string {
  if (!DIGEST.test(digest))
    throw new TypeError(`Cannot name the signature tag of ${digest}: not a sha256 digest`);
  return `${digest.replace(':', '-')}.sig`;
}

/** The host part of a registry (no port, no brackets). */
export function registryHost(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(1, registry.indexOf(']'));
  const colon = registry.lastIndexOf(':');
  return colon === -1 ? registry : registry.slice(0, colon);
}

/** Whether the registry is on this machine's loopback (`localhost`, 127.0.0.0/8, ::1), where plain HTTP is allowed. */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registryHost(registry).toLowerCase();
  return host === 'localhost' || /^127(?:\.\d{1,3}){3}$/.test(host) || host === '::1';
}

/**
 * The host that serves a registry's API: Docker Hub's `docker.io` (and `index.docker.io`) answers at
 * `registry-1.docker.io`; every other registry at its own name.
 */
export function apiHost(registry: string): string {
  return registry === 'docker.io' || registry === 'index.docker.io' ? 'registry-1.docker.io' : registry;
}

/**
 * The repository name the signature payload's `docker-reference` should carry, and the one it is compared
 * with: `registry/repository`, Docker Hub's aliases folded to `index.docker.io` as cosign writes them.
 */
export function repositoryName(ref: Reference): string {
  const registry =
    ref.registry === 'docker.io' || ref.registry === 'registry-1.docker.io'
      ? 'index.docker.io'
      : ref.registry;
  return `${registry}/${ref.repository}`;
}
