// Entry point of the Keep runtime bundle (dist/keep.cjs), whose bytes are the Keep's measurement: it holds every
// byte of code that runs inside the Keep.
//
// The WASI worker's code is in this file as text (the build puts the worker's own bundle in the string
// DONJON_WASI_WORKER_SOURCE), and the worker thread is started from that text: the Keep's thread never parses
// the preview1 host, the worker thread never parses the Keep's TLS, attestation and protocol code, and both
// are still in the one measured file. The Keep's own parts are evaluated on first use.
import { isMainThread } from 'node:worker_threads';

/** The WASI worker's bundle, as text; absent when this file runs unbundled (from source, in tests). */
declare const DONJON_WASI_WORKER_SOURCE: string;

if (isMainThread) {
  void import('./start.ts').then(({ startKeep }) => {
    startKeep(
      typeof DONJON_WASI_WORKER_SOURCE === 'string'
        ? { source: DONJON_WASI_WORKER_SOURCE }
        : new URL('../wasi/worker-entry.ts', import.meta.url),
    );
  });
}
