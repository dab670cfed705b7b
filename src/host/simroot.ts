import { createHash } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createSimIntelPlatform,
  createSimRoot,
  parseSimIntelPlatform,
  parseSimRoot,
  type SimIntelPlatform,
  type SimRootMaterial,
  serializeSimIntelPlatform,
  serializeSimRoot,
} from '../attestation/sim/index.ts';

/** A host's simulated AMD root of trust, as stored in its state directory. */
export interface StoredSimRoot {
  path: string;
  material: SimRootMaterial;
  fingerprint: string;
}

/** A host's simulated Intel SGX platform, as stored in its state directory beside the simulated AMD root. */
export interface StoredSimSgxRoot {
  path: string;
  platform: SimIntelPlatform;
  fingerprint: string;
}

/** Material already checked in this process, by the SHA-256 of its bytes. */
const checked = new Map<string, SimRootMaterial>();

/**
 * {@link parseSimRoot}, once per content in this process: an embedded host reads its root twice (its
 * fingerprint for the client, the Keep Loader's backend), and each check verifies a certificate chain and
 * re-derives a key. The same bytes give the same material.
 */
export function parseSimRootOnce(bytes: Uint8Array): SimRootMaterial {
  const digest = createHash('sha256').update(bytes).digest('hex');
  let material = checked.get(digest);
  if (material === undefined) {
    material = parseSimRoot(bytes);
    checked.set(digest, material);
  }
  return material;
}

const FILE = 'sim-root.cbor';
const SGX_FILE = 'sim-sgx-root.json';

/**
 * Reads `dir/file` with `parse`, making it with `make` on first use. Concurrent first uses agree on one file
 * because it is published with link(2), which fails when another process got there first.
 */
async function loadOrCreate<T>(
  dir: string,
  file: string,
  parse: (bytes: Uint8Array) => T,
  make: () => Promise<Uint8Array>,
  onCreate?: () => void,
): Promise<{ path: string; value: T }> {
  const path = join(dir, file);
  try {
    return { path, value: parse(new Uint8Array(readFileSync(path))) };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  onCreate?.();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const bytes = await make();
  const tmp = join(dir, `.${file}.${process.pid}.${Date.now()}`);
  writeFileSync(tmp, bytes, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  try {
    linkSync(tmp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(tmp);
  }
  return { path, value: parse(new Uint8Array(readFileSync(path))) };
}

/**
 * Loads this host's simulated ARK → ASK → VCEK chain and chip key, making it on first use. Making it takes
 * seconds (two RSA-4096 keys), so it happens once per state directory.
 */
/** The path of the simulated root kept in `dir`, if there is one (nothing is read or checked). */
export function existingSimRootPath(dir: string): string | undefined {
  const path = join(dir, FILE);
  return existsSync(path) ? path : undefined;
}

export async function loadOrCreateSimRoot(dir: string, onCreate?: () => void): Promise<StoredSimRoot> {
  const { path, value } = await loadOrCreate(
    dir,
    FILE,
    parseSimRootOnce,
    async () => serializeSimRoot(await createSimRoot()),
    onCreate,
  );
  return { path, material: value, fingerprint: value.fingerprint };
}

/**
 * Loads this host's simulated Intel SGX platform (root, PCK chain, TCB signing key, quoting enclave key),
 * making it on first use; it sits beside the simulated AMD root and is as quick to make as a few P-256 keys.
 */
export async function loadOrCreateSimSgxRoot(dir: string, onCreate?: () => void): Promise<StoredSimSgxRoot> {
  const { path, value } = await loadOrCreate(
    dir,
    SGX_FILE,
    parseSimIntelPlatform,
    async () => serializeSimIntelPlatform(createSimIntelPlatform()),
    onCreate,
  );
  return { path, platform: value, fingerprint: value.fingerprint };
}
