// Entry point of the Keep Loader (dist/keepldr.cjs): one process per Keep, started by the Keep Manager with its
// configuration as JSON in argv[2]. Exit statuses: 0 when the Keep has ended and been reported, 1 when the Keep
// Loader could not start, 2 when its configuration is missing or malformed.
import { decodeKeepLoaderConfig, type KeepLoaderConfig } from './config.ts';
import { KeepLoader } from './keepldr.ts';

function fail(code: number, message: string): never {
  process.stderr.write(`donjon keepldr: ${message}\n`);
  process.exit(code);
}

const raw = process.argv[2];
if (raw === undefined) fail(2, 'Cannot start: expected its configuration as the first argument');
let config: KeepLoaderConfig;
try {
  config = decodeKeepLoaderConfig(raw);
} catch (error) {
  fail(2, (error as Error).message);
}
const loader = new KeepLoader(config);
// Whichever way this process ends that it sees, its socket goes with it.
process.on('exit', () => loader.removeSocket());
if (config.attached) {
  // An embedded Keep Manager holds our stdin open for as long as it lives; when it goes, so does the Keep.
  process.stdin.on('end', () => loader.stop());
  process.stdin.on('error', () => loader.stop());
  process.stdin.resume();
}
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => loader.stop());
loader.start().catch((error: unknown) => fail(1, error instanceof Error ? error.message : String(error)));
