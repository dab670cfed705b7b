import {
  attachWorkload,
  type KeepInfo,
  measureRuntime,
  measureSgxRuntime,
  type RunEvent,
} from '../client/index.ts';
import { type Invocation, parseCommand } from './args.ts';
import { CommandError, EXIT, UsageError } from './errors.ts';
import { loadAttachSecret, type RemoteValues, remoteClient, remoteOptions } from './remote.ts';
import { Reporter } from './report.ts';
import { exitCodeOf, hexList, workloadPolicy } from './workload.ts';

export const keepsHelp = `Usage: donjon keeps <ls|inspect|logs|attach|stop|rm> [ID] --host URL --token TOKEN [options]

Manages your Keeps on a Keep Manager (--host or DONJON_HOST, --token or DONJON_TOKEN).

  ls              list your Keeps
  inspect ID      show one Keep (with the host pids of its Keep Loader and Keep)
  logs ID         its lifecycle events (never workload output)
  attach ID       re-attach to its workload's stdio through a fresh attested channel
  stop ID         stop it (its workload is killed)
  rm ID           remove an ended Keep's record

Options:
  --host-fingerprint SHA256   the host's TLS certificate fingerprint
  --trust-sim-root SHA256     accept evidence signed by this simulated root (attach; repeatable)
  --expect-measurement HEX    allowed runtime measurement (attach; default this version's)
  --json                      machine-readable output
  --stop-on-interrupt         (attach) Ctrl-C stops the Keep; without it, Ctrl-C only detaches
  -q, --quiet                 (attach) print only the workload's output

Exit status: 0 (attach: the workload's own, or 130 after Ctrl-C detached), 2 for a usage error or a Keep
the host does not know, 3 when the host's certificate or the Keep's evidence is refused, 4 when the host
fails or refuses.`;

/** A time of the host's (epoch milliseconds) as RFC 3339, as every output of the command gives times. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * A Keep as the command shows it, in one vocabulary with `deploy`: times in RFC 3339, ports as
 * `{ name, hostPort }`.
 */
export function keepView(k: KeepInfo): Record<string, unknown> {
  const { v: _v, type: _type, createdAt, ports, ...rest } = k;
  return {
    ...rest,
    createdAt: rfc3339(createdAt),
    ports: (ports ?? []).map((p) => ({ name: p.name, hostPort: p.port })),
  };
}

