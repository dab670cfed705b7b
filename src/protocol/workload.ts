import { createHash } from 'node:crypto';
import { encode } from './cbor.ts';
import { ProtocolError } from './errors.ts';
import type { DirSpec, FileSpec, SecretSpec } from './messages.ts';

// What client and Keep must agree on byte for byte: Enarx.toml's descriptor table with its defaults filled in,
// and the digest of a workload's configuration that a service's evidence binds.

/** A descriptor of the table with every default filled in: what the Keep gives the workload. */
export type NormalizedFile =
  | { kind: 'null' | 'stdin' | 'stdout' | 'stderr'; name: string }
  | { kind: 'listen'; name: string; prot: 'tcp' | 'tls'; port: number; addr: string }
  | { kind: 'connect'; name: string; prot: 'tcp' | 'tls'; port: number; host: string };

/** Enarx's descriptor table when `files` is absent: stdin, stdout and stderr on descriptors 0, 1 and 2. */
export const DEFAULT_FILE_SPECS: readonly FileSpec[] = Object.freeze([
  { kind: 'stdin' },
  { kind: 'stdout' },
  { kind: 'stderr' },
]);

/** Most entries of a descriptor table. */
export const MAX_FILES = 64;
/** Enarx's default port of a `listen` or `connect` file. */
export const DEFAULT_PORT = 443;
/** Enarx's default address of a `listen` file. */
export const DEFAULT_LISTEN_ADDR = '::';

function invalid(index: number, state: string): ProtocolError {
  return new ProtocolError('ERR_MESSAGE_INVALID', `Cannot use files[${index}]: ${state}`);
}

function checkName(index: number, name: string): string {
  // FD_NAMES joins the names with ":" and travels as one environment value.
  if (name === '' || name.includes(':') || name.includes('\0')) {
    throw invalid(index, `the name ${JSON.stringify(name)} is empty or holds ":" or NUL`);
  }
  return name;
}

function onlyFields(index: number, f: FileSpec, allowed: readonly string[]): void {
  for (const key of Object.keys(f)) {
    if (!allowed.includes(key)) throw invalid(index, `a ${f.kind} file has no ${key}`);
  }
}

/**
 * Checks a descriptor table and fills in Enarx's defaults (prot "tls", port 443, listen addr "::", a
 * connect's name is its host). Throws a {@link ProtocolError} (`ERR_MESSAGE_INVALID`) naming the entry.
 */
export function normalizeFiles(files: readonly FileSpec[]): NormalizedFile[] {
  if (files.length > MAX_FILES) {
    throw new ProtocolError(
      'ERR_MESSAGE_INVALID',
      `Cannot use the files: ${files.length} entries is over the limit of ${MAX_FILES}`,
    );
  }
  return files.map((f, i): NormalizedFile => {
    const port = f.port ?? DEFAULT_PORT;
    const prot = f.prot ?? 'tls';
    switch (f.kind) {
      case 'null':
      case 'stdin':
      case 'stdout':
      case 'stderr':
        onlyFields(i, f, ['kind', 'name']);
        return { kind: f.kind, name: checkName(i, f.name ?? f.kind) };
      case 'listen':
        onlyFields(i, f, ['kind', 'name', 'prot', 'port', 'addr']);
        if (f.name === undefined) throw invalid(i, 'a listen file needs a name');
        if (port > 65535) throw invalid(i, `port ${port} is over 65535`);
        return {
          kind: 'listen',
          name: checkName(i, f.name),
          prot,
          port,
          addr: f.addr ?? DEFAULT_LISTEN_ADDR,
        };
      case 'connect':
        onlyFields(i, f, ['kind', 'name', 'prot', 'port', 'host']);
        if (f.host === undefined || f.host === '') throw invalid(i, 'a connect file needs a host');
        if (port < 1 || port > 65535) throw invalid(i, `port ${port} is not 1 to 65535`);
        return { kind: 'connect', name: checkName(i, f.name ?? f.host), prot, port, host: f.host };
      default:
        throw invalid(i, `the kind ${JSON.stringify((f as { kind: unknown }).kind)} is unknown`);
    }
  });
}

/** What a configuration digest covers: everything the Keep gives the workload besides its module. */
export interface WorkloadConfigInput {
  args: readonly string[];
  env: Readonly<Record<string, string>>;
  files: readonly NormalizedFile[];
  dirs?: readonly DirSpec[];
  /** The secrets the Keep fetches: which broker, pinned how, and where they go (the host may change none). */
  secrets?: readonly SecretSpec[];
}

/**
 * The SHA-256 of a workload's configuration: of the deterministic CBOR encoding of the map
 * `{ "args": [...], "env": {...}, "files": [...] }` (plus `"dirs"` when directories are pre-opened and
 * `"secrets"` when secrets are fetched, as the deploy carries them), with the
 * files normalized. A service's evidence binds it beside the module's digest, so a relying party can require
 * one configuration (its ports, its arguments, its environment), not only one module.
 */
export function configDigest(config: WorkloadConfigInput): Uint8Array {
  const map: Record<string, unknown> = {
    args: [...config.args],
    env: { ...config.env },
    files: config.files.map((f) => ({ ...f })),
  };
  if (config.dirs !== undefined && config.dirs.length > 0) map['dirs'] = config.dirs;
  if (config.secrets !== undefined && config.secrets.length > 0) {
    map['secrets'] = config.secrets.map((s) =>
      Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)),
    );
  }
  return new Uint8Array(createHash('sha256').update(encode(map)).digest());
}
