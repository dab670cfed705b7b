// Runs one WASI command under Donjon's host (startWasi, no Keep) after setting V8 flags with
// v8.setFlagsFromString, to measure compiler tiering: `node tier-runner.mjs FLAGS FILE.wasm [ARG...]`,
// FLAGS being space-separated V8 flags or ''. The benchmark bundles this file into plain JavaScript, which
// also serves as the WASI worker's script. It takes the Keep's steps in the Keep's order: a worker thread
// started ahead and the host warmed up (src/keep/keep.ts), a pause standing for the wait for a deploy, then
// the flags, then startWasi() with that worker (src/keep/workload.ts). The module's stdout and stderr pass
// through; the last stderr line is `tier-runner {"startMs":…,"runMs":…,"firstOutputMs":…}`: startWasi()
// until it resolved (compilation, hand-over to the worker, instantiation), then until the result, and from
// the start to the first byte of output.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { isMainThread, workerData } from 'node:worker_threads';
import {
  isWasiWorker,
  startWasi,
  startWasiWorker,
  warmWasiHost,
  wasiWorkerMain,
} from '../../src/wasi/index.ts';

if (!isMainThread) {
  if (isWasiWorker(workerData)) wasiWorkerMain();
} else {
  const [flags = '', file, ...args] = process.argv.slice(2);
  if (file === undefined) throw new TypeError('Cannot run: usage is tier-runner FLAGS FILE.wasm [ARG...]');
  const workerUrl = new URL(import.meta.url);
  const standby = startWasiWorker(workerUrl);
  standby.worker.ref();
  const online = once(standby.worker, 'online');
  await warmWasiHost();
  await online;
  await new Promise((resolve) => setTimeout(resolve, 250));
  // Flags are process-wide: set before compiling, they govern the main thread's compilation and the
  // worker's (lazy) compilation and tier-up alike, the worker's thread having started before them or not.
  for (const flag of flags.split(' ').filter((f) => f !== '')) setFlagsFromString(flag);
  const bytes = new Uint8Array(readFileSync(file));
  let firstOutput: number | undefined;
  const t0 = performance.now();
  const mark = (): void => {
    firstOutput ??= performance.now() - t0;
  };
  const run = await startWasi({
    module: bytes,
    args: [file, ...args],
    env: {},
    stdin: 'null',
    onStdout: (c) => {
      mark();
      process.stdout.write(c);
    },
    onStderr: (c) => {
      mark();
      process.stderr.write(c);
    },
    // The Keep's default limit (src/keep/workload.ts).
    limits: { memoryBytes: 256 * 1024 * 1024 },
    workerUrl,
    standby,
  });
  const t1 = performance.now();
  const result = await run.result;
  const t2 = performance.now();
  process.stderr.write(
    `\ntier-runner ${JSON.stringify({ startMs: t1 - t0, runMs: t2 - t1, firstOutputMs: firstOutput ?? null })}\n`,
  );
  process.exitCode = result.kind === 'exit' ? result.code : 100;
}
