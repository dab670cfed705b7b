import { chmodSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createSimRoot,
  parseSimRoot,
  type SimRootMaterial,
  serializeSimRoot,
} from '../attestation/sim/index.ts';

/** A host's simulated AMD root of trust, as stored in its state directory. */
export interface StoredSimRoot {
  path: string;
  material: SimRootMaterial;
  fingerprint: string;
}

const FILE = 'sim-root.cbor';

/**
 * Loads this host's simulated ARK → ASK → VCEK chain and chip key, making it on first use. Making it takes
 * seconds (two RSA-4096 keys), so it happens once per state directory; concurrent first uses agree on one
 * root because the file is published with link(2), which fails when another process got there first.
 */
export async function loadOrCreateSimRoot(dir: string, onCreate?: () => void): Promise<StoredSimRoot> {
  const path = join(dir, FILE);
  try {
    const material = parseSimRoot(new Uint8Array(readFileSync(path)));
    return { path, material, fingerprint: material.fingerprint };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  onCreate?.();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const material = await createSimRoot();
  const tmp = join(dir, `.${FILE}.${process.pid}.${Date.now()}`);
  writeFileSync(tmp, serializeSimRoot(material), { mode: 0o600 });
  chmodSync(tmp, 0o600);
  try {
    linkSync(tmp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(tmp);
  }
  const stored = parseSimRoot(new Uint8Array(readFileSync(path)));
  return { path, material: stored, fingerprint: stored.fingerprint };
}
