// The workload's `[[secrets]]`, on the Keep's side: before the workload starts, the Keep asks the host for a
// plain TCP connection to each broker (a CONNECT stream, as for a `connect` file: the Keep has no network of
// its own), runs TLS over it pinned to the fingerprint of the configuration, attests with evidence from its own
// backend whose report_data binds the broker's nonce, the Keep's key and the workload's and configuration's
// digests, and opens each secret with its key. The secrets become read-only files of pre-opened directories
// or environment variables. The host relays TLS records it cannot read, and the configuration it cannot change
// is part of the digest the evidence binds, so it can point the Keep at no other broker.
import type { Duplex } from 'node:stream';
import { fetchSecrets } from '../broker/client.ts';
import { BrokerError } from '../broker/errors.ts';
import type { Tee } from '../broker/evidence.ts';
import { reasonOf } from '../lib/errors.ts';
import type { SecretSpec } from '../protocol/messages.ts';
import { brokerAddress, checkSecrets, secretFileOf } from '../protocol/secrets.ts';
import type { WasiTree } from '../wasi/index.ts';
import { carried, type KeepKey } from './certificates.ts';
import { KeepError } from './errors.ts';
import type { EvidenceSource } from './gramine.ts';
import type { KeepSockets } from './sockets.ts';

type MutableTree = { [name: string]: Uint8Array | MutableTree };

/** What fetching the secrets takes of the Keep. */
export interface SecretsContext {
  readonly key: KeepKey;
  readonly control: EvidenceSource;
  /** The workload's sockets: their CONNECT streams reach the broker through the host. */
  readonly sockets: KeepSockets;
  /** SHA-256 of the module. */
  readonly workload: Uint8Array;
  /** SHA-256 of the configuration (which holds the secrets' table). */
  readonly config: Uint8Array;
}

/** The secrets as the workload receives them. */
export interface OpenedSecrets {
  /** Read-only directories holding the `path` secrets, by guest path. */
  readonly preopens: Record<string, WasiTree>;
  /** The `env` secrets. */
  readonly env: Record<string, string>;
}

/** A deploy's secrets, checked: where each goes is known before any broker is asked. */
export interface SecretsPlan {
  /** Guest paths of the read-only directories the secrets' files make, in the order they are pre-opened. */
  readonly dirs: readonly string[];
  /** Fetches every secret; throws the broker's code (ERR_SECRET_DENIED, ERR_BROKER_UNREACHABLE, …). */
  fetch(ctx: SecretsContext): Promise<OpenedSecrets>;
}

function refuse(state: string, cause?: unknown): KeepError {
  return new KeepError(
    'ERR_DEPLOY_CONFIG_INVALID',
    `Cannot use the secrets: ${state}`,
    cause === undefined ? {} : { cause },
  );
}

/**
 * Checks a deploy's secrets against each other and against what else the workload is given: a secret's
 * folder must not be one of the pre-opened `dirs`, nor its variable one of the `env`. Throws
 * {@link KeepError} `ERR_DEPLOY_CONFIG_INVALID`.
 */
export function planSecrets(
  secrets: readonly SecretSpec[],
  preopens: Readonly<Record<string, WasiTree>>,
  env: Readonly<Record<string, string>>,
): SecretsPlan {
  try {
    checkSecrets(secrets);
  } catch (error) {
    throw refuse(reasonOf(error), error);
  }
  const dirs: string[] = [];
  for (const s of secrets) {
    if (s.env !== undefined && Object.hasOwn(env, s.env))
      throw refuse(`${s.env} is both in env and a secret`);
    if (s.path === undefined) continue;
    const { dir } = secretFileOf(s.path);
    if (Object.hasOwn(preopens, dir)) throw refuse(`${dir} is both a pre-opened directory and a secret's`);
    if (!dirs.includes(dir)) dirs.push(dir);
  }
  return { dirs, fetch: (ctx) => fetchAll(secrets, ctx) };
}

/** The KBS `tee` of the Keep's evidence; a Keep without evidence cannot be released anything. */
function teeOf(control: EvidenceSource): Tee {
  const kind = control.evidenceKind;
  if (kind === 'sev-snp') return 'snp';
  if (kind === 'tdx') return 'tdx';
  throw noEvidence();
}

function noEvidence(): BrokerError {
  return new BrokerError(
    'ERR_BROKER_TEE_UNSUPPORTED',
    'Cannot fetch the secrets: this Keep has no evidence a broker appraises (a nil Keep is released nothing)',
  );
}

/** A broker's error reworded to name the broker, with its code kept; anything else is unreachable. */
function fromBroker(url: string, error: unknown): BrokerError {
  const code = error instanceof BrokerError ? error.code : 'ERR_BROKER_UNREACHABLE';
  return new BrokerError(code, `Cannot fetch the secrets from ${url}: ${reasonOf(error)}`, { cause: error });
}

async function fetchAll(secrets: readonly SecretSpec[], ctx: SecretsContext): Promise<OpenedSecrets> {
  const tee = teeOf(ctx.control);
  // One attestation per broker and pinned identity; the names it is asked for, in the table's order.
  const groups = new Map<string, SecretSpec[]>();
  for (const s of secrets) {
    const key = `${s.fingerprint} ${s.broker}`;
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  const values = new Map<SecretSpec, Uint8Array>();
  for (const group of groups.values()) {
    const { broker, fingerprint } = group[0]!;
    const { host, port } = brokerAddress(broker);
    let stream: Duplex;
    try {
      const connected = await ctx.sockets.connect([
        { kind: 'connect', name: 'broker', prot: 'tcp', host, port },
      ]);
      stream = connected.get(0)!;
    } catch (error) {
      throw new BrokerError(
        'ERR_BROKER_UNREACHABLE',
        `Cannot fetch the secrets from ${broker}: the host could not connect (${reasonOf(error)})`,
        { cause: error },
      );
    }
    let got: Map<string, Uint8Array>;
    try {
      got = await fetchSecrets({
        stream,
        fingerprint,
        key: ctx.key.privateKey,
        evidence: async (reportData) => {
          const evidence = carried(await ctx.control.evidence(reportData));
          if (evidence === undefined) throw noEvidence();
          return evidence;
        },
        tee,
        workload: ctx.workload,
        config: ctx.config,
        secrets: [...new Set(group.map((s) => s.name))],
      });
    } catch (error) {
      throw fromBroker(broker, error);
    } finally {
      stream.destroy();
    }
    for (const s of group) values.set(s, got.get(s.name)!);
  }
  return place(secrets, values);
}

/** Puts each secret where the configuration says: a file of a read-only directory, or a variable. */
function place(secrets: readonly SecretSpec[], values: Map<SecretSpec, Uint8Array>): OpenedSecrets {
  const preopens: Record<string, MutableTree> = Object.create(null);
  const env: Record<string, string> = Object.create(null);
  for (const s of secrets) {
    const value = values.get(s)!;
    if (s.env !== undefined) {
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(value);
      } catch {
        throw refuse(`secret ${s.name} is not UTF-8 text, so it cannot be the variable ${s.env}; use path`);
      }
      if (text.includes('\0'))
        throw refuse(`secret ${s.name} holds NUL, so it cannot be the variable ${s.env}`);
      env[s.env] = text;
    } else {
      const { dir, file } = secretFileOf(s.path!);
      preopens[dir] ??= Object.create(null) as MutableTree;
      // defineProperty: a file named "__proto__" is an ordinary entry.
      Object.defineProperty(preopens[dir]!, file, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  return { preopens, env: { ...env } };
}
