// `npm run bench`: every benchmark of the project, each measured side by side with its baseline in one run,
// written to bench/RESULTS.md with the machine they ran on. `npm run bench -- startup warm` (or
// BENCH_ONLY=startup,warm) runs only those sections and prints them without touching bench/RESULTS.md.
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect, createServer } from 'node:tls';
import { signSimReport } from '../src/attestation/sim/index.ts';
import { loadOrCreateSimRoot } from '../src/host/simroot.ts';
import { BINDING_DOMAIN, makeKeepCertificate, reportDataFor, spkiOf } from '../src/ratls/index.ts';
import { repoRoot } from '../test/helpers.ts';

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 15);
const cli = join(repoRoot, 'bin', 'donjon.js');
const hello = join(repoRoot, 'examples', 'hello', 'hello.wasm');
// The benchmarks' own data directory (as bench/startup.ts): a warm simulated root, the CLI's code cache, and the
// tier history of these runs alone (the tests' data directory holds what the tests taught it).
const benchHome = join(repoRoot, '.donjon-bench', 'home');
const env = { PATH: process.env['PATH'] ?? '', DONJON_HOME: benchHome };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function timeCommand(args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const t = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr.toString()}`);
  return t;
}

async function timeAsync(n: number, f: () => Promise<unknown> | unknown): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await f();
    times.push(performance.now() - t0);
  }
  return median(times);
}

const only = [...process.argv.slice(2), ...(process.env['BENCH_ONLY'] ?? '').split(',')].filter(Boolean);
const wanted = (name: string): boolean => only.length === 0 || only.includes(name);

async function benchRun(): Promise<string> {
  const root = await loadOrCreateSimRoot(benchHome);
  // Warm the file cache, the simulated root and the CLI's code cache once, outside the measurement.
  timeCommand([cli, 'run', '-q', hello]);

  const bare: number[] = [];
  const run: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    // Interleaved, so that both see the same machine load.
    bare.push(timeCommand(['-e', '0']));
    run.push(timeCommand([cli, 'run', '-q', hello]));
  }
  const bareMs = median(bare);
  const runMs = median(run);

  // The pieces.
  const cliStart = median(Array.from({ length: ROUNDS }, () => timeCommand([cli, '--version'])));
  const keygen = await timeAsync(ROUNDS, () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }));
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const nonce = new Uint8Array(randomBytes(32));
  const reportData = reportDataFor({ domain: BINDING_DOMAIN, spki: spkiOf(privateKey), nonce });
  const measurement = new Uint8Array(48);
  const sign = await timeAsync(ROUNDS, () => signSimReport(root.material, { reportData, measurement }));
  const report = signSimReport(root.material, { reportData, measurement });
  const certs = [root.material.vcekDer, root.material.askDer, root.material.arkDer];
  const makeCert = await timeAsync(ROUNDS, () =>
    makeKeepCertificate({ privateKey, nonce, now: new Date(), evidence: { kind: 'sev-snp', report, certs } }),
  );
  const { verifyKeepCertificate } = await import('../src/ratls/index.ts');
  const { measureRuntime } = await import('../src/client/index.ts');
  const certDer = makeKeepCertificate({
    privateKey,
    nonce,
    now: new Date(),
    evidence: { kind: 'sev-snp', report, certs },
  });
  const policy = {
    measurements: [Buffer.from(measurement).toString('hex')],
    trustSimulatedRoots: [root.fingerprint],
  };
  const verify = await timeAsync(ROUNDS, () =>
    verifyKeepCertificate(certDer, { nonce, policy, now: new Date() }),
  );
  const wasmBytes = readFileSync(hello);
  const wasmApi = (globalThis as unknown as { WebAssembly: { compile(b: Uint8Array): Promise<unknown> } })
    .WebAssembly;
  const compile = await timeAsync(ROUNDS, () => wasmApi.compile(wasmBytes));
  const measure = await timeAsync(ROUNDS, () => measureRuntime());

  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' });
  const certPem = `-----BEGIN CERTIFICATE-----\n${Buffer.from(certDer).toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`;
  const server = createServer({ key: keyPem, cert: certPem, minVersion: 'TLSv1.3' }, (s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const handshake = await timeAsync(
    ROUNDS,
    () =>
      new Promise<void>((resolve, reject) => {
        const s = connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => {
          s.destroy();
          resolve();
        });
        s.on('error', reject);
      }),
  );
  server.close();

  const ratio = runMs / bareMs;
  const f = (x: number): string => x.toFixed(1);
  return `## donjon run, end to end, and its pieces

Medians of ${ROUNDS} rounds, the two commands interleaved so that both see the same machine load.

| what | median ms |
|---|---|
| \`node -e 0\` (a bare Node start) | ${f(bareMs)} |
| \`donjon run -q examples/hello/hello.wasm\` (embedded host, sim backend) | ${f(runMs)} |
| **ratio** | **${ratio.toFixed(2)} bare starts** |

## Where the time goes

A run starts two Node processes (the CLI, whose embedded host plays the Keep Loader, and the Keep) and the WASI
worker thread, then does the cryptography of steps 4–7 and compiles the module.

| piece | median ms |
|---|---|
| CLI process start (\`donjon --version\`) | ${f(cliStart)} |
| ECDSA P-256 key generation (Keep) | ${f(keygen)} |
| simulated SNP report signing (Keep Loader) | ${f(sign)} |
| Keep certificate with evidence (Keep) | ${f(makeCert)} |
| certificate + evidence verification (client) | ${f(verify)} |
| TLS 1.3 handshake on loopback | ${f(handshake)} |
| runtime measurement, SHA-384 of dist/keep.cjs (client and Keep Loader) | ${f(measure)} |
| \`WebAssembly.compile\` of hello.wasm (${wasmBytes.length} bytes) | ${f(compile)} |
`;
}

// Each section is loaded when it runs; one that fails is reported in the results and the others still run.
const { startupSections } = await import('./startup.ts');
const sections: [string, () => Promise<string>][] = [
  ...startupSections,
  ['run', benchRun],
  ['attestation', async () => (await import('./attestation.ts')).benchAttestation()],
  ['keepmgr', async () => (await import('./keepmgr.ts')).benchKeepmgr()],
  ['wasi', async () => (await import('./wasi.ts')).benchWasi()],
  ['services', async () => (await import('./services.ts')).benchServices()],
  ['broker', async () => (await import('./broker.ts')).benchBroker()],
  ['registry', async () => (await import('./registry.ts')).benchRegistry()],
];
const cpu = cpus()[0]?.model ?? 'unknown CPU';
let md = `# Benchmark results

Recorded by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}: ${cpu}, ${cpus().length} cores,
${Math.round(totalmem() / 2 ** 30)} GiB, Node.js ${process.version}. Each figure is measured beside its
baseline in the same run; shared machines are noisy, so read the ratios.
`;
for (const [name, run] of sections) {
  if (!wanted(name)) continue;
  process.stderr.write(`bench: ${name}\n`);
  try {
    md += `\n${await run()}`;
  } catch (error) {
    md += `\n## ${name}\n\nNot measured: ${(error as Error).message.split('\n')[0]}\n`;
  }
}
// Only a run of every section is a record of the machine.
if (only.length === 0) writeFileSync(join(repoRoot, 'bench', 'RESULTS.md'), md);
process.stdout.write(md);
