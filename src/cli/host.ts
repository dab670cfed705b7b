import { parseArgs } from 'node:util';
import { KeepManager } from '../host/keepmgr/keepmgr.ts';
import { loadOrCreateSimRoot } from '../host/simroot.ts';
import { builtFile } from '../paths.ts';
import { UsageError } from './errors.ts';
import { dataDir } from './paths.ts';

export const hostHelp = `Usage: donjon host [--listen ADDR:PORT] [--state DIR]

Runs a Keep Manager: the host's API for tenants. It serves plain HTTP on loopback by default (the channel
to each Keep is end-to-end TLS regardless). Prints its URL and its simulated root's fingerprint, which
tenants pass to \`donjon run --trust-sim-root\`.

Options:
  --listen ADDR:PORT   where to listen (default 127.0.0.1:8787)
  --state DIR          state directory (default the data directory)`;

function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw new UsageError(`Cannot read --listen ${text}: expected ADDR:PORT`);
  return { host: (m[1] ?? m[2])!, port };
}

export async function hostCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { listen: { type: 'string', default: '127.0.0.1:8787' }, state: { type: 'string' } },
  });
  const { host, port } = parseListen(values.listen);
  const simRoot = await loadOrCreateSimRoot(values.state ?? dataDir(), () =>
    process.stderr.write("donjon host: creating this host's simulated AMD root of trust (once)\n"),
  );
  const manager = new KeepManager({
    runtimePath: builtFile('keep.js'),
    keepldrPath: builtFile('keepldr.js'),
    simRootPath: simRoot.path,
  });
  const url = await manager.listen(host, port);
  process.stdout.write(`${JSON.stringify({ url, simRootFingerprint: simRoot.fingerprint })}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await manager.close();
  return 0;
}
