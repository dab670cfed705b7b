// The first thing `donjon run` does when its embedded host will serve it, called by the command's entry
// (src/cli/loader.ts) before the CLI itself loads: start the Keep process. The Keep's start-up is a Node
// start of its own; begun here, it runs on another core while this process loads the rest, and the embedded
// host's Keep Loader adopts it.
import { parseArgs } from 'node:util';
import { spawnKeepEarly } from '../host/keepldr/spawn-keep.ts';
import { builtFile } from '../paths.ts';
import type { Limits } from '../protocol/messages.ts';
import { workloadOptions } from './flags.ts';
import { limitsFrom } from './units.ts';

/**
 * Starts the Keep the embedded host will be asked for by `donjon run ARGV`, when the flags alone say what it
 * is: no remote host, a backend the embedded host serves, no --publish, limits that parse. Does nothing
 * otherwise, nor when the flags are wrong: the command then says what is wrong and starts no Keep.
 */
export function startKeepAhead(argv: string[]): void {
  let values: ReturnType<typeof parse>['values'];
  let positionals: string[];
  try {
    ({ values, positionals } = parse(argv));
  } catch {
    return;
  }
  if (values.host !== undefined || process.env['DONJON_HOST'] !== undefined || values.help) return;
  if (!keepKnownFromFlags(values, positionals)) return;
  let configJson: string;
  try {
    // As the Keep Loader encodes the configuration of an embedded host's Keep (the adoption compares these
    // bytes; a test holds the two to each other), without loading the protocol's code to do it.
    configJson = keepAheadConfig(limitsFrom(values));
  } catch {
    return;
  }
  spawnKeepEarly(builtFile('keep.cjs'), configJson);
}

/**
 * Whether the flags alone say which Keep a run asks the embedded host for: a workload named, a backend the
 * embedded host serves (`nil` only with --insecure), and no --publish (whose names the workload's Enarx.toml
 * must have). The limits must parse too.
 */
export function keepKnownFromFlags<
  V extends { backend: string; insecure: boolean; publish: readonly string[] },
>(values: V, positionals: readonly string[]): values is V & { backend: 'sim' | 'sgx-sim' | 'nil' } {
  const { backend } = values;
  const served = backend === 'sim' || backend === 'sgx-sim' || (backend === 'nil' && values.insecure);
  return served && positionals.length > 0 && values.publish.length === 0;
}

/** The Keep configuration (argv[2]) of an embedded host's Keep with the tenant's `limits`. */
export function keepAheadConfig(limits: Limits): string {
  return JSON.stringify({ limits });
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: { ...workloadOptions, help: { type: 'boolean', short: 'h', default: false } },
    allowPositionals: true,
    strict: true,
  });
}