/** `keeps ls` as a table with a header, as `docker ps` prints. */
function table(keeps: readonly KeepInfo[]): string {
  const rows = [
    ['ID', 'BACKEND', 'STATE', 'CREATED', 'PORTS', 'EXIT'],
    ...keeps.map((k) => [
      k.id,
      k.backend,
      k.state,
      rfc3339(k.createdAt),
      (k.ports ?? []).map((p) => `${p.name}:${p.port}`).join(',') || '-',
      k.exitCode === undefined ? (k.error ? 'error' : '-') : String(k.exitCode),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '))
    .join('\n');
}

/** One Keep for people: a field a line. */
function details(k: KeepInfo): string {
  const view = keepView(k);
  const lines = Object.entries(view).map(([key, value]) => {
    const text = Array.isArray(value)
      ? value
          .map((p: { name: string; hostPort: number }) => `${p.name} on host port ${p.hostPort}`)
          .join(', ') || '-'
      : String(value);
    return `${`${key}:`.padEnd(12)} ${text}`;
  });
  return lines.join('\n');
}

const VERBS: readonly string[] = ['ls', 'inspect', 'logs', 'attach', 'stop', 'rm'];

/** `donjon keeps VERB [ID]`: returns the exit status (attach: the workload's); throws for a failure. */
export async function keepsCommand(argv: string[], invocation?: Invocation): Promise<number> {
  const [verb, ...rest] = argv;
  // `donjon keeps` alone is asking what it can do: the subcommands, before any flag is needed.
  if (verb === undefined) {
    process.stderr.write(`${keepsHelp}\n`);
    return EXIT.usage;
  }
  if (!VERBS.includes(verb)) {
    throw new UsageError(
      `Cannot run 'donjon keeps ${verb ?? ''}': use ls, inspect, logs, attach, stop or rm`,
    );
  }
  const { values, positionals } = parseCommand(rest, {
    command: 'keeps',
    positionals: true,
    invocation,
    options: {
      ...remoteOptions,
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', short: 'q', default: false },
      'trust-sim-root': { type: 'string', multiple: true, default: [] },
      'expect-measurement': { type: 'string', multiple: true, default: [] },
      'stop-on-interrupt': { type: 'boolean', default: false },
    },
  });
  const reporter = new Reporter({ quiet: values.quiet, json: values.json });
  const client = remoteClient(values as RemoteValues, (m) => reporter.note(m));
  if (!client)
    throw new UsageError('Cannot manage Keeps: name the Keep Manager with --host URL (or DONJON_HOST)');
  const id = positionals[0];
  const needId = (): string => {
    if (id === undefined) throw new UsageError(`Cannot run 'donjon keeps ${verb}': give a Keep id`);
    return id;
  };
  const out = (text: string): void => {
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  };
  switch (verb) {
    case 'ls': {
      const keeps = await client.listKeeps();
      if (values.json) out(JSON.stringify(keeps.map(keepView)));
      else out(table(keeps));
      return EXIT.ok;
    }
    case 'inspect': {
      const k = await client.getKeep(needId());
      out(values.json ? JSON.stringify(keepView(k)) : details(k));
      return EXIT.ok;
    }
    case 'logs': {
      const e = await client.keepEvents(needId());
      if (values.json) out(JSON.stringify(e.events.map((x) => ({ ...x, at: rfc3339(x.at) }))));
      else {
        out(
          e.events
            .map((x) => `${new Date(x.at).toISOString()}  ${x.state}${x.message ? `  ${x.message}` : ''}`)
            .join('\n') || 'no events',
        );
      }
      return EXIT.ok;
    }
    case 'stop': {
      const k = await client.stopKeep(needId());
      out(values.json ? JSON.stringify(keepView(k)) : `stopped ${k.id} (${k.state})`);
      return EXIT.ok;
    }
    case 'rm': {
      const k = await client.removeKeep(needId());
      out(values.json ? JSON.stringify(keepView(k)) : `removed ${k.id}`);
      return EXIT.ok;
    }
    case 'attach': {
      const keepId = needId();
      const secret = loadAttachSecret(keepId);
      if (!secret) {
        throw new CommandError(
          'ERR_ATTACH_REFUSED',
          'refused',
          `Cannot attach to Keep ${keepId}: this user did not deploy it from this machine (no attach secret)`,
        );
      }
      // The policy follows the Keep's backend: an SGX Keep proves its MRENCLAVE, an SNP Keep its measurement.
      const backend = (await client.getKeep(keepId)).backend === 'sgx-sim' ? 'sgx-sim' : 'sim';
      const sgx = backend === 'sgx-sim';
      const measurements =
        values['expect-measurement'].length > 0
          ? hexList(values['expect-measurement'], '--expect-measurement', sgx ? 64 : 96)
          : [sgx ? measureSgxRuntime() : measureRuntime()];
      const trustedSimRoots = hexList(values['trust-sim-root'], '--trust-sim-root', 64);
      const controller = new AbortController();
      const onSignal = (): void => controller.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const result = await attachWorkload({
          host: client,
          keepId,
          secret,
          stdin: process.stdin,
          stdout: process.stdout,
          stderr: reporter.workloadStderr(),
          policy: workloadPolicy({ backend, measurements, trustedSimRoots }),
          onEvent: (e: RunEvent) => reporter.event(e),
          signal: controller.signal,
        });
        if (result.outcome) {
          reporter.outcome(result.outcome);
          return exitCodeOf(result.outcome);
        }
        // Ctrl-C detaches: the Keep is a service someone may rely on; stopping it is asked for, never implied.
        if (values['stop-on-interrupt']) {
          await client.stopKeep(keepId);
          reporter.notice({ event: 'stopped', id: keepId }, `detached and stopped Keep ${keepId}`);
        } else {
          reporter.notice(
            { event: 'detached', id: keepId },
            `detached; Keep ${keepId} still runs: donjon keeps stop ${keepId}`,
          );
        }
        return EXIT.interrupted;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        if (process.stdin.readable) process.stdin.destroy();
      }
    }
    default:
      throw new UsageError(
        `Cannot run 'donjon keeps ${verb ?? ''}': use ls, inspect, logs, attach, stop or rm`,
      );
  }
}
