// Keep Manager benchmark: time to the workload's first stdout byte, cold and from the pool, beside a bare Node
// start; API latency with 100 idle Keeps; memory per idle Keep. Runnable alone: node --import tsx bench/keepmgr.ts
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { KeepManagerClient, measureRuntime, runWorkload } from '../src/client/index.ts';
import { KeepManager } from '../src/host/keepmgr/keepmgr.ts';
import { loadOrCreateSimRoot } from '../src/host/simroot.ts';
import { builtFile } from '../src/paths.ts';
import { example, testHome } from '../test/helpers.ts';

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 20);
const IDLE_KEEPS = Number(process.env['BENCH_IDLE_KEEPS'] ?? 100);

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/** RSS and PSS of a process in bytes, from smaps_rollup (PSS counts a page shared by n processes as 1/n). */
function memoryOf(pid: number): { rss: number; pss: number } {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (name: string): number =>
      Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
    return { rss: kb('Rss') * 1024, pss: kb('Pss') * 1024 };
  } catch {
    return { rss: 0, pss: 0 };
  }
}

async function manager(pool: number) {
  const root = await loadOrCreateSimRoot(testHome);
  const m = new KeepManager({
    runtimePath: builtFile('keep.cjs'),
    keepldrPath: builtFile('keepldr.cjs'),
    simRootPath: root.path,
    runDir: mkdtempSync(join(tmpdir(), 'donjon-bench-')),
    pool: { sim: pool },
  });
  const url = await m.listen();
  return { m, url, policy: { measurements: [measureRuntime()], trustSimulatedRoots: [root.fingerprint] } };
}

/** Request to first stdout byte of hello.wasm, `rounds` times, one at a time. */
async function firstByte(
  url: string,
  policy: { measurements: string[]; trustSimulatedRoots: string[] },
  pooled: boolean,
) {
  const wasm = new Uint8Array(readFileSync(example('hello')));
  const host = new KeepManagerClient(url);
  const times: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    if (pooled) await new Promise((r) => setTimeout(r, 400)); // let the pool refill, as it would between requests
    const t0 = performance.now();
    let first = 0;
    const stdout = new Writable({
      write(_c, _e, cb) {
        if (first === 0) first = performance.now() - t0;
        cb();
      },
    });
    await runWorkload({
      host,
      backend: 'sim',
      wasm,
      args: ['hello'],
      env: {},
      stdin: null,
      stdout,
      stderr: stdout,
      policy,
    });
    times.push(first);
  }
  return times;
}

export async function benchKeepmgr(): Promise<string> {
  const bare: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now();
    // A clean environment: this process runs under tsx, whose loader must not slow the baseline down.
    spawnSync(process.execPath, ['-e', '0'], { env: { PATH: process.env['PATH'] ?? '' } });
    bare.push(performance.now() - t0);
  }
  const cold = await manager(0);
  const coldTimes = await firstByte(cold.url, cold.policy, false);
  await cold.m.close();
  const warm = await manager(1);
  await new Promise((r) => setTimeout(r, 1000));
  const poolTimes = await firstByte(warm.url, warm.policy, true);
  await warm.m.close();

  // 100 idle Keeps, then the API's latency and what each idle Keep costs.
  const idle = await manager(0);
  const host = new KeepManagerClient(idle.url);
  const ids: string[] = [];
  for (let i = 0; i < IDLE_KEEPS; i++) ids.push((await host.createKeep('sim')).id);
  await new Promise((r) => setTimeout(r, 500));
  const list: number[] = [];
  const one: number[] = [];
  for (let i = 0; i < 200; i++) {
    let t0 = performance.now();
    await host.listKeeps();
    list.push(performance.now() - t0);
    t0 = performance.now();
    await host.getKeep(ids[i % ids.length]!);
    one.push(performance.now() - t0);
  }
  let rss = 0;
  let pss = 0;
  for (const id of ids) {
    const k = await host.getKeep(id);
    for (const pid of [k.keepldrPid, k.keepPid]) {
      if (pid === undefined) continue;
      const m = memoryOf(pid);
      rss += m.rss;
      pss += m.pss;
    }
  }
  await idle.m.close();

  const f = (x: number): string => x.toFixed(1);
  const bareMed = quantile(bare, 0.5);
  return `## Keep Manager (issue goal: first byte from the pool under one bare Node start)

Medians and p99 of ${ROUNDS} sequential runs of hello.wasm through the SDK against an in-process Keep Manager
(no CLI process start): from the client's create request to the workload's first stdout byte.

| what | median ms | p99 ms |
|---|---|---|
| \`node -e 0\` (a bare Node start) | ${f(bareMed)} | ${f(quantile(bare, 0.99))} |
| first stdout byte, cold Keep | ${f(quantile(coldTimes, 0.5))} | ${f(quantile(coldTimes, 0.99))} |
| first stdout byte, Keep from the pool | ${f(quantile(poolTimes, 0.5))} | ${f(quantile(poolTimes, 0.99))} |
| **pool / bare start** | **${(quantile(poolTimes, 0.5) / bareMed).toFixed(2)}** | |

With ${IDLE_KEEPS} idle Keeps (ready, no workload):

| what | median ms | p99 ms |
|---|---|---|
| \`GET /v1/keeps\` | ${f(quantile(list, 0.5))} | ${f(quantile(list, 0.99))} |
| \`GET /v1/keeps/{id}\` | ${f(quantile(one, 0.5))} | ${f(quantile(one, 0.99))} |

Memory per idle Keep (Keep Loader + Keep processes): PSS ${(pss / ids.length / 2 ** 20).toFixed(1)} MiB, RSS ${(rss / ids.length / 2 ** 20).toFixed(1)} MiB.
`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(await benchKeepmgr());
}
