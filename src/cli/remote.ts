import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KeepManagerClient } from '../client/keepmgr-client.ts';
import { UsageError } from './errors.ts';
import { knownHost, knownHostsPath, rememberHost } from './known-hosts.ts';
import { dataDir } from './paths.ts';

export { remoteOptions } from './flags.ts';

export interface RemoteValues {
  host?: string | undefined;
  token?: string | undefined;
  'host-fingerprint'?: string | undefined;
}

/**
 * The origin of --host URL, or a usage error that says what was meant: a bare NAME:PORT (which `new URL`
 * either refuses or reads as a scheme) gets the `https://` a donjon host serves.
 */
export function hostUrl(url: string): string {
  if (!/^https?:\/\//i.test(url)) {
    const bare = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? undefined : `https://${url}`;
    throw new UsageError(
      `Cannot use --host ${url}: not an http(s) URL${bare ? `; did you mean --host ${bare}?` : ''}`,
    );
  }
  try {
    return new URL(url).origin;
  } catch {
    throw new UsageError(`Cannot use --host ${url}: not a URL`);
  }
}

/**
 * A client for the Keep Manager named by --host (or DONJON_HOST), authenticated by --token (or DONJON_TOKEN).
 * An https host must match --host-fingerprint, or the fingerprint remembered in the known-hosts file; a host
 * seen for the first time is trusted and remembered, with one notice, as SSH does.
 */
export function remoteClient(
  values: RemoteValues,
  note: (message: string) => void,
): KeepManagerClient | undefined {
  const url = values.host ?? process.env['DONJON_HOST'];
  if (url === undefined) return undefined;
  const token = values.token ?? process.env['DONJON_TOKEN'];
  const origin = hostUrl(url);
  if (values['host-fingerprint'] !== undefined && !/^[0-9a-f:]{64,95}$/i.test(values['host-fingerprint'])) {
    throw new UsageError(
      `Cannot read --host-fingerprint ${values['host-fingerprint']}: expected SHA-256 hex`,
    );
  }
  const known = values['host-fingerprint'] === undefined ? knownHost(origin) : undefined;
  const pinned = values['host-fingerprint'] ?? known?.fingerprint;
  // Every request opens its own connection: the first one trusts and remembers, the others only compare.
  let trustedNow: string | undefined;
  return new KeepManagerClient(url, {
    ...(token === undefined ? {} : { token }),
    trust:
      pinned !== undefined
        ? {
            fingerprint: pinned,
            pinnedBy: known
              ? `remembered in ${knownHostsPath()} line ${known.line}; if its certificate was replaced on purpose (ask its operator: donjon host info), forget the old one with: donjon known-hosts rm ${origin} (else do not: someone may be in the middle)`
              : 'given by --host-fingerprint',
          }
        : {
            onUnknownHost: (fp) => {
              if (trustedNow !== undefined) return fp === trustedNow;
              trustedNow = fp;
              rememberHost(origin, fp);
              note(
                `trusting ${origin} on first use (certificate SHA-256 ${fp}); remembered in ${knownHostsPath()}`,
              );
              return true;
            },
          },
  });
}

function secretPath(keepId: string): string {
  if (!/^[0-9a-f]{1,64}$/.test(keepId)) throw new UsageError(`Cannot use Keep id ${keepId}: not a Keep id`);
  return join(dataDir(), 'keeps', `${keepId}.secret`);
}

/** Keeps the secret that lets this user attach to a Keep's workload again. */
export function saveAttachSecret(keepId: string, secret: Uint8Array): void {
  mkdirSync(join(dataDir(), 'keeps'), { recursive: true, mode: 0o700 });
  writeFileSync(secretPath(keepId), Buffer.from(secret).toString('hex'), { mode: 0o600 });
}

/** The attach secret saved for a Keep, if this user deployed it. */
export function loadAttachSecret(keepId: string): Uint8Array | undefined {
  try {
    const hex = readFileSync(secretPath(keepId), 'utf8').trim();
    return /^[0-9a-f]{64}$/.test(hex) ? new Uint8Array(Buffer.from(hex, 'hex')) : undefined;
  } catch {
    return undefined;
  }
}
