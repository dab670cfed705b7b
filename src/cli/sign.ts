import {
  attachSignature,
  formatReference,
  parseReference,
  pinned,
  resolveDigest,
} from '../registry/index.ts';
import { parseCommand } from './args.ts';
import { EXIT, UsageError } from './errors.ts';
import { clientFor, readSigningKey, registryOptions } from './registry-options.ts';

/** `donjon help sign`. */
export const signHelp = `Usage: donjon sign --key KEY [options] REF

Signs the manifest REF names (a tag is resolved to its digest once, and the digest is what is signed) with a
cosign private key, and stores the signature where cosign stores it (the sha256-<digest>.sig tag of the same
repository, a simple-signing payload with the signature in its layer annotation). Prints the digest signed.

Options:
  --key KEY                 the cosign private key (passphrase from COSIGN_PASSWORD, else asked on the
                            terminal)
  --plain-http              speak plain HTTP to a registry that is not on loopback
  --registry-auth USER:PASS registry credentials (default: ~/.docker/config.json)
  -h, --help                show this help

Exit status: 0 once signed, 2 for a usage error (a wrong passphrase, credentials refused), 4 when the
registry fails.`;

/** `donjon sign`: returns the exit status. */
export async function signCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    command: 'sign',
    positionals: true,
    options: { ...registryOptions, key: { type: 'string' } },
  });
  const [target, ...extra] = positionals;
  if (target === undefined || extra.length > 0) throw new UsageError('Cannot sign: expected one REF');
  if (values.key === undefined) throw new UsageError('Cannot sign: no --key given');
  const ref = parseReference(target);
  const key = await readSigningKey(values.key);
  const client = clientFor(values, ref);
  const digest = await resolveDigest(client, ref);
  await attachSignature(client, ref, digest, key);
  process.stderr.write(`donjon: signed ${formatReference(pinned(ref, digest))}\n`);
  process.stdout.write(`${digest}\n`);
  return EXIT.ok;
}
