// Bundles the three programs of Donjon (the CLI, the Keep Loader and the Keep runtime) and the SDK entry
// points; their declarations come from scripts/build-types.mjs. The Keep runtime is one self-contained file
// on purpose: its SHA-384 is the measurement a simulated Keep reports and `donjon measure` prints, so the
// build must be deterministic.
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
  external: ['better-sqlite3'],
  // Some bundled CommonJS dependencies call require(); give the ESM bundle one. better-sqlite3 is a native
  // module: it stays in node_modules and is loaded only by the daemon.
  banner: {
    js: "import { createRequire as __donjonRequire } from 'node:module'; const require = __donjonRequire(import.meta.url);",
  },
};

// Chunk names carry content hashes: start from an empty folder so that old chunks do not pile up.
rmSync('dist', { recursive: true, force: true });

// The WASI worker's code, one CommonJS script the Keep bundle carries as text (see src/keep/main.ts).
const wasiWorker = await build({
  ...common,
  format: 'cjs',
  entryPoints: ['src/wasi/worker-entry.ts'],
  write: false,
  banner: { js: "'use strict';" },
});
const wasiWorkerSource = wasiWorker.outputFiles[0].text;

await Promise.all([
  build({
    ...common,
    entryPoints: {
      client: 'src/client/index.ts',
      attestation: 'src/attestation/index.ts',
      // The simulator signs evidence: an entry of its own, so the verifier's entry never carries it.
      'attestation/sim': 'src/attestation/sim/index.ts',
    },
    outdir: 'dist',
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
  }),
]);

// The CLI is one CommonJS script (dist/cli-bundle.cjs), each command's code evaluated when it runs, so that V8
// can cache what it compiles for a command as one piece; the command's entry, dist/cli.cjs (also CommonJS:
// no ES module loader to start), loads it through that cache (see src/cli/loader.ts), knowing the bundle by
// its SHA-256.
const cjs = {
  format: 'cjs',
  outExtension: { '.js': '.cjs' },
  outdir: 'dist',
  // Strict, as the ES modules it is made of; import.meta.url is the bundle's own URL.
  banner: { js: "'use strict'; const __donjonUrl = require('node:url').pathToFileURL(__filename).href;" },
};
await build({
  ...common,
  ...cjs,
  entryPoints: { 'cli-bundle': 'src/cli/main.ts' },
  define: { 'import.meta.url': '__donjonUrl' },
});
// The Keep runtime and the Keep Loader are CommonJS too (dist/keep.cjs, dist/keepldr.cjs): a Keep's start does not
// wait for the ES module loader, nor for the module facades it builds for each built-in a module imports
// (about 13 ms of a Keep's start).
await build({
  ...common,
  ...cjs,
  entryPoints: { keep: 'src/keep/main.ts' },
  define: { 'import.meta.url': '__donjonUrl', DONJON_WASI_WORKER_SOURCE: JSON.stringify(wasiWorkerSource) },
});
await build({
  ...common,
  ...cjs,
  entryPoints: { keepldr: 'src/host/keepldr/main.ts' },
  define: { 'import.meta.url': '__donjonUrl' },
});
const bundleSha256 = createHash('sha256').update(readFileSync('dist/cli-bundle.cjs')).digest('hex');
await build({
  ...common,
  ...cjs,
  entryPoints: { cli: 'src/cli/loader.ts' },
  define: { 'import.meta.url': '__donjonUrl', DONJON_CLI_BUNDLE_SHA256: JSON.stringify(bundleSha256) },
});

// V8 holds a source with any character beyond ASCII as two bytes a character, and parses it more slowly: the
// Keep's start and the CLI's compile both pay for it. A character outside ASCII that reaches a bundle (esbuild
// escapes those of strings, not those of the comments it keeps) fails the build here, with where it is.
for (const file of ['dist/keep.cjs', 'dist/keepldr.cjs', 'dist/cli-bundle.cjs', 'dist/cli.cjs']) {
  const lines = readFileSync(file, 'latin1').split('\n');
  const found = lines.flatMap((line, i) =>
    /[^\x00-\x7f]/.test(line) ? [`${file}:${i + 1}: ${line.trim()}`] : [],
  );
  if (found.length > 0) {
    throw new Error(
      `Cannot finish the build: these bundle lines are not ASCII (write the comment in ASCII):\n${found.join('\n')}`,
    );
  }
}
