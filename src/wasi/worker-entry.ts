// The default script of a WASI worker thread. A program bundled into one file (the Keep) passes its own
// URL as `workerUrl` instead and makes the same call from its entry point.
import { workerData } from 'node:worker_threads';
import { isWasiWorker, wasiWorkerMain } from './worker.ts';

if (isWasiWorker(workerData)) wasiWorkerMain();
