import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Locates the installed package's root: the first folder above this module holding Donjon's package.json.
 * The same code runs bundled (dist/*.js) and from source (src/**), so a fixed relative path would not do.
 */
export function packageRoot(from: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(from));
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: unknown };
      if (pkg.name === 'donjon') return dir;
    }
    const parent = dirname(dir);
    if (parent === dir)
      throw new Error('Cannot locate the donjon package root: no package.json named donjon above it');
    dir = parent;
  }
}

/** The built programs of this version, by name. */
export function builtFile(name: 'keep.cjs' | 'keepldr.cjs' | 'cli.cjs'): string {
  return join(packageRoot(), 'dist', name);
}

/** This package's version, as recorded in its package.json. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}
