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

const SECRETS_TOML = (extra: string) => `[[secrets]]
name = "db"
broker = "https://127.0.0.1:8788"
fingerprint = "${'AB:'.repeat(31)}AB"
${extra}
`;

test('parseEnarxToml() reads [[secrets]], the fingerprint in one form', () => {
  const c = parseEnarxToml(`${SECRETS_TOML('path = "/secrets/db"')}[[secrets]]
name = "api"
broker = "https://127.0.0.1:8788"
fingerprint = "${'ab'.repeat(32)}"
env = "API_KEY"
`);
  assert.deepEqual(c.secrets, [
    { name: 'db', broker: 'https://127.0.0.1:8788', fingerprint: 'ab'.repeat(32), path: '/secrets/db' },
    { name: 'api', broker: 'https://127.0.0.1:8788', fingerprint: 'ab'.repeat(32), env: 'API_KEY' },
  ]);
  assert.equal(parseEnarxToml('args = []').secrets, undefined);
});

test('parseEnarxToml() refuses a [[secrets]] entry a Keep could not honour, with ERR_CONFIG_INVALID', () => {
  assert.throws(() => parseEnarxToml(SECRETS_TOML('')), invalid(/exactly one of path/));
  assert.throws(
    () => parseEnarxToml(SECRETS_TOML('path = "/s/db"\nenv = "DB"')),
    invalid(/exactly one of path/),
  );
  assert.throws(
    () => parseEnarxToml(SECRETS_TOML('path = "/s/db"\nmode = 1')),
    invalid(/unknown key "mode"/),
  );
  assert.throws(
    () => parseEnarxToml(SECRETS_TOML('path = 1')),
    invalid(/secrets\[0\]\.path must be a string/),
  );
  assert.throws(
    () => parseEnarxToml(SECRETS_TOML('path = "/s/db"').replace('https://', 'http://')),
    invalid(/secrets\[0\]: broker .* not an https URL/),
  );
  assert.throws(
    () => parseEnarxToml(SECRETS_TOML('env = "DB"').replace('[[secrets]]', '[env]\nDB = "x"\n[[secrets]]')),
    invalid(/DB is also set in env/),
  );
  assert.throws(() => parseEnarxToml('secrets = "db"'), invalid(/array of tables/));
});
