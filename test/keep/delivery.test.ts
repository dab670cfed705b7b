// Failure 4 of issue 11: a stdout flood under a 1 MiB output limit ended, about once in eight runs, as "The Keep
// died before the workload finished" instead of the `limit` outcome. The Keep exited as soon as its own end of
// the channel was written (or 2 s after the result at the latest), while the last output and the result were
// still in the relays of the Keep Loader and the Keep Manager, which drop what they hold when the Keep's
// process ends. A client busy for a moment when the flood is cut lost the result nearly every time.
//
// These runs go through a real Keep Manager serving HTTPS (as the daemon does), its Keep Loaders and Keeps.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { Policy } from '../../src/attestation/index.ts';
import { KeepManagerClient, type RunOutcome, runWorkload } from '../../src/client/index.ts';
import { loadOrCreateHostIdentity } from '../../src/host/keepmgr/identity.ts';
import { KeepManager } from '../../src/host/keepmgr/keepmgr.ts';
import { loadOrCreateSimRoot } from '../../src/host/simroot.ts';
import { builtFile } from '../../src/paths.ts';
import { testHome } from '../helpers.ts';
import { testPolicy } from './harness.ts';
import { floodModule } from './modules.ts';

const RUNS = 16;
const OUTPUT_LIMIT = 1 << 20;

let manager: KeepManager;
let host: KeepManagerClient;
let policy: Policy;
const flood = floodModule();

before(async () => {
  await loadOrCreateSimRoot(testHome);
  const identity = loadOrCreateHostIdentity(mkdtempSync(join(tmpdir(), 'djs-id-')));
  manager = new KeepManager({
    runtimePath: builtFile('keep.cjs'),
    keepldrPath: builtFile('keepldr.cjs'),
    simRootPath: join(testHome, 'sim-root.cbor'),
    runDir: mkdtempSync(join(tmpdir(), 'djs-')),
    tls: { keyPem: identity.keyPem, certPem: identity.certPem },
    // Keeps started ahead, so that the runs spend their time on the flood rather than on start-up.
    pool: { sim: 2 },
  });
  host = new KeepManagerClient(await manager.listen('127.0.0.1', 0), {
    trust: { fingerprint: identity.fingerprint },
  });
  policy = await testPolicy();
});

after(async () => {
  await manager.close();
});

/**
 * Stdout of a client whose process is busy for `busyMs` when the first output arrives (the Keep Manager in this
 * process with it), as a loaded machine is; it counts what it is given.
 */
function busyStdout(busyMs: number): Writable & { bytes: number } {
  let first = true;
  const out = Object.assign(
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        out.bytes += chunk.length;
        if (first) {
          first = false;
          const until = Date.now() + busyMs;
          while (Date.now() < until) {
            // busy, as a process on a loaded machine is
          }
        }
        callback();
      },
    }),
    { bytes: 0 },
  );
  return out;
}

async function floodRun(busyMs: number): Promise<{ outcome: RunOutcome | string; bytes: number }> {
  const stdout = busyStdout(busyMs);
  try {
    const r = await runWorkload({
      host,
      backend: 'sim',
      wasm: flood,
      args: ['flood.wasm'],
      env: {},
      stdin: null,
      stdout,
      stderr: stdout,
      policy,
      limits: { outputBytes: OUTPUT_LIMIT },
    });
    return { outcome: r.outcome, bytes: stdout.bytes };
  } catch (error) {
    return {
      outcome: `${(error as { code?: string }).code}: ${(error as Error).message}`,
      bytes: stdout.bytes,
    };
  }
}

describe('a stdout flood under an output limit, through a Keep Manager over HTTPS', () => {
  test(`ends with the output limit every time (${RUNS} runs, the client busy for a moment)`, async () => {
    const outcomes: string[] = [];
    for (let i = 0; i < RUNS; i++) {
      const { outcome, bytes } = await floodRun(300);
      outcomes.push(
        typeof outcome === 'string'
          ? outcome
          : `${outcome.kind}${'limit' in outcome ? ` ${outcome.limit}` : ''}`,
      );
      if (typeof outcome !== 'string') assert.ok(bytes <= OUTPUT_LIMIT, `${bytes} bytes of output`);
    }
    assert.deepEqual(outcomes, Array(RUNS).fill('limit output'));
  });
});
