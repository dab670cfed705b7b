/**
 * Refusals worded with the way forward: the exact flag or command that would proceed, and whether doing so
 * is safe. The area that refused knows why; only the command knows which flag its user can pass.
 */
import type { AttestationError } from '../attestation/index.ts';
import { isDonjonError } from '../lib/errors.ts';
import { CommandError } from './errors.ts';

/** The commands whose policy is this version's runtime unless --expect-measurement says otherwise. */
const MEASURING: ReadonlySet<string> = new Set(['run', 'deploy', 'keeps', 'proxy']);

/** The first error along `error`'s causes with `code`. */
function findCode(error: unknown, code: string): Error | undefined {
  const seen = new Set<unknown>();
  for (let e = error; typeof e === 'object' && e !== null && !seen.has(e); e = (e as Error).cause) {
    seen.add(e);
    if (isDonjonError(e, code)) return e;
  }
  return undefined;
}

/**
 * `error` reworded with what would proceed, or undefined when there is nothing to add. A simulated root the
 * policy did not opt into names `--trust-sim-root` with its fingerprint, `donjon host info` to compare it
 * with, and that this is for development only; a Keep runtime of another measurement (in `command`s that
 * take `--expect-measurement`) names the flag with that measurement, and when it is safe.
 */
export function withWayForward(error: unknown, command?: string): CommandError | undefined {
  // A runtime other than this version's: the commands that take --expect-measurement can name it.
  const policy = findCode(error, 'ERR_POLICY_VIOLATION') as AttestationError | undefined;
  const runtimeField = policy?.field === 'measurements' || policy?.field === 'mrEnclaves';
  if (policy && runtimeField && command !== undefined && MEASURING.has(command)) {
    const m = policy.value ?? 'HEX';
    const measure = policy.field === 'mrEnclaves' ? 'donjon measure --sgx' : 'donjon measure';
    return CommandError.rephrase(
      error,
      `${policy.message} (without --expect-measurement the policy allows this donjon version's runtime, which ` +
        `'${measure}' prints); a host running another donjon version is the usual cause. Use the same version ` +
        `as the host, or pass --expect-measurement ${m}, which is safe only if you trust the runtime that measures so`,
    );
  }
  const sim = findCode(error, 'ERR_SIMULATED_ROOT_NOT_TRUSTED') as AttestationError | undefined;
  if (sim) {
    const fp = sim.value ?? 'SHA256';
    return CommandError.rephrase(
      error,
      `${sim.message}. If this is your own development host, check that 'donjon host info' there prints this ` +
        `simulated root and pass --trust-sim-root ${fp}; that is safe for development only (simulated evidence ` +
        'proves which runtime runs, not that its memory is isolated), never for secrets',
    );
  }
  return undefined;
}
