import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { encryptPrivateKey, generateSigningKey, publicKeyPem } from '../registry/index.ts';
import { parseCommand } from './args.ts';
import { EXIT, UsageError } from './errors.ts';
import { passphrase } from './registry-options.ts';

/** `donjon help keygen`. */
export const keygenHelp = `Usage: donjon keygen [options]

Makes an ECDSA P-256 signing key pair in cosign's formats: PREFIX.key, the private key encrypted under a
passphrase (ENCRYPTED SIGSTORE PRIVATE KEY: scrypt and NaCl secretbox), and PREFIX.pub, the PEM public key.
cosign reads both; 'donjon push --sign-key' and 'donjon sign --key' take the first, 'donjon run
--verify-key' the second. The passphrase comes from COSIGN_PASSWORD, else it is asked twice on the
terminal.

Options:
  --output-key-prefix P     write P.key and P.pub (default cosign)
  --force                   overwrite existing files
  -h, --help                show this help`;

/** `donjon keygen`: returns the exit status. */
export async function keygenCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    command: 'keygen',
    positionals: true,
    options: {
      'output-key-prefix': { type: 'string', default: 'cosign' },
      force: { type: 'boolean', default: false },
    },
  });
  if (positionals.length > 0) throw new UsageError(`Cannot make keys: unexpected argument ${positionals[0]}`);
  const prefix = values['output-key-prefix'];
  const keyPath = `${prefix}.key`;
  const pubPath = `${prefix}.pub`;
  for (const path of [keyPath, pubPath]) {
    if (existsSync(path) && !values.force)
      throw new UsageError(`Cannot write ${path}: it exists (--force to replace it)`);
  }
  const pass = await passphrase(true);
  const { privateKey, publicKey } = generateSigningKey();
  writeFileSync(keyPath, encryptPrivateKey(privateKey, pass), { mode: 0o600 });
  chmodSync(keyPath, 0o600); // a file replaced under --force keeps its old mode otherwise
  writeFileSync(pubPath, publicKeyPem(publicKey));
  process.stderr.write(`donjon: private key written to ${keyPath}, public key to ${pubPath}\n`);
  return EXIT.ok;
}
