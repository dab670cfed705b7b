import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
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

/** The first line of a stamp: what it is, and the version of the checks it vouches for. */
const STAMP_FORMAT = 'donjon sim-root checked v1';

/**
 * The stamp beside a simulated root stored at `path`: it names, by SHA-256, the content that last passed
 * {@link parseSimRoot}'s checks there. It is as private as the root (0600, in the same folder), and whoever can
 * write it can write the root itself: it vouches for nothing its reader could not check again.
 */
function stampPath(path: string): string {
  return `${path}.checked`;
}

function stampOf(digest: string): string {
  return `${STAMP_FORMAT}\n${digest}\n`;
}

/**
 * {@link parseSimRoot}, with its checks (a certificate chain verified, a key re-derived: a few milliseconds on
 * every Keep's start) made once per content: once per process, and, given the root's `path`, once for
 * every process reading it there, through a stamp beside it naming the SHA-256 of the content checked.
 * Other bytes, or no stamp, are checked whole (and stamped, when the folder is writable). The same bytes give
 * the same material.
 */
export function parseSimRootOnce(bytes: Uint8Array, path?: string): SimRootMaterial {
  const digest = createHash('sha256').update(bytes).digest('hex');
  let material = checked.get(digest);
  if (material !== undefined) return material;
  let stamped = false;
  if (path !== undefined) {
    try {
      stamped = readFileSync(stampPath(path), 'utf8') === stampOf(digest);
    } catch {
      // No stamp: checked whole below.
    }
  }
  material = parseSimRoot(bytes, { checkedBefore: stamped });
  if (path !== undefined && !stamped) writeStamp(path, digest);
  checked.set(digest, material);
  return material;
}

/** Writes the stamp of `digest` beside the root at `path`, whole or not at all; a read-only folder keeps none. */
function writeStamp(path: string, digest: string): void {
  const tmp = `${stampPath(path)}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, stampOf(digest), { mode: 0o600 });
    renameSync(tmp, stampPath(path));
  } catch {
    rmSync(tmp, { force: true });
  }
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
  parse: (bytes: Uint8Array, path: string) => T,
  make: () => Promise<Uint8Array>,
  onCreate?: () => void,
): Promise<{ path: string; value: T }> {
  const path = join(dir, file);
  try {
    return { path, value: parse(new Uint8Array(readFileSync(path)), path) };
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
  return { path, value: parse(new Uint8Array(readFileSync(path)), path) };
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
