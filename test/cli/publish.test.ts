import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePublish } from '../../src/cli/workload.ts';
import { parseEnarxToml } from '../../src/client/index.ts';

const config = parseEnarxToml(`
[[files]]
kind = "stdin"
[[files]]
kind = "stdout"
[[files]]
kind = "stderr"
[[files]]
kind = "listen"
name = "web"
port = 8080
prot = "tcp"
`);

test('parsePublish() reads NAME=HOSTPORT for listen files of the Enarx.toml', () => {
  assert.deepEqual(parsePublish(['web=9090'], config), [{ name: 'web', hostPort: 9090 }]);
  assert.deepEqual(parsePublish(['web=0'], config), [{ name: 'web', hostPort: 0 }]);
  assert.deepEqual(parsePublish([], undefined), []);
});

test('parsePublish() refuses what would publish nothing, naming the listen files there are', () => {
  const usage = (pattern: RegExp) => (e: unknown) =>
    (e as { code?: string }).code === 'ERR_USAGE' && pattern.test((e as Error).message);
  assert.throws(
    () => parsePublish(['api=9090'], config),
    usage(/no listen file of that name \(it has web\)/),
  );
  assert.throws(() => parsePublish(['web=9090'], undefined), usage(/no listen file of that name$/));
  assert.throws(() => parsePublish(['web'], config), usage(/expected NAME=HOSTPORT/));
  assert.throws(() => parsePublish(['web=70000'], config), usage(/expected NAME=HOSTPORT/));
  assert.throws(() => parsePublish(['web=-1'], config), usage(/expected NAME=HOSTPORT/));
  assert.throws(() => parsePublish(['web=1', 'web=2'], config), usage(/twice/));
});
