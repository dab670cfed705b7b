// What push, sign, keygen, run and deploy share about registries: the flags, the keys and their
// passphrase, and the exit status of a registry error.

import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { checkSupportedFiles, parseEnarxToml, type WorkloadConfig } from '../client/index.ts';
import { isWorkloadReference, pullWorkloadReference } from '../client/workload-ref.ts';
import {
  type Credentials,
  decryptPrivateKey,
  dockerConfigCredentials,
  formatReference,
  parseCredentials,
  type Reference,
  RegistryClient,
  RegistryError,
  readPublicKey,
  type TrustedKey,
} from '../registry/index.ts';
import { CliError, UsageError } from './errors.ts';
import { Reporter } from './report.ts';

export { pullHelp, pullOptions, registryOptions } from './flags.ts';

interface RegistryValues {
  'plain-http': boolean;
  'registry-auth'?: string | undefined;
}

/** The credentials of `--registry-auth`, else Docker's config file entry for the registry. */
export function credentialsFor(values: RegistryValues, registry: string): Credentials | undefined {
  const explicit = values['registry-auth'];
  return explicit === undefined ? dockerConfigCredentials(registry) : parseCredentials(explicit);
}

/** A client for `ref`'s registry under the command's flags. */
export function clientFor(values: RegistryValues, ref: Reference): RegistryClient {
  const credentials = credentialsFor(values, ref.registry);
  return new RegistryClient(ref.registry, {
    plainHttp: values['plain-http'],
    ...(credentials === undefined ? {} : { credentials }),
  });
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(
      `Cannot read ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
}

/** Reads each `--verify-key` file as a PEM public key. */
export function readVerifyKeys(paths: readonly string[]): TrustedKey[] {
  return paths.map((path) => ({ name: basename(path), key: readPublicKey(readText(path, 'key'), path) }));
}

/** Reads a passphrase from the terminal without echoing it. */
async function prompt(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  let text = '';
  try {
    return await new Promise<string>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        for (const ch of chunk.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData);
            resolve(text);
            return;
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            reject(new CliError('ERR_INTERRUPTED', 'Cannot read the key passphrase: interrupted'));
            return;
          }
          if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
          else text += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
}

/**
 * The passphrase of a cosign key: `COSIGN_PASSWORD` when set (even empty, as cosign reads it), else asked
 * on the terminal (twice when `confirm`, for a new key); without a terminal it is a usage error.
 */
export async function passphrase(confirm: boolean): Promise<string> {
  const fromEnv = process.env.COSIGN_PASSWORD;
  if (fromEnv !== undefined) return fromEnv;
  if (!process.stdin.isTTY) {
    throw new RegistryError(
      'ERR_KEY_PASSPHRASE',
      'Cannot read the key passphrase: no terminal to ask on; set COSIGN_PASSWORD',
    );
  }
  const first = await prompt('Enter password for private key: ');
  if (!confirm) return first;
  const second = await prompt('Enter password for private key again: ');
  if (first !== second) throw new UsageError('Cannot make the key: the two passwords differ');
  return first;
}

/** Reads and opens a cosign private key file (`--sign-key`, `--key`). */
export async function readSigningKey(path: string): Promise<KeyObject> {
  const pem = readText(path, 'key');
  return decryptPrivateKey(pem, await passphrase(false), path);
}

/** Reads and checks an Enarx.toml's text (for `push --config`). */
export function checkEnarxToml(text: string, what: string): WorkloadConfig {
  try {
    const config = parseEnarxToml(text);
    checkSupportedFiles(config.files);
    return config;
  } catch (error) {
    throw new UsageError(`Cannot use ${what}: ${(error as Error).message}`);
  }
}

interface PullValues extends RegistryValues {
  'verify-key': string[];
  'allow-unsigned': boolean;
  quiet?: boolean;
  json?: boolean;
}

/** A workload pulled for `run` or `deploy`: its module, and its Enarx.toml when it carries one. */
export interface PulledArgument {
  readonly wasm: Uint8Array;
  readonly config?: WorkloadConfig;
  /** The reference pinned to the manifest digest the tag resolved to. */
  readonly reference?: string;
}

/**
 * When the WORKLOAD argument (`positionals[0]`) is a registry reference rather than a file, pulls it and
 * checks its signature under `--verify-key` (or accepts it under `--allow-unsigned`); else undefined, and
 * the argument is read as a file as before. Registry errors end the command with their category's status.
 */
export async function pullArgument(
  values: PullValues,
  positionals: readonly string[],
): Promise<PulledArgument | undefined> {
  const argument = positionals[0];
  if (argument === undefined || !isWorkloadReference(argument)) return undefined;
  if (values['verify-key'].length === 0 && !values['allow-unsigned']) {
    throw new RegistryError(
      'ERR_WORKLOAD_UNSIGNED',
      `Cannot trust ${argument}: no --verify-key to check its signature with; give one, or --allow-unsigned`,
    );
  }
  const reporter = new Reporter({ quiet: values.quiet === true, json: values.json === true });
  const keys = readVerifyKeys(values['verify-key']);
  const explicit = values['registry-auth'];
  const pulled = await pullWorkloadReference(argument, {
    verifyKeys: keys,
    allowUnsigned: values['allow-unsigned'],
    plainHttp: values['plain-http'],
    ...(explicit === undefined ? {} : { credentials: parseCredentials(explicit) }),
    onNote: (m) => reporter.note(m),
  });
  return {
    wasm: pulled.wasm,
    reference: formatReference(pulled.reference),
    ...(pulled.enarxToml === undefined
      ? {}
      : { config: checkEnarxToml(pulled.enarxToml, `the Enarx.toml of ${argument}`) }),
  };
}
