import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClientError, checkSupportedFiles, DEFAULT_FILES, parseEnarxToml } from '../../src/client/index.ts';

const invalid = (pattern: RegExp) => (e: unknown) =>
  e instanceof ClientError && e.code === 'ERR_CONFIG_INVALID' && pattern.test(e.message);

test('parseEnarxToml() gives Enarx defaults: stdin, stdout, stderr when files is absent', () => {
  assert.deepEqual(parseEnarxToml('args = ["a"]\n[env]\nX = "1"\n'), {
    args: ['a'],
    env: { X: '1' },
    files: DEFAULT_FILES,
  });
});

test('parseEnarxToml() reads listen and connect files with Enarx defaults (tls, port 443, addr ::)', () => {
  const c = parseEnarxToml(
    '[[files]]\nkind = "null"\n[[files]]\nkind = "listen"\nname = "web"\n' +
      '[[files]]\nkind = "connect"\nhost = "db.example"\nprot = "tcp"\nport = 5432\n',
  );
  assert.deepEqual(c.files, [
    { kind: 'null', name: 'null' },
    { kind: 'listen', name: 'web', prot: 'tls', port: 443, addr: '::' },
    { kind: 'connect', name: 'db.example', prot: 'tcp', port: 5432, host: 'db.example' },
  ]);
});

test('parseEnarxToml() refuses what Enarx refuses: a nameless listen, a hostless connect, ":" in a name', () => {
  assert.throws(() => parseEnarxToml('[[files]]\nkind = "listen"\nport = 1\n'), invalid(/without a name/));
  assert.throws(() => parseEnarxToml('[[files]]\nkind = "connect"\n'), invalid(/without a host/));
  assert.throws(() => parseEnarxToml('[[files]]\nkind = "null"\nname = "a:b"\n'), invalid(/":"/));
  assert.throws(
    () => parseEnarxToml('[[files]]\nkind = "listen"\nname = "a"\nport = 70000\n'),
    invalid(/0 to 65535/),
  );
  assert.throws(
    () => parseEnarxToml('[[files]]\nkind = "listen"\nname = "a"\nhost = "x"\n'),
    invalid(/unknown key "host"/),
  );
  assert.throws(
    () => parseEnarxToml('[[files]]\nkind = "listen"\nname = "a"\nprot = "udp"\n'),
    invalid(/prot/),
  );
});

test('checkSupportedFiles() refuses two stdins and two listeners of one name', () => {
  checkSupportedFiles(
    parseEnarxToml('[[files]]\nkind = "listen"\nname = "a"\n[[files]]\nkind = "listen"\nname = "b"\n').files,
  );
  assert.throws(
    () => checkSupportedFiles(parseEnarxToml('[[files]]\nkind = "stdin"\n[[files]]\nkind = "stdin"\n').files),
    invalid(/more than one stdin/),
  );
  assert.throws(
    () =>
      checkSupportedFiles(
        parseEnarxToml(
          '[[files]]\nkind = "listen"\nname = "a"\n[[files]]\nkind = "listen"\nname = "a"\nport = 2\n',
        ).files,
      ),
    invalid(/two listen files/),
  );
});
