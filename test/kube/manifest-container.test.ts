// What contrib/container/Containerfile states and the manifests rely on, checked without a container engine
// (none runs here, so the image itself is not built by the tests): the tarball `npm pack` makes matches its
// COPY, the packed files hold what the entrypoint runs, and entrypoint, user and base match the manifests.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { keepPodCommand, planManifest, SIM_UID } from '../../src/kube/index.ts';
import { repoRoot } from '../helpers.ts';
import { goldenRequest } from './manifest-fixtures.ts';

const containerfile = readFileSync(join(repoRoot, 'contrib', 'container', 'Containerfile'), 'utf8');
const lines = containerfile.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  name: string;
  bin: Record<string, string>;
  engines: { node: string };
};

/** `*` of a COPY source as a regular expression. */
function glob(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
}

test("the Containerfile's COPY takes the tarball npm pack makes, which holds the bin and the dist it runs", () => {
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: repoRoot,
      encoding: 'utf8',
    }),
  ) as { filename: string; files: { path: string }[] }[];
  const copy = lines.find((l) => l.startsWith('COPY ') && !l.includes('--from'));
  const source = copy?.split(/\s+/)[1];
  assert.ok(source, 'a COPY of the tarball');
  assert.match(packed[0]!.filename, glob(source));
  assert.match(
    containerfile,
    new RegExp(`npm install --global --omit=dev .*/tmp/${source.replace('*', '\\*')}`),
  );
  const files = new Set(packed[0]!.files.map((f) => f.path));
  for (const f of [
    pkg.bin['donjon']!.replace(/^\.\//, ''),
    'dist/cli.cjs',
    'dist/cli-bundle.cjs',
    'dist/keep.cjs',
    'dist/keepldr.cjs',
  ]) {
    assert.ok(files.has(f), `the tarball holds ${f}`);
  }
});

test('the entrypoint is donjon, as the manifest command starts, linked to the bin of package.json', () => {
  assert.equal(lines.filter((l) => l.startsWith('ENTRYPOINT')).at(-1), 'ENTRYPOINT ["donjon"]');
  const command = keepPodCommand(planManifest(goldenRequest('sim')));
  assert.deepEqual(command.slice(0, 2), ['donjon', 'keep-pod']);
  const bin = pkg.bin['donjon']!.replace(/^\.\//, '');
  assert.ok(
    lines.includes(`RUN ln -s ../lib/node_modules/${pkg.name}/${bin} /usr/local/bin/donjon`),
    'the donjon command links to the installed bin',
  );
  assert.ok(
    lines.includes(
      `COPY --from=install /usr/local/lib/node_modules/${pkg.name} /usr/local/lib/node_modules/${pkg.name}`,
    ),
  );
});

test('the image runs as the uid of sim Pods, on Node.js 20 (the engines the package allows), in both stages', () => {
  assert.equal(lines.filter((l) => l.startsWith('USER')).at(-1), `USER ${SIM_UID}`);
  const bases = lines.filter((l) => l.startsWith('FROM ')).map((l) => l.split(/\s+/)[1]);
  assert.deepEqual(bases, ['node:20-bookworm-slim', 'node:20-bookworm-slim']);
  assert.equal(pkg.engines.node, '>=20');
  assert.match(containerfile, /pins it by digest/);
});
