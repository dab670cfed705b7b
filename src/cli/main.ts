// The donjon command.
import { categoryOf, isDonjonError } from '../lib/errors.ts';
import { packageVersion } from '../paths.ts';
import type { Invocation } from './args.ts';
import { EXIT, exitStatusOf, hostCodeOf, UsageError } from './errors.ts';
import { withWayForward } from './way-forward.ts';

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
  keep-pod  run one service replica as a Kubernetes container (the image's entrypoint)
  broker    run a key broker that releases secrets to attested Keeps, and manage it
  keeps     list, inspect, attach to and stop your Keeps on a Keep Manager
  known-hosts  list or forget the Keep Managers this user trusts (as ssh-keygen -R)
  push      publish a Wasm module to an OCI registry (optionally signed) and print its digest
  sign      sign a workload in an OCI registry with a cosign key
  keygen    make a signing key pair in cosign's format
  kube      print the Kubernetes objects that run a service as replicated Pods
  help      show help for a command

Run 'donjon help <command>' for a command's options.`;

interface Command {
  run: (argv: string[], invocation: Invocation) => Promise<number>;
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
    return { run: (argv, invocation) => m.attestCommand(argv, undefined, invocation), help: m.attestHelp };
  },
  measure: async () => {
    const m = await import('./measure.ts');
    return { run: m.measureCommand, help: m.measureHelp };
  },
  host: async () => {
    const m = await import('./host.ts');
    return { run: m.hostCommand, help: m.hostHelp };
  },
  'keep-pod': async () => {
    const m = await import('./keep-pod.ts');
    return { run: m.keepPodCommand, help: m.keepPodHelp };
  },
  broker: async () => {
    const m = await import('./broker.ts');
    return { run: m.brokerCommand, help: m.brokerHelp };
  },
  keeps: async () => {
    const m = await import('./keeps.ts');
    return { run: m.keepsCommand, help: m.keepsHelp };
  },
  'known-hosts': async () => {
    const m = await import('./known-hosts.ts');
    return { run: m.knownHostsCommand, help: m.knownHostsHelp };
  },
  platform: async () => {
    const m = await import('./platform.ts');
    return { run: (argv, invocation) => m.platformCommand(argv, { invocation }), help: m.platformHelp };
  },
  push: async () => {
    const m = await import('./push.ts');
    return { run: m.pushCommand, help: m.pushHelp };
  },
  sign: async () => {
    const m = await import('./sign.ts');
    return { run: m.signCommand, help: m.signHelp };
  },
  keygen: async () => {
    const m = await import('./keygen.ts');
    return { run: m.keygenCommand, help: m.keygenHelp };
  },
  kube: async () => {
    const m = await import('./kube.ts');
    return { run: m.kubeCommand, help: m.kubeHelp };
  },
};

/**
 * Reports an error on stderr: one line, never a stack trace; a JSON line when the command's own flags asked
 * for JSON. `hostCode` is the Keep Manager's or the Keep's own code when the error carries one.
 */
function report(error: unknown, json: boolean): void {
  // Anything but a Donjon error is a bug here, whatever code a library gave it.
  const code = isDonjonError(error) ? error.code : 'ERR_INTERNAL';
  const message = error instanceof Error ? error.message : String(error);
  const hostCode = hostCodeOf(error);
  if (json) {
    const event = {
      event: 'error',
      code,
      category: categoryOf(error),
      message,
      ...(hostCode ? { hostCode } : {}),
    };
    process.stderr.write(`${JSON.stringify(event)}\n`);
  } else process.stderr.write(`donjon: error: ${message}\n`);
}

async function main(argv: string[], invocation: Invocation): Promise<number> {
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
  try {
    return await command.run(rest, invocation);
  } catch (error) {
    throw withWayForward(error, name) ?? error;
  }
}

/** Resolves once everything written to `stream` so far has been handed to the system (or failed to be). */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) resolve();
    else stream.write('', () => resolve());
  });
}

/** Ends the process with `status`; at once, output flushed, when the command asked for it. */
async function finish(status: number): Promise<void> {
  process.exitCode = status;
  if (!invocation.exitWhenDone) return;
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(status);
}

const invocation: Invocation = { json: false };
main(process.argv.slice(2), invocation).then(
  (status) => finish(status),
  (error: unknown) => {
    report(error, invocation.json);
    return finish(exitStatusOf(error));
  },
);
