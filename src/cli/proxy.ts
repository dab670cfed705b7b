import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import type { Policy } from '../attestation/index.ts';
import {
  connectService,
  measureRuntime,
  measureSgxRuntime,
  type ServicePolicy,
  signerDigest,
} from '../client/index.ts';
import type { ServiceIdentity } from '../ratls/index.ts';
import { type Invocation, parseCommand } from './args.ts';
import { EXIT, UsageError } from './errors.ts';
import { hexList, workloadPolicy } from './workload.ts';

/** `donjon help proxy`. */
export const proxyHelp = `Usage: donjon proxy --to HOST:PORT --listen ADDR:PORT [options]

Exposes a confidential service (a workload serving a tls listen file in a Keep) as a plain local TCP port,
so that curl or a browser can use it. Each local connection gets its own TLS connection to the service,
whose certificate must prove, before any byte of the local client is forwarded, that a genuine Keep runs
the expected runtime and workload. A connection that does not prove it is closed, and the reason printed.

Options:
  --to HOST:PORT            the service: the host port a Keep Manager forwards to the Keep
  --listen ADDR:PORT        the local address to serve plain TCP on, e.g. 127.0.0.1:8080 (port 0: any)
  --workload FILE           require the workload to be this module (repeatable)
  --workload-digest HEX     require the module's SHA-256 to be this (repeatable)
  --config-digest HEX       require the configuration's SHA-256 to be this (repeatable)
  --signer-key FILE         require the workload to be a registry artifact signed by this PEM public key
                            (cosign.pub), whose signature verified in the Keep (repeatable: any of them)
  --expect-measurement HEX  accept this runtime measurement instead of this version's (repeatable; an
                            MRENCLAVE of 64 hex digits with --backend sgx-sim)
  --backend NAME            the service's backend: sim (default; also cvm's SEV-SNP) or sgx-sim
  --trust-sim-root SHA256   accept evidence signed by this simulated root (repeatable)
  --insecure                accept a service without evidence (only without a workload or signer
                            requirement)
  --json                    log as JSON lines on stderr
  -q, --quiet               log only refusals
  -h, --help                show this help

It runs until interrupted. Exit status: 0 after Ctrl-C, 2 for a usage error.`;

/** HOST:PORT, with IPv6 hosts in brackets. */
export function parseHostPort(
  value: string,
  flag: string,
  allowZero = false,
): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || !Number.isInteger(port) || port > 65535 || (port === 0 && !allowZero)) {
    throw new UsageError(`Cannot read ${flag} ${value}: expected HOST:PORT`);
  }
  return { host: (m[1] ?? m[2])!, port };
}

function workloadDigests(files: readonly string[], digests: readonly string[]): string[] {
  const out = hexList(digests, '--workload-digest', 64);
  for (const path of files) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (error) {
      throw new UsageError(`Cannot read --workload ${path}: ${(error as NodeJS.ErrnoException).code}`);
    }
    out.push(createHash('sha256').update(bytes).digest('hex'));
  }
  return out;
}

/**
 * The signer digests of `--signer-key` files: each a PEM public key, hashed over its SPKI. A private key given
 * by mistake is refused, not reduced to its public half.
 */
export function signerKeyDigests(paths: readonly string[]): string[] {
  return paths.map((path) => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw new UsageError(`Cannot read --signer-key ${path}: ${(error as NodeJS.ErrnoException).code}`);
    }
    try {
      return signerDigest(text);
    } catch (error) {
      const why = (error as Error).message.replace(/^Cannot read the signer key: /, '');
      throw new UsageError(`Cannot read --signer-key ${path}: ${why}`);
    }
  });
}

function describe(identity: ServiceIdentity): string {
  const c = identity.claims;
  if (!c) return 'INSECURE: no evidence; nothing proves what serves this';
  const parts = [
    `workload ${identity.workloadDigest}`,
    `config ${identity.configDigest}`,
    ...(identity.signers ? [`signed by ${identity.signers.join(', ')}`] : []),
    `${c.kind} measurement ${c.measurement}`,
  ];
  if (c.simulated) parts.push(`SIMULATED root ${c.rootFingerprint}`);
  return parts.join(', ');
}

