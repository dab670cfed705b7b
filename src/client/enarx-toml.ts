import { parse, TomlError } from 'smol-toml';
import { reasonOf } from '../lib/errors.ts';
import type { SecretSpec } from '../protocol/messages.ts';
import { checkSecrets } from '../protocol/secrets.ts';
import { type NormalizedFile, normalizeFiles } from '../protocol/workload.ts';
import { ClientError } from './errors.ts';

/** A workload's configuration in Enarx.toml's schema: `args`, `env`, `files` (and Enarx's `steward`). */
export interface WorkloadConfig {
  args: string[];
  env: Record<string, string>;
  /** The descriptor table, descriptor n being entry n, with Enarx's defaults filled in. */
  files: FileEntry[];
  /** The `[[secrets]]` the Keep fetches from key brokers before the workload starts; absent when none. */
  secrets?: SecretSpec[];
}

/** One descriptor of the table, with Enarx's defaults filled in (prot "tls", port 443, addr "::"). */
export type FileEntry = NormalizedFile;

/** Enarx's default descriptor table when `files` is absent. */
export const DEFAULT_FILES: FileEntry[] = [
  { kind: 'stdin', name: 'stdin' },
  { kind: 'stdout', name: 'stdout' },
  { kind: 'stderr', name: 'stderr' },
];

function invalid(message: string, cause?: unknown): ClientError {
  return new ClientError(
    'ERR_CONFIG_INVALID',
    `Cannot use the Enarx.toml: ${message}`,
    cause === undefined ? {} : { cause },
  );
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function checkKeys(table: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(table)) {
    if (!allowed.includes(key)) throw invalid(`unknown key "${key}" in ${where}`);
  }
}

function parseFile(entry: unknown, index: number): FileEntry {
  const where = `files[${index}]`;
  if (!isTable(entry)) throw invalid(`${where} is not a table`);
  const kind = entry['kind'];
  const name = entry['name'];
  if (name !== undefined && typeof name !== 'string') throw invalid(`${where}.name is not a string`);
  if (typeof name === 'string' && name.includes(':')) {
    throw invalid(`${where}.name holds ":", which separates the names in FD_NAMES`);
  }
  switch (kind) {
    case 'null':
    case 'stdin':
    case 'stdout':
    case 'stderr':
      checkKeys(entry, ['kind', 'name'], where);
      return normalizeOne(name === undefined ? { kind } : { kind, name }, where);
    case 'listen':
    case 'connect': {
      checkKeys(
        entry,
        kind === 'listen'
          ? ['kind', 'name', 'prot', 'port', 'addr']
          : ['kind', 'name', 'prot', 'port', 'host'],
        where,
      );
      const prot = entry['prot'] ?? 'tls';
      if (prot !== 'tcp' && prot !== 'tls') throw invalid(`${where}.prot must be "tcp" or "tls"`);
      const port = entry['port'] ?? 443;
      if (typeof port !== 'bigint' && typeof port !== 'number')
        throw invalid(`${where}.port is not an integer`);
      const p = Number(port);
      const low = kind === 'listen' ? 0 : 1;
      if (!Number.isInteger(p) || p < low || p > 65535) {
        throw invalid(`${where}.port must be ${low} to 65535`);
      }
      if (kind === 'listen') {
        if (name === undefined)
          throw invalid(`${where} is a listen file without a name (Enarx requires one)`);
        const addr = entry['addr'];
        if (addr !== undefined && typeof addr !== 'string') throw invalid(`${where}.addr is not a string`);
        return normalizeOne(
          addr === undefined ? { kind, name, prot, port: p } : { kind, name, prot, port: p, addr },
          where,
        );
      }
      const host = entry['host'];
      if (typeof host !== 'string' || host === '') throw invalid(`${where} is a connect file without a host`);
      return normalizeOne(
        name === undefined ? { kind, prot, port: p, host } : { kind, name, prot, port: p, host },
        where,
      );
    }
    default:
      throw invalid(`${where}.kind must be one of null, stdin, stdout, stderr, listen, connect`);
  }
}

