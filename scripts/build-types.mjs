// Emits the TypeScript declarations of the package's entry points (donjon/client, donjon/attestation,
// donjon/attestation/sim) into dist/types, for the `types` conditions of package.json's exports map. Run
// after scripts/build.mjs, which empties dist/.
//
// The sources import each other with `.ts` extensions (tsconfig's allowImportingTsExtensions), and tsc keeps
// them in declarations (rewriteRelativeImportExtensions rewrites JavaScript output only). TypeScript 5 reads
// `./x.ts` in a declaration file as `./x.d.ts`; TypeScript 4.7 to 4.9 refuse it. The relative specifiers are
// therefore rewritten to `.js`, which every TypeScript that knows `exports` maps reads as `./x.d.ts`.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const OUT = 'dist/types';
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
rmSync(OUT, { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);

// `from './x.ts'`, `import './x.ts'` and `import('./x.ts')`, relative specifiers only.
const SPECIFIER = /((?:\bfrom|\bimport)\s*\(?\s*)(['"])(\.{1,2}\/[^'"]*?)\.ts\2/g;
for (const entry of readdirSync(OUT, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.d.ts')) continue;
  const path = join(entry.parentPath ?? entry.path, entry.name);
  const text = readFileSync(path, 'utf8');
  const rewritten = text.replace(SPECIFIER, '$1$2$3.js$2');
  if (rewritten !== text) writeFileSync(path, rewritten);
}