/** `donjon proxy`: serves until interrupted; returns the exit status. */
export async function proxyCommand(argv: string[], invocation?: Invocation): Promise<number> {
  const { values } = parseCommand(argv, {
    command: 'proxy',
    invocation,
    options: {
      to: { type: 'string' },
      listen: { type: 'string' },
      workload: { type: 'string', multiple: true, default: [] },
      'workload-digest': { type: 'string', multiple: true, default: [] },
      'config-digest': { type: 'string', multiple: true, default: [] },
      'signer-key': { type: 'string', multiple: true, default: [] },
      'expect-measurement': { type: 'string', multiple: true, default: [] },
      'trust-sim-root': { type: 'string', multiple: true, default: [] },
      backend: { type: 'string', default: 'sim' },
      insecure: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', short: 'q', default: false },
    },
  });
  if (values.to === undefined) throw new UsageError('Cannot proxy: name the service with --to HOST:PORT');
  if (values.listen === undefined) {
    throw new UsageError('Cannot proxy: name the local address with --listen ADDR:PORT');
  }
  const to = parseHostPort(values.to, '--to');
  const local = parseHostPort(values.listen, '--listen', true);
  const workloads = workloadDigests(values.workload, values['workload-digest']);
  const configs = hexList(values['config-digest'], '--config-digest', 64);
  const signers = signerKeyDigests(values['signer-key']);
  if (values.insecure && (workloads.length > 0 || configs.length > 0 || signers.length > 0)) {
    throw new UsageError(
      'Cannot proxy with --insecure and a workload, config or signer requirement: an unattested service proves none of them',
    );
  }
  // The service's backend says what its evidence proves of the runtime: an SNP measurement or an MRENCLAVE.
  const backend = values.backend;
  if (backend !== 'sim' && backend !== 'cvm' && backend !== 'sgx-sim') {
    throw new UsageError(`Cannot proxy a ${backend} service: use --backend sim, cvm or sgx-sim`);
  }
  const sgx = backend === 'sgx-sim';
  const measurements =
    values['expect-measurement'].length > 0
      ? hexList(values['expect-measurement'], '--expect-measurement', sgx ? 64 : 96)
      : [sgx ? measureSgxRuntime() : measureRuntime()];
  const policy: Policy = workloadPolicy({
    backend: sgx ? 'sgx-sim' : 'sim',
    measurements,
    trustedSimRoots: hexList(values['trust-sim-root'], '--trust-sim-root', 64),
  });
  const servicePolicy: ServicePolicy = {
    policy,
    ...(workloads.length > 0 ? { workloadDigests: workloads } : {}),
    ...(configs.length > 0 ? { configDigests: configs } : {}),
    ...(signers.length > 0 ? { signerKeys: signers } : {}),
    ...(values.insecure ? { insecure: true } : {}),
  };

  const log = (record: Record<string, unknown>, line: string, always = false): void => {
    if (values.json) process.stderr.write(`${JSON.stringify(record)}\n`);
    else if (always || !values.quiet) process.stderr.write(`donjon proxy: ${line}\n`);
  };
  let lastVerified = '';
  const server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (client: Socket) => {
    client.on('error', () => client.destroy());
    // The client's bytes wait, unread, until the service has proved itself.
    connectService({ host: to.host, port: to.port, ...servicePolicy }).then(
      ({ socket, identity }) => {
        if (client.destroyed) {
          socket.destroy();
          return;
        }
        const said = describe(identity);
        if (said !== lastVerified) {
          lastVerified = said;
          log({ event: 'verified', ...identity, spki: undefined }, `verified ${values.to}: ${said}`);
        }
        socket.on('error', () => socket.destroy());
        client.pipe(socket);
        socket.pipe(client);
        client.on('close', () => socket.destroy());
        socket.on('close', () => client.destroy());
        client.resume();
      },
      (error: unknown) => {
        client.destroy();
        const e = error as { code?: unknown; message?: unknown };
        const code = typeof e.code === 'string' ? e.code : 'ERR_INTERNAL';
        const message = typeof e.message === 'string' ? e.message : String(error);
        log(
          { event: 'refused', code, message },
          `refused a connection to ${values.to}: ${message} (${code})`,
          true,
        );
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new UsageError(`Cannot listen on ${values.listen}: ${error.code ?? error.message}`)),
    );
    server.listen(local.port, local.host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  log(
    { event: 'listening', address: local.host, port, to: values.to },
    `listening on ${local.host.includes(':') ? `[${local.host}]` : local.host}:${port}, forwarding verified connections to ${values.to}`,
  );
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  server.close();
  return EXIT.ok;
}
