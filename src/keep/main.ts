// Entry point of the Keep runtime bundle (dist/keep.js). The same file is the WASI worker's script, so the
// measured bytes are all the code that runs inside the Keep.
import { isMainThread, workerData } from 'node:worker_threads';
import { isWasiWorker, wasiWorkerMain } from '../wasi/index.ts';
import { type KeepConfig, runKeep } from './keep.ts';

if (!isMainThread) {
  if (isWasiWorker(workerData)) wasiWorkerMain();
} else {
  const raw = process.argv[2];
  if (raw === undefined) {
    process.stderr.write('donjon keep: expected its configuration as the first argument\n');
    process.exit(2);
  }
  const config = JSON.parse(raw) as KeepConfig;
  runKeep(config, new URL(import.meta.url)).catch((error: unknown) => {
    process.stderr.write(`donjon keep: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
