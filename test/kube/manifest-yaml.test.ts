// The YAML writer of the manifests (src/kube/yaml.ts), in exact bytes. Whether a YAML reader reads it back
// as written is checked against kubectl's own reader in manifest-kustomize.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPlainSafe, toYaml, toYamlStream } from '../../src/kube/index.ts';

test('isPlainSafe() quotes what YAML 1.1 or 1.2 would read as a boolean, null, number, date or syntax', () => {
  for (const s of [
    'yes',
    'No',
    'ON',
    'off',
    'y',
    'true',
    'null',
    '~',
    '1',
    '1.0',
    '0x1F',
    '1e3',
    '.inf',
    'nan',
    '2026-01-01',
    '',
    ' a',
    'a ',
    'a: b',
    'a #b',
    '-x',
    '@x',
    '*x',
    '&x',
    '!x',
    '%x',
    '[x',
    '{x',
    '"x',
    "'x",
    'x,y',
    'é',
  ]) {
    assert.equal(isPlainSafe(s), false, JSON.stringify(s));
  }
  for (const s of [
    'keep',
    'donjon/backend',
    '/etc/donjon/config/Enarx.toml',
    'Enarx.toml',
    'app.kubernetes.io/name',
    'key-1.pub',
    'RuntimeDefault',
  ]) {
    assert.equal(isPlainSafe(s), true, s);
  }
});

test('toYaml() writes maps, lists, empty ones, integers, booleans and blocks with each chomping', () => {
  const text = toYaml({
    a: 'plain',
    b: 'needs: quotes',
    c: [1, true, false, 'x', { d: 'e', f: [] }, []],
    g: {},
    h: 'one line\n',
    i: 'no break\nat end',
    j: 'kept\n\n',
    k: '  leading\n',
    l: [{ m: 'two\nlines\n' }],
  });
  assert.equal(
    text,
    [
      'a: plain',
      'b: "needs: quotes"',
      'c:',
      '  - 1',
      '  - true',
      '  - false',
      '  - x',
      '  - d: e',
      '    f: []',
      '  - []',
      'g: {}',
      'h: |',
      '  one line',
      'i: |-',
      '  no break',
      '  at end',
      'j: |+',
      '  kept',
      '',
      'k: "  leading\\n"',
      'l:',
      '  - m: |',
      '      two',
      '      lines',
      '',
    ].join('\n'),
  );
  assert.equal(toYamlStream([{ a: 'b' }, { c: 'd' }]), '---\na: b\n---\nc: d\n');
  assert.throws(() => toYaml({ x: 1.5 }), /not an integer/);
});
