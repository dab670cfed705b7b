import { parse, TomlError } from 'smol-toml';
import { ClientError } from './errors.ts';

/** A workload's configuration in Enarx.toml's schema: `args`, `env`, `files` (and Enarx's `steward`). */
export interface WorkloadConfig {
  args: string[];
  env: Record<string, string>;
  files: FileEntry[];
}

export type FileEntry =
  | { kind: 'null' | 'stdin' | 'stdout' | 'stderr'; name?: string }
  | { kind: 'listen'; prot: 'tcp' | 'tls'; port: number; addr?: string; name?: string }
  | { kind: 'connect'; prot: 'tcp' | 'tls'; port: number; host: string; name?: string };

/** Enarx's default descriptor table when `files` is absent. */
export const DEFAULT_FILES: FileEntry[] = [{ kind: 'stdin' }, { kind: 'stdout' }, { kind: 'stderr' }];

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
  switch (kind) {
    case 'null':
    case 'stdin':
    case 'stdout':
    case 'stderr':
      checkKeys(entry, ['kind', 'name'], where);
      return name === undefined ? { kind } : { kind, name };
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
      const port = entry['port'];
      if (typeof port !== 'bigint' && typeof port !== 'number') throw invalid(`${where}.port is required`);
      const p = Number(port);
      if (!Number.isInteger(p) || p < 1 || p > 65535) throw invalid(`${where}.port must be 1 to 65535`);
      if (kind === 'listen') {
        const addr = entry['addr'];
        if (addr !== undefined && typeof addr !== 'string') throw invalid(`${where}.addr is not a string`);
        const f: FileEntry = { kind, prot, port: p };
        if (addr !== undefined) f.addr = addr;
        if (name !== undefined) f.name = name;
        return f;
      }
      const host = entry['host'] ?? 'localhost';
      if (typeof host !== 'string') throw invalid(`${where}.host is not a string`);
      const f: FileEntry = { kind, prot, port: p, host };
      if (name !== undefined) f.name = name;
      return f;
    }
    default:
      throw invalid(`${where}.kind must be one of null, stdin, stdout, stderr, listen, connect`);
  }
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
  checkKeys(doc, ['args', 'env', 'files', 'steward'], 'the top level');
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
  return { args: args as string[], env, files };
}

/**
 * Checks that a descriptor table is one this version can give a workload: stdin, stdout and stderr (or null)
 * on descriptors 0, 1 and 2. Sockets are not supported yet.
 */
export function checkSupportedFiles(files: readonly FileEntry[]): void {
  for (const [i, f] of files.entries()) {
    if (f.kind === 'listen' || f.kind === 'connect') {
      throw invalid(`files[${i}] is a ${f.kind} socket: sockets are not supported yet`);
    }
  }
  if (files.length > 3)
    throw invalid('more than three files: only stdin, stdout and stderr are supported yet');
  const expected = ['stdin', 'stdout', 'stderr'];
  for (const [i, f] of files.entries()) {
    if (f.kind !== 'null' && f.kind !== expected[i]) {
      throw invalid(`files[${i}] is ${f.kind}: descriptor ${i} can only be ${expected[i]} or null yet`);
    }
  }
}
