/**
 * Refusals worded with the way forward: the exact flag or command that would proceed, and whether doing so
 * is safe. The area that refused knows why; only the command knows which flag its user can pass.
 */
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
  const policy = findCode(error, 'ERR_POLICY_VIOLATION') as (Error & { field?: string }) | undefined;
  if (policy?.field === 'measurements' && command !== undefined && MEASURING.has(command)) {
    const m = /\b([0-9a-f]{96})\b/.exec(policy.message)?.[1] ?? 'HEX';
    return CommandError.rephrase(
      error,
      `Cannot accept the Keep: it runs a runtime measured ${m}, which the policy does not allow (without ` +
        "--expect-measurement it allows this donjon version's, which 'donjon measure' prints); a host running " +
        'another donjon version is the usual cause. Use the same version as the host, or pass ' +
        `--expect-measurement ${m}, which is safe only if you trust the runtime that measures so`,
    );
  }
  const sim = findCode(error, 'ERR_SIMULATED_ROOT_NOT_TRUSTED');
  if (sim) {
    const fp = /\b([0-9a-f]{64})\b/.exec(sim.message)?.[1] ?? 'SHA256';
    return CommandError.rephrase(
      error,
      `Cannot trust the simulated ARK ${fp}: the Keep's evidence is signed by a simulated root, not by AMD. ` +
        `If this is your own development host, check that 'donjon host info' there prints this simulated root ` +
        `and pass --trust-sim-root ${fp}; that is safe for development only (simulated evidence proves which ` +
        'runtime runs, not that its memory is isolated), never for secrets',
    );
  }
  return undefined;
}
