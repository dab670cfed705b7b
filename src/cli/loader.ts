// The `donjon` command's entry (dist/cli.cjs): loads the CLI bundle (dist/cli-bundle.cjs, one script) through V8's
// code cache. A command's first run compiles the bundle as usual and, as it exits, saves what V8 compiled
// for it in the user's data directory; later runs of that command start from that code instead of parsing
// and compiling the bundle again. Node 20 has no compile cache for modules of its own (it came in Node 22).
//
// The cache is keyed by the bundle's SHA-256 (fixed at build time), the command, Node's version and the
// architecture; V8 refuses data made by another V8 or under other flags, and the command then compiles
// from source and saves fresh data. Files are written 0600 in a 0700 folder of the user's data directory,
// which is trusted as the rest of it is (it holds the user's simulated root and known hosts).
// NODE_DISABLE_COMPILE_CACHE=1, the switch Node gives its own cache, turns it off.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
import { startKeepAhead } from './keep-ahead.ts';
import { dataDir } from './paths.ts';

/** The SHA-256 (hex) of dist/cli-bundle.cjs, set by the build. */
declare const DONJON_CLI_BUNDLE_SHA256: string;

// A run's Keep starts now, on another core, while this process loads and starts the CLI.
if (process.argv[2] === 'run') startKeepAhead(process.argv.slice(3));

const bundle = join(dirname(fileURLToPath(import.meta.url)), 'cli-bundle.cjs');
const source = readFileSync(bundle, 'utf8');
const useCache = process.env['NODE_DISABLE_COMPILE_CACHE'] === undefined;
const command = /^[a-z][a-z-]{0,31}$/.test(process.argv[2] ?? '') ? process.argv[2]! : 'other';
const home = dataDir();
const cacheDir = join(home, 'code-cache');
const ownPrefix = `cli-${DONJON_CLI_BUNDLE_SHA256.slice(0, 32)}-`;
const cacheFile = join(cacheDir, `${ownPrefix}${command}-${process.version}-${process.arch}.v8`);

let cachedData: Buffer | undefined;
if (useCache) {
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    // None yet, or unreadable: compiled from source, and saved at exit.
  }
}
// The CommonJS wrapper, as Node's own loader gives a module.
const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
  filename: bundle,
  ...(cachedData === undefined ? {} : { cachedData }),
});
if (useCache && (cachedData === undefined || script.cachedDataRejected === true)) {
  process.once('exit', () => {
    try {
      // The cache lives in a data directory the commands made; it never makes one of its own.
      if (!existsSync(home)) return;
      mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
      const temporary = `${cacheFile}.${process.pid}.tmp`;
      writeFileSync(temporary, script.createCachedData(), { mode: 0o600 });
      renameSync(temporary, cacheFile);
      // Another build's caches are of no use to this one: they go when this one writes its own.
      for (const name of readdirSync(cacheDir)) {
        if (name.startsWith('cli-') && !name.startsWith(ownPrefix))
          rmSync(join(cacheDir, name), { force: true });
      }
    } catch {
      // A read-only or full data directory: the next run compiles from source again.
    }
  });
}
const run = script.runInThisContext() as (
  exports: object,
  require: NodeJS.Require,
  module: { exports: object },
  filename: string,
  dirname: string,
) => void;
const module = { exports: {} };
run(module.exports, createRequire(bundle), module, bundle, dirname(bundle));
