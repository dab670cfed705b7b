// The donjon command.
import { packageVersion } from '../paths.ts';
import { attestCommand, attestHelp } from './attest.ts';
import { CommandError, EXIT, UsageError } from './errors.ts';
import { hostCommand, hostHelp } from './host.ts';
import { keepsCommand, keepsHelp } from './keeps.ts';
import { measureCommand, measureHelp } from './measure.ts';
import { platformCommand, platformHelp } from './platform.ts';
import { runCommand, runHelp } from './run.ts';

const HELP = `Usage: donjon <command> [options]

Deploy WebAssembly workloads into attested Trusted Execution Environments (Keeps).

Commands:
  run       deploy a workload into a fresh attested Keep and stream its output
  attest    verify attestation evidence (SEV-SNP reports, DCAP quotes) offline
  measure   print the measurement of this version's Keep runtime, or an SNP launch digest
  platform  show which backends this host can offer, and why not the others
  host      run a Keep Manager for tenants
  keeps     list, inspect, attach to and stop your Keeps on a Keep Manager
  help      show help for a command

Run 'donjon help <command>' for a command's options.`;

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<number>; help: string }> = {
  run: { run: runCommand, help: runHelp },
  attest: { run: (argv) => attestCommand(argv), help: attestHelp },
  measure: { run: measureCommand, help: measureHelp },
  host: { run: hostCommand, help: hostHelp },
  keeps: { run: keepsCommand, help: keepsHelp },
  platform: { run: platformCommand, help: platformHelp },
};

function fail(code: string, message: string, json: boolean): void {
  if (json) process.stderr.write(`${JSON.stringify({ event: 'error', code, message })}\n`);
  else process.stderr.write(`donjon: error: ${message}\n`);
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help') {
    process.stdout.write(`${HELP}\n`);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${packageVersion()}\n`);
    return EXIT.ok;
  }
  if (name === 'help') {
    const topic = rest[0];
    const command = topic === undefined ? undefined : COMMANDS[topic];
    process.stdout.write(`${command ? command.help : HELP}\n`);
    return EXIT.ok;
  }
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`Cannot run '${name}': no such command (see donjon --help)`);
  const wantsHelp = rest.findIndex((a) => a === '-h' || a === '--help');
  const dashDash = rest.indexOf('--');
  if (wantsHelp !== -1 && (dashDash === -1 || wantsHelp < dashDash)) {
    process.stdout.write(`${command.help}\n`);
    return EXIT.ok;
  }
  return command.run(rest);
}

const argv = process.argv.slice(2);
const json = argv.includes('--json');
main(argv).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof CommandError) {
      fail(error.code, `${error.message}`, json);
      process.exitCode = error.exitCode;
    } else if (
      error instanceof UsageError ||
      (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      fail('ERR_USAGE', (error as Error).message, json);
      process.exitCode = EXIT.usage;
    } else {
      const e = error as { code?: unknown; message?: unknown };
      fail(typeof e.code === 'string' ? e.code : 'ERR_INTERNAL', String(e.message ?? error), json);
      process.exitCode = EXIT.failure;
    }
  },
);
