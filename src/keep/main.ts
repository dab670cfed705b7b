// Entry point of the Keep runtime bundle (dist/keep.js). The same file is the WASI worker's script, so the
// measured bytes are all the code that runs inside the Keep.
//
// Each thread evaluates only its own part of the file: the imports below are dynamic, which the bundler turns
// into functions of the same file that run on first use (nothing is split into other files, so the measurement
// still covers every byte). The worker thread never evaluates the Keep's TLS, attestation and protocol code,
// and the Keep's thread never the preview1 host.
import { isMainThread, workerData } from 'node:worker_threads';

if (!isMainThread) {
  const { isWasiWorker, wasiWorkerMain } = await import('../wasi/worker.ts');
  if (isWasiWorker(workerData)) wasiWorkerMain();
} else {
  const { startKeep } = await import('./start.ts');
  startKeep(new URL(import.meta.url));
}
