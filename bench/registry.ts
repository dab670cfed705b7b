// Workloads from a registry, side by side in one run against Debian's docker-registry on loopback: the time to
// the first byte of output of `donjon run FILE`, of `donjon run REF` (the client pulls the module every
// time: uncached), and a bare Node start for scale; and the host's pull of a deployment's artifact by digest
// (what a restart costs before its Keep starts) with an empty and with a warm blob cache. Run alone with
// `BENCH_ONLY=registry npm run bench`; `benchRegistry()` returns the Markdown.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BlobCache } from '../src/host/keepmgr/blob-cache.ts';
import { pullArtifact } from '../src/host/keepmgr/puller.ts';
import { parseReference, pushWorkload, RegistryClient } from '../src/registry/index.ts';
import { repoRoot, testHome } from '../test/helpers.ts';
import { startRegistry } from '../test/registry/registry-server.ts';

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 7);
const cli = join(repoRoot, 'bin', 'donjon.js');
const hello = join(repoRoot, 'examples', 'hello', 'hello.wasm');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Milliseconds from spawning `node args` to the first byte on its stdout. */
function firstOutput(args: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let t: number | undefined;
    let err = '';
    child.stdout.once('data', () => {
      t = performance.now() - t0;
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString('utf8');
    });
    child.on('close', (code) => {
      if (code === 0 && t !== undefined) resolve(t);
      else reject(new Error(`${args.join(' ')} failed (${code}): ${err}`));
    });
  });
}

export async function benchRegistry(): Promise<string> {
  const registry = await startRegistry();
  const dir = mkdtempSync(join(tmpdir(), 'donjon-bench-registry-'));
  const env = { PATH: process.env['PATH'] ?? '', DONJON_HOME: testHome, DOCKER_CONFIG: join(dir, 'docker') };
  try {
    const ref = parseReference(`${registry.host}/hello:1.0`);
    const wasm = new Uint8Array(readFileSync(hello));
    const pushed = await pushWorkload(new RegistryClient(ref.registry), ref, wasm);
    const pinned = `${registry.host}/hello@${pushed.digest}`;
    const bare = ['-e', 'process.stdout.write("x")'];
    const fromFile = [cli, 'run', '-q', hello];
    const fromRef = [cli, 'run', '-q', '--allow-unsigned', pinned];
    // Warm the file cache and the simulated root once, outside the measurement.
    await firstOutput(fromFile, env);
    await firstOutput(fromRef, env);
    const t = {
      bare: [] as number[],
      file: [] as number[],
      ref: [] as number[],
      cold: [] as number[],
      warm: [] as number[],
    };
    for (let i = 0; i < ROUNDS; i++) {
      // Interleaved, so that each sees the same machine load.
      t.bare.push(await firstOutput(bare, env));
      t.file.push(await firstOutput(fromFile, env));
      t.ref.push(await firstOutput(fromRef, env));
      const cacheDir = join(dir, `cache-${i}`);
      const cache = new BlobCache(cacheDir);
      let t0 = performance.now();
      await pullArtifact({ reference: pinned, keys: [] }, { cache });
      t.cold.push(performance.now() - t0);
      t0 = performance.now();
      await pullArtifact({ reference: pinned, keys: [] }, { cache });
      t.warm.push(performance.now() - t0);
      rmSync(cacheDir, { recursive: true, force: true });
    }
    const ms = (xs: number[]): string => `${median(xs).toFixed(1)} ms`;
    return `## Workloads from a registry

Median of ${ROUNDS} interleaved rounds against docker-registry on loopback, the hello example (${wasm.byteLength}
bytes), unsigned (no signature fetch).

| measurement | time |
|---|---|
| bare Node start to first output (\`node -e\`) | ${ms(t.bare)} |
| \`donjon run FILE\` to first output | ${ms(t.file)} |
| \`donjon run REF\` (pinned; the client pulls every time: uncached) to first output | ${ms(t.ref)} |
| host pull of a deployment's artifact by digest, empty blob cache | ${ms(t.cold)} |
| host pull of a deployment's artifact by digest, warm blob cache | ${ms(t.warm)} |
`;
  } finally {
    await registry.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
