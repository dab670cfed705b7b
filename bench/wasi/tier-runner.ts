// Runs one WASI command under Donjon's host (startWasi, no Keep) after setting V8 flags with
// v8.setFlagsFromString, to measure compiler tiering: `node tier-runner.mjs FLAGS FILE.wasm [ARG...]`,
// FLAGS being space-separated V8 flags or ''. The benchmark bundles this file into plain JavaScript, which
// also serves as the WASI worker's script. The module's stdout and stderr pass through; the last stderr
// line is `tier-runner {"startMs":…,"runMs":…,"firstOutputMs":…}`: startWasi() until it resolved
// (compilation, worker start, instantiation), then until the result, and from the start to the first byte
// of output.
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { isMainThread, workerData } from 'node:worker_threads';
import { isWasiWorker, startWasi, wasiWorkerMain } from '../../src/wasi/index.ts';

if (!isMainThread) {
  if (isWasiWorker(workerData)) wasiWorkerMain();
} else {
  const [flags = '', file, ...args] = process.argv.slice(2);
  if (file === undefined) throw new TypeError('Cannot run: usage is tier-runner FLAGS FILE.wasm [ARG...]');
  // Flags are process-wide: set before compiling, they govern the main thread's compilation and the
  // worker's tier-up alike.
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
    limits: { memoryBytes: 1024 * 1024 * 1024 },
    workerUrl: new URL(import.meta.url),
  });
  const t1 = performance.now();
  const result = await run.result;
  const t2 = performance.now();
  process.stderr.write(
    `\ntier-runner ${JSON.stringify({ startMs: t1 - t0, runMs: t2 - t1, firstOutputMs: firstOutput ?? null })}\n`,
  );
  process.exitCode = result.kind === 'exit' ? result.code : 100;
}
