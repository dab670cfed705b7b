// `donjon attest inspect HOST:PORT`: what a confidential service's certificate proves, and whether it verifies.
import { createHash } from 'node:crypto';
import type { Policy } from '../attestation/index.ts';
import { inspectService, type ServiceReport } from '../client/index.ts';
import { type Invocation, parseCommand } from './args.ts';
import { readInput } from './attest-files.ts';
import { type AttestIo, claimsTable, jsonValue, warningsFor } from './attest-report.ts';
import { EXIT, exitStatusFor, UsageError } from './errors.ts';
import { parseHostPort, signerKeyDigests } from './proxy.ts';

/** `donjon attest inspect HOST:PORT`: prints the report; 0 when it verifies, 3 when it does not. */
export async function inspectCommand(argv: string[], io: AttestIo, invocation: Invocation): Promise<number> {
  const { values, positionals } = parseInspectArgs(argv, invocation);
  if (positionals.length !== 1) throw new UsageError('Cannot inspect: give one service as HOST:PORT');
  const target = parseHostPort(positionals[0]!, 'the service');
  const hex = (list: readonly string[], flag: string, n: number): string[] =>
    list.map((v) => {
      const h = v.toLowerCase().replace(/:/g, '');
      if (!new RegExp(`^[0-9a-f]{${n}}$`).test(h))
        throw new UsageError(`Cannot read ${flag} ${v}: expected ${n} hex digits`);
      return h;
    });
  const workloads = hex(values['workload-digest'], '--workload-digest', 64);
  for (const path of values.workload) {
    workloads.push(createHash('sha256').update(readInput(path, 'workload')).digest('hex'));
  }
  const configs = hex(values['config-digest'], '--config-digest', 64);
  const signers = signerKeyDigests(values['signer-key']);
  const measurements = hex(values['expect-measurement'], '--expect-measurement', 96);
  const simRoots = hex(values['trust-sim-root'], '--trust-sim-root', 64);
  const policy: Policy = {
    ...(measurements.length > 0 ? { measurements } : {}),
    ...(simRoots.length > 0 ? { trustSimulatedRoots: simRoots } : {}),
  };
  // A service that cannot be reached is a ClientError of category host: exit 4.
  const report: ServiceReport = await inspectService({
    host: target.host,
    port: target.port,
    policy,
    ...(workloads.length > 0 ? { workloadDigests: workloads } : {}),
    ...(configs.length > 0 ? { configDigests: configs } : {}),
    ...(signers.length > 0 ? { signerKeys: signers } : {}),
  });
  if (values.json) io.stdout(`${JSON.stringify({ service: positionals[0], ...report }, jsonValue)}\n`);
  else {
    const rows: [string, string][] = [
      ['certificate sha256', report.certificateSha256],
      ['key sha256', report.keySha256],
      ['valid', `${report.notBefore} to ${report.notAfter}`],
      [
        'attested',
        report.attested ? `yes (${report.binding} evidence)` : 'no: the certificate carries no evidence',
      ],
    ];
    if (report.workloadDigest) rows.push(['workload sha256', report.workloadDigest]);
    if (report.configDigest) rows.push(['config sha256', report.configDigest]);
    if (report.artifactDigest) rows.push(['registry manifest', report.artifactDigest]);
    for (const signer of report.signers ?? []) rows.push(['signed by key sha256', signer]);
    if (report.evidence) {
      const ev = report.evidence;
      rows.push([
        'evidence',
        `${ev.kind}${ev.version === undefined ? '' : ` v${ev.version}`}${ev.measurement ? `, measurement ${ev.measurement}` : ''}`,
      ]);
    }
    rows.push([
      'verified',
      report.verified ? 'yes' : `no: ${report.error?.message ?? 'unknown'} (${report.error?.code ?? ''})`,
    ]);
    const width = Math.max(...rows.map(([k]) => k.length));
    io.stdout(`Service ${positionals[0]}\n${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}\n`).join('')}`);
    if (report.claims) {
      for (const w of warningsFor(report.claims)) io.stderr(`donjon: warning: ${w}\n`);
      io.stdout(claimsTable(report.claims));
    }
  }
  // The report is printed; a service whose evidence does not verify is refused, as `run` refuses a Keep.
  return report.verified ? EXIT.ok : exitStatusFor('refused');
}

function parseInspectArgs(argv: string[], invocation: Invocation) {
  return parseCommand(argv, {
    command: 'attest',
    positionals: true,
    invocation,
    options: {
      'trust-sim-root': { type: 'string', multiple: true, default: [] },
      'expect-measurement': { type: 'string', multiple: true, default: [] },
      workload: { type: 'string', multiple: true, default: [] },
      'workload-digest': { type: 'string', multiple: true, default: [] },
      'config-digest': { type: 'string', multiple: true, default: [] },
      'signer-key': { type: 'string', multiple: true, default: [] },
      json: { type: 'boolean', default: false },
    },
  });
}
