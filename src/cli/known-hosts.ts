/**
 * The Keep Managers this user trusts by their certificate's SHA-256, as SSH keeps known_hosts: one line per
 * host, `ORIGIN FINGERPRINT`, in `known_hosts` of the data directory. A host seen for the first time is
 * remembered once; a host whose certificate changed is refused with the file, the line and the command that
 * forgets the old pin (`donjon known-hosts rm HOST`, as `ssh-keygen -R` does).
 */
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Invocation, parseCommand } from './args.ts';
import { EXIT, UsageError } from './errors.ts';
import { dataDir } from './paths.ts';

export const knownHostsHelp = `Usage: donjon known-hosts <ls|rm> [HOST] [--json]

The Keep Managers this user trusts by their TLS certificate's SHA-256 (trusted on first use, as SSH does).

  ls         list them: host, fingerprint, and the line of the file that holds each
  rm HOST    forget HOST (https://NAME:PORT, or NAME:PORT), e.g. after its certificate was replaced on
             purpose; the next connection trusts it on first use again

Exit status: 0, or 2 for a usage error or a host that is not known.`;

/** One remembered host. */
export interface KnownHost {
  origin: string;
  fingerprint: string;
  /** 1-based line number in the file. */
  line: number;
}

/** Where the known hosts are kept. */
export function knownHostsPath(): string {
  return join(dataDir(), 'known_hosts');
}

function readLines(): string[] {
  try {
    return readFileSync(knownHostsPath(), 'utf8').split('\n');
  } catch {
    return [];
  }
}

/** Every remembered host, in file order. */
export function knownHosts(): KnownHost[] {
  const hosts: KnownHost[] = [];
  readLines().forEach((text, i) => {
    const [origin, fingerprint] = text.trim().split(/\s+/);
    if (origin && fingerprint && !origin.startsWith('#')) hosts.push({ origin, fingerprint, line: i + 1 });
  });
  return hosts;
}

/** The first line remembered for `origin`, if any. */
export function knownHost(origin: string): KnownHost | undefined {
  return knownHosts().find((h) => h.origin === origin);
}

/** Remembers `origin` with `fingerprint`, unless that very line is already there. */
export function rememberHost(origin: string, fingerprint: string): void {
  if (knownHosts().some((h) => h.origin === origin && h.fingerprint === fingerprint)) return;
  mkdirSync(dataDir(), { recursive: true, mode: 0o700 });
  appendFileSync(knownHostsPath(), `${origin} ${fingerprint}\n`, { mode: 0o600 });
}

/** The origin a user means by HOST: a URL, or NAME:PORT (https is the only scheme that pins). */
export function hostOrigin(host: string): string {
  try {
    const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(host) ? host : `https://${host}`);
    return url.origin;
  } catch {
    throw new UsageError(`Cannot read host ${host}: expected https://NAME:PORT or NAME:PORT`);
  }
}

/** Forgets every line of `origin`; returns how many there were. */
export function forgetHost(origin: string): number {
  const lines = readLines();
  const kept = lines.filter((text) => text.trim().split(/\s+/)[0] !== origin);
  const removed = lines.length - kept.length;
  if (removed > 0) writeFileSync(knownHostsPath(), kept.join('\n'), { mode: 0o600 });
  return removed;
}

/** `donjon known-hosts ls|rm HOST`. */
export async function knownHostsCommand(argv: string[], invocation?: Invocation): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb !== 'ls' && verb !== 'rm') {
    process.stderr.write(`${knownHostsHelp}\n`);
    return EXIT.usage;
  }
  const { values, positionals } = parseCommand(rest, {
    command: 'known-hosts',
    positionals: true,
    invocation,
    options: { json: { type: 'boolean', default: false } },
  });
  if (verb === 'ls') {
    const hosts = knownHosts();
    if (values.json) process.stdout.write(`${JSON.stringify(hosts)}\n`);
    else if (hosts.length === 0) process.stdout.write(`no known hosts (${knownHostsPath()})\n`);
    else {
      const lines = hosts.map((h) => `${h.origin}  ${h.fingerprint}  ${knownHostsPath()}:${h.line}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    return EXIT.ok;
  }
  const host = positionals[0];
  if (host === undefined || positionals.length > 1) {
    throw new UsageError('Cannot run donjon known-hosts rm: give one HOST (see donjon help known-hosts)');
  }
  const origin = hostOrigin(host);
  const removed = forgetHost(origin);
  if (removed === 0) throw new UsageError(`Cannot forget ${origin}: it is not in ${knownHostsPath()}`);
  if (values.json) process.stdout.write(`${JSON.stringify({ removed: origin, lines: removed })}\n`);
  else
    process.stdout.write(
      `forgot ${origin} (${removed} line${removed === 1 ? '' : 's'} of ${knownHostsPath()})\n`,
    );
  return EXIT.ok;
}
