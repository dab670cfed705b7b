// Entry point of the Keep Loader (dist/keepldr.js): one process per Keep, started by the Keep Manager.
import { KeepLoader, type KeepLoaderConfig } from './keepldr.ts';

const raw = process.argv[2];
if (raw === undefined) {
  process.stderr.write('donjon keepldr: expected its configuration as the first argument\n');
  process.exit(2);
}
const config = JSON.parse(raw) as KeepLoaderConfig & { attached?: boolean };
const loader = new KeepLoader(config);
if (config.attached) {
  // An embedded Keep Manager holds our stdin open for as long as it lives; when it goes, so does the Keep.
  process.stdin.on('end', () => loader.stop());
  process.stdin.on('error', () => loader.stop());
  process.stdin.resume();
}
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => loader.stop());
loader.start().catch((error: unknown) => {
  process.stderr.write(`donjon keepldr: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
