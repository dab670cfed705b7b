import { type PlatformProbeOptions, platformInfo } from '../host/index.ts';
import { type Invocation, parseCommand } from './args.ts';
import { UsageError } from './errors.ts';

/** Help text of `donjon platform`. */
export const platformHelp = `Usage: donjon platform info [--json]

Shows which backends this host can offer Keeps on and, for each it cannot, why:
  sim, sgx-sim, nil   always available (sim and sgx-sim are simulated SEV-SNP and SGX: no isolation)
  cvm                 needs configfs-tsm (/sys/kernel/config/tsm/report) with an sev_guest or tdx_guest
                      provider, and root
  snp, sgx            their devices are reported on; this version does not offer them yet

Options:
  --json   print {"backends":[{"name","available","reason"?,"provider"?}]} instead of a table`;

/** What the command writes to and probes; the real machine and stdout unless a test says otherwise. */
export interface PlatformCommandContext {
  probe?: PlatformProbeOptions;
  write?: (text: string) => void;
  /** Told whether --json was given. */
  invocation?: Invocation | undefined;
}

/** `donjon platform info [--json]`: prints the backends this host can offer, with reasons for the others. */
export async function platformCommand(argv: string[], context: PlatformCommandContext = {}): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    command: 'platform',
    options: { json: { type: 'boolean' } },
    positionals: true,
    invocation: context.invocation,
  });
  const [sub, ...extra] = positionals;
  if (sub !== 'info') {
    throw new UsageError(
      sub === undefined
        ? 'Cannot run platform: name a subcommand (info)'
        : `Cannot run platform ${sub}: no such subcommand (info)`,
    );
  }
  if (extra.length > 0) throw new UsageError(`Cannot run platform info: unexpected argument '${extra[0]}'`);
  const write = context.write ?? ((text: string) => process.stdout.write(text));
  const info = await platformInfo(context.probe);
  if (values.json) {
    write(`${JSON.stringify(info)}\n`);
    return 0;
  }
  const width = Math.max(...info.backends.map((b) => b.name.length));
  for (const b of info.backends) {
    const state = b.available
      ? `available${b.provider ? ` (${b.provider})` : ''}`
      : `unavailable: ${b.reason}`;
    write(`${b.name.padEnd(width)}  ${state}\n`);
  }
  return 0;
}
