import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { builtFile } from '../paths.ts';

/**
 * The measurement of this version's Keep runtime: SHA-384 over the exact bytes of the runtime bundle, which is
 * what the simulated secure processor measures when it launches a Keep. A client computes it from its own copy,
 * so a Keep that runs other code does not match.
 */
export function measureRuntime(path: string = builtFile('keep.cjs')): string {
  return createHash('sha384').update(readFileSync(path)).digest('hex');
}

/**
 * The MRENCLAVE of this version's Keep runtime on `sgx-sim`: SHA-256 over the exact bytes of the runtime
 * bundle, which is what the simulated quoting enclave reports for a Keep its Keep Loader launched.
 */
export function measureSgxRuntime(path: string = builtFile('keep.cjs')): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}
