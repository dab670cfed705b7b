import { measureRuntime, measureSgxRuntime } from '../client/index.ts';
import { type Invocation, parseCommand } from './args.ts';
import { measureSnpCommand, measureSnpHelp } from './measure-snp.ts';

export const measureHelp = `Usage: donjon measure [--sgx] [--json]
       donjon measure snp [options]

Prints the SHA-384 measurement of this version's Keep runtime: the value a simulated Keep reports, and the
one \`donjon run\` expects by default. With --sgx, prints the MRENCLAVE an sgx-sim Keep reports instead (the
SHA-256 of the same runtime), the one \`donjon run --backend sgx-sim\` expects. \`donjon measure snp\`
computes an SEV-SNP launch digest:

${measureSnpHelp}`;

/** `donjon measure [--sgx] [snp]`: prints a measurement; returns 0. */
export async function measureCommand(argv: string[], invocation?: Invocation): Promise<number> {
  if (argv[0] === 'snp') return measureSnpCommand(argv.slice(1), { invocation });
  const { values } = parseCommand(argv, {
    command: 'measure',
    options: { json: { type: 'boolean' }, sgx: { type: 'boolean' } },
    invocation,
  });
  if (values.sgx) {
    const mrEnclave = measureSgxRuntime();
    process.stdout.write(values.json ? `${JSON.stringify({ mrEnclave })}\n` : `${mrEnclave}\n`);
    return 0;
  }
  const measurement = measureRuntime();
  process.stdout.write(values.json ? `${JSON.stringify({ measurement })}\n` : `${measurement}\n`);
  return 0;
}
