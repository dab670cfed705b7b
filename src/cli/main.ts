// The donjon command.
import { packageVersion } from '../paths.ts';
import { CommandError, EXIT, UsageError } from './errors.ts';

const HELP = `Usage: donjon <command> [options]

Deploy WebAssembly workloads into attested Trusted Execution Environments (Keeps).

Commands:
  run       deploy a workload into a fresh attested Keep and stream its output
  deploy    deploy a long-running workload (a service) into a Keep and print its ports
  proxy     expose a verified confidential service on a plain local port
  attest    verify attestation evidence (SEV-SNP reports, DCAP quotes) offline
  measure   print the measurement of this version's Keep runtime, or an SNP launch digest
  platform  show which backends this host can offer, and why not the others
  host      run a Keep Manager for tenants
  broker    run a key broker that releases secrets to attested Keeps, and manage it
  keeps     list, inspect, attach to and stop your Keeps on a Keep Manager
  help      show help for a command

Run 'donjon help <command>' for a command's options.`;

interface Command {
  run: (argv: string[]) => Promise<number>;
  help: string;
}

// Each command is loaded only when it runs: a `run` does not pay for parsing the daemon or the verifier CLI.
const COMMANDS: Record<string, () => Promise<Command>> = {
  run: async () => {
    const m = await import('./run.ts');
    return { run: m.runCommand, help: m.runHelp };
  },
  deploy: async () => {
    const m = await import('./deploy.ts');
    return { run: m.deployCommand, help: m.deployHelp };
  },
  proxy: async () => {
    const m = await import('./proxy.ts');
    return { run: m.proxyCommand, help: m.proxyHelp };
  },
  attest: async () => {
    const m = await import('./attest.ts');
    return { run: (argv) => m.attestCommand(argv), help: m.attestHelp };
  },
  measure: async () => {
    const m = await import('./measure.ts');
    return { run: m.measureCommand, help: m.measureHelp };
  },
  host: async () => {
    const m = await import('./host.ts');
    return { run: m.hostCommand, help: m.hostHelp };
  },
  broker: async () => {
    const m = await import('./broker.ts');
    return { run: m.brokerCommand, help: m.brokerHelp };
  },
  keeps: async () => {
    const m = await import('./keeps.ts');
    return { run: m.keepsCommand, help: m.keepsHelp };
  },
  platform: async () => {
    const m = await import('./platform.ts');
    return { run: m.platformCommand, help: m.platformHelp };
  },
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
    const load = topic === undefined ? undefined : COMMANDS[topic];
    process.stdout.write(`${load ? (await load()).help : HELP}\n`);
    return EXIT.ok;
  }
  const load = COMMANDS[name];
  if (!load) throw new UsageError(`Cannot run '${name}': no such command (see donjon --help)`);
  const command = await load();
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
