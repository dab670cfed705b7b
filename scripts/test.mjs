// Runs every test file under test/ (or those given) with node:test through tsx. Node 20's test runner
// does not expand globs itself. The soak and compatibility suites are left to their own scripts
// (npm run test:soak, npm run test:compat): they take minutes, or need large optional packages.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function walk(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (dir === 'test' && (name === 'soak' || name === 'compat')) continue;
      walk(p, out);
    } else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const args = process.argv.slice(2);
const files =
  args.length > 0 ? args.flatMap((a) => (statSync(a).isDirectory() ? walk(a, []) : [a])) : walk('test', []);
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
