import { parseArgs } from 'node:util';
import { measureRuntime } from '../client/index.ts';

export const measureHelp = `Usage: donjon measure [--json]

Prints the SHA-384 measurement of this version's Keep runtime: the value a simulated Keep reports, and the
one \`donjon run\` expects by default.`;

export async function measureCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean' } }, strict: true });
  const measurement = measureRuntime();
  process.stdout.write(values.json ? `${JSON.stringify({ measurement })}\n` : `${measurement}\n`);
  return 0;
}