function normalizeOne(spec: Parameters<typeof normalizeFiles>[0][number], where: string): FileEntry {
  try {
    return normalizeFiles([spec])[0]!;
  } catch (cause) {
    throw invalid(`${where}: ${reasonOf(cause)}`, cause);
  }
}

function parseSecret(entry: unknown, index: number): SecretSpec {
  const where = `secrets[${index}]`;
  if (!isTable(entry)) throw invalid(`${where} is not a table`);
  checkKeys(entry, ['name', 'broker', 'fingerprint', 'path', 'env'], where);
  const text = (key: string, required: boolean): string | undefined => {
    const v = entry[key];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string') throw invalid(`${where}.${key} must be a string`);
    return v;
  };
  const out: SecretSpec = {
    name: text('name', true)!,
    broker: text('broker', true)!,
    // Given as `donjon broker info` prints it or as openssl does (colons, upper case): kept in one form.
    fingerprint: text('fingerprint', true)!.toLowerCase().replace(/:/g, ''),
  };
  const path = text('path', false);
  const env = text('env', false);
  if (path !== undefined) out.path = path;
  if (env !== undefined) out.env = env;
  return out;
}

/** Parses an Enarx.toml document, rejecting unknown keys and wrong types with a message naming the place. */
export function parseEnarxToml(text: string): WorkloadConfig {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (cause) {
    const detail = cause instanceof TomlError ? cause.message.split('\n')[0] : String(cause);
    throw invalid(`not valid TOML: ${detail}`, cause);
  }
  checkKeys(doc, ['args', 'env', 'files', 'steward', 'secrets'], 'the top level');
  const args = doc['args'] ?? [];
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string'))
    throw invalid('args must be an array of strings');
  const envTable = doc['env'] ?? {};
  if (!isTable(envTable)) throw invalid('env must be a table');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(envTable)) {
    if (typeof v !== 'string') throw invalid(`env.${k} must be a string`);
    env[k] = v;
  }
  const filesRaw = doc['files'];
  let files = DEFAULT_FILES;
  if (filesRaw !== undefined) {
    if (!Array.isArray(filesRaw)) throw invalid('files must be an array of tables');
    files = filesRaw.map(parseFile);
  }
  const steward = doc['steward'];
  if (steward !== undefined && typeof steward !== 'string') throw invalid('steward must be a URL string');
  const config: WorkloadConfig = { args: args as string[], env, files };
  const secretsRaw = doc['secrets'];
  if (secretsRaw !== undefined) {
    if (!Array.isArray(secretsRaw)) throw invalid('secrets must be an array of tables ([[secrets]])');
    const secrets = secretsRaw.map(parseSecret);
    try {
      checkSecrets(secrets);
    } catch (cause) {
      throw invalid(reasonOf(cause), cause);
    }
    for (const [i, s] of secrets.entries()) {
      if (s.env !== undefined && Object.hasOwn(env, s.env)) {
        throw invalid(`secrets[${i}].env ${s.env} is also set in env`);
      }
    }
    if (secrets.length > 0) config.secrets = secrets;
  }
  return config;
}

/**
 * Checks that a descriptor table is one a Keep can give a workload: at most 64 entries, at most one of
 * stdin (the one stdin stream), and listen names that tell the listeners apart.
 */
export function checkSupportedFiles(files: readonly FileEntry[]): void {
  if (files.length > 64) throw invalid(`${files.length} files is over the limit of 64`);
  if (files.filter((f) => f.kind === 'stdin').length > 1) {
    throw invalid('more than one stdin file: a workload has one standard input');
  }
  const names = new Set<string>();
  for (const [i, f] of files.entries()) {
    if (f.kind !== 'listen') continue;
    if (names.has(f.name)) throw invalid(`files[${i}]: two listen files are named ${f.name}`);
    names.add(f.name);
  }
}
