// `kubectl kustomize` (offline: it needs no cluster) over a kustomization that includes the generated file:
// the YAML parses as Kubernetes objects, and reads back as exactly the objects the JSON output holds,
// tricky strings included. Where kubectl is missing the tests are skipped with the reason, except under
// CI=true, where that is a failure: .ci/run installs Debian's kubectl (kubernetes-client).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { formatManifest, type KubeObject, toYamlStream } from '../../src/kube/index.ts';
import { goldenObjects } from './manifest-fixtures.ts';

function kubectlMissing(): string | undefined {
  if (spawnSync('sh', ['-c', 'command -v kubectl'], { stdio: 'ignore' }).status === 0) return undefined;
  const why = 'kubectl is not installed (apt-get install kubernetes-client)';
  if (process.env['CI'] === 'true') throw new Error(`Cannot run the kustomize tests under CI: ${why}`);
  return why;
}

const absent = kubectlMissing();
const dirs: string[] = [];

/** `kubectl kustomize` over a kustomization whose one resource is `text`: its stdout. */
function kustomize(text: string, file = 'manifest.yaml'): string {
  const dir = mkdtempSync(join(tmpdir(), 'donjon-kustomize-'));
  dirs.push(dir);
  writeFileSync(join(dir, file), text);
  writeFileSync(
    join(dir, 'kustomization.yaml'),
    `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ${file}\n`,
  );
  const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `kubectl kustomize failed: ${r.stderr}`);
  return r.stdout;
}

/** The same objects written as JSON documents (YAML 1.2 reads JSON), for kustomize to normalise. */
function jsonDocuments(objects: readonly KubeObject[]): string {
  return objects.map((o) => `---\n${JSON.stringify(o)}\n`).join('');
}

after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('kubectl kustomize over the generated manifest', { skip: absent }, () => {
  for (const backend of ['sim', 'cvm'] as const) {
    test(`the ${backend} YAML builds, and reads back as the very objects --json prints`, () => {
      const objects = goldenObjects(backend);
      const fromYaml = kustomize(formatManifest(objects, false));
      assert.match(fromYaml, /^kind: Deployment$/m);
      assert.match(fromYaml, /^ {2}replicas: 3$/m);
      assert.equal(fromYaml, kustomize(jsonDocuments(objects)));
    });
  }

  test('strings YAML could misread (booleans, numbers, dates, syntax, blocks with each chomping) read back as written', () => {
    const tricky = [
      'true',
      'False',
      'yes',
      'NO',
      'on',
      'off',
      'y',
      'n',
      'null',
      '~',
      '',
      ' ',
      '0',
      '1.0',
      '0x1F',
      '0o17',
      '1e3',
      '.inf',
      '-.inf',
      '.NaN',
      '2026-01-01',
      '12:30:00',
      '-',
      '- x',
      ':',
      'a: b',
      'a #b',
      '#x',
      '@x',
      '`x',
      '*a',
      '&a',
      '!x',
      '%x',
      '|',
      '>',
      '[x]',
      '{x}',
      '"q"',
      "'s'",
      'x, y',
      'tab\there',
      'back\\slash',
      'unicode é ✓ 𝄞',
      'line\n',
      'two\nlines',
      'kept\n\n\n',
      'first\n  indented\n',
      '  leading\nspace\n',
      'crlf\r\nline\r\n',
      'spaces only\n   \nline\n',
      'ctrl\u0001char',
      'nbsp\u00a0x',
      'trailing space ',
      '\ttab first\n',
    ];
    const config: KubeObject = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'tricky', labels: { yes: 'no', on: 'true' } },
      data: Object.fromEntries(tricky.map((t, i) => [`k${i}`, t])),
    };
    assert.equal(kustomize(toYamlStream([config])), kustomize(jsonDocuments([config])));
  });
});
