import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { attachSignature, formatReference, parseReference, pushWorkload } from '../registry/index.ts';
import { parseCommand } from './args.ts';
import { EXIT, UsageError } from './errors.ts';
import { checkEnarxToml, clientFor, readSigningKey, registryOptions } from './registry-options.ts';
import { readWorkload } from './workload.ts';

/** `donjon help push`. */
export const pushHelp = `Usage: donjon push [options] FILE.wasm REF

Publishes a WebAssembly module to an OCI registry as a Wasm artifact (the CNCF layout: config
application/vnd.wasm.config.v0+json, one application/wasm layer) under REF (host[:port]/repo[:tag]) and
prints its manifest digest. 'donjon run REF' and 'donjon deploy REF' pull it by that digest.

Options:
  --config FILE             an Enarx.toml to carry with the module (a manifest annotation, so the
                            manifest digest and its signatures cover it)
  --sign-key KEY            also sign it with this cosign private key (passphrase from COSIGN_PASSWORD,
                            else asked on the terminal), as 'donjon sign' does
  --plain-http              speak plain HTTP to a registry that is not on loopback
  --registry-auth USER:PASS registry credentials (default: ~/.docker/config.json)
  -h, --help                show this help

Exit status: 0 once pushed, 2 for a usage error (or credentials refused), 4 when the registry fails.`;

/** `donjon push`: returns the exit status. */
export async function pushCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    command: 'push',
    positionals: true,
    options: { ...registryOptions, config: { type: 'string' }, 'sign-key': { type: 'string' } },
  });
  const [file, target, ...extra] = positionals;
  if (file === undefined || target === undefined || extra.length > 0) {
    throw new UsageError('Cannot push: expected FILE.wasm and REF (donjon push FILE.wasm host/repo:tag)');
  }
  const ref = parseReference(target);
  const wasm = readWorkload(file);
  let enarxToml: string | undefined;
  if (values.config !== undefined) {
    try {
      enarxToml = readFileSync(values.config, 'utf8');
    } catch (error) {
      throw new UsageError(
        `Cannot read config ${values.config}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      );
    }
    checkEnarxToml(enarxToml, values.config);
  }
  // The key is opened first: a wrong passphrase should stop the push before anything is uploaded.
  const key = values['sign-key'] === undefined ? undefined : await readSigningKey(values['sign-key']);
  const client = clientFor(values, ref);
  const pushed = await pushWorkload(client, ref, wasm, {
    title: basename(file),
    ...(enarxToml === undefined ? {} : { enarxToml }),
  });
  if (key !== undefined) await attachSignature(client, ref, pushed.digest, key);
  process.stderr.write(
    `donjon: pushed ${formatReference(pushed.reference)}${key === undefined ? '' : ', signed'}\n`,
  );
  process.stdout.write(`${pushed.digest}\n`);
  return EXIT.ok;
}
