import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { optimizingCostMs, TierHistory, TRY_FACTOR } from '../../src/client/index.ts';
import { RUNS_KEPT } from '../../src/client/tiers.ts';

const A = 'a'.repeat(64);
/** A small module (the size of the benchmark kernels) and the run time from which it is worth a try. */
const SMALL = 80_000;
const WORTH = TRY_FACTOR * optimizingCostMs(SMALL);
const B = 'b'.repeat(64);

function fresh(): { history: TierHistory; path: string } {
  const path = join(mkdtempSync(join(tmpdir(), 'donjon-tiers-')), 'sub', 'tiers.json');
  return { history: new TierHistory(path), path };
}

describe('TierHistory', () => {
  test('a module never run before gets the default tier', () => {
    const { history } = fresh();
    assert.deepEqual(history.choose(A, SMALL), { tier: 'default', reason: 'first run of this module' });
  });

  test('a short run stays on the default tier; a long one is tried with the optimizing tier next', () => {
    const { history } = fresh();
    assert.ok(WORTH > 150 && WORTH < 300, String(WORTH));
    history.record(A, 'default', WORTH - 1);
    assert.equal(history.choose(A, SMALL).tier, 'default');
    history.record(A, 'default', 1500);
    const choice = history.choose(A, SMALL);
    assert.equal(choice.tier, 'optimizing');
    assert.match(choice.reason, /1\.5 s/);
    assert.equal(history.choose(B, SMALL).tier, 'default');
  });

  test('a large module needs a longer run before the optimizing tier is worth a try', () => {
    const { history } = fresh();
    const yosys = 29.4 * 2 ** 20;
    history.record(A, 'default', 1000);
    assert.equal(history.choose(A, SMALL).tier, 'optimizing');
    assert.equal(history.choose(A, yosys).tier, 'default');
    history.record(A, 'default', 2000);
    assert.equal(history.choose(A, yosys).tier, 'optimizing');
  });

  test('once both tiers are timed, the optimizing one is kept only when clearly faster', () => {
    const { history } = fresh();
    history.record(A, 'default', 3000);
    history.record(A, 'optimizing', 2800);
    // Within 10%: not worth the slower start.
    assert.equal(history.choose(A, SMALL).tier, 'default');
    history.record(A, 'optimizing', 2700);
    assert.equal(history.choose(A, SMALL).tier, 'optimizing');
    assert.match(history.choose(A, SMALL).reason, /2\.7 s optimizing, 3\.0 s default/);
  });

  test('a tier counts its fastest recent run: one slow run under load does not flip the choice', () => {
    const { history } = fresh();
    history.record(A, 'default', 1000);
    history.record(A, 'optimizing', 450);
    // A run slowed down by load, which the latest time alone would have compared as 950 against 1000.
    history.record(A, 'optimizing', 950);
    assert.equal(history.choose(A, SMALL).tier, 'optimizing');
    // Likewise a slow default run does not make the optimizing tier look better than it is.
    history.record(B, 'default', 1000);
    history.record(B, 'optimizing', 950);
    history.record(B, 'default', 1500);
    assert.equal(history.choose(B, SMALL).tier, 'default');
  });

  test('a tier remembers its last few runs only, so a module that changed is seen within a few runs', () => {
    const { history, path } = fresh();
    history.record(A, 'default', 1000);
    history.record(A, 'optimizing', 300);
    for (let i = 0; i < RUNS_KEPT - 1; i++) history.record(A, 'optimizing', 990);
    assert.equal(history.choose(A, SMALL).tier, 'optimizing');
    history.record(A, 'optimizing', 990);
    assert.equal(history.choose(A, SMALL).tier, 'default');
    const json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, { optimizing: number[] }>;
    assert.deepEqual(json[A]?.optimizing, Array(RUNS_KEPT).fill(990));
  });

  test('a run the user forced to the optimizing tier counts too', () => {
    const { history } = fresh();
    history.record(A, 'optimizing', 5000);
    assert.equal(history.choose(A, SMALL).tier, 'optimizing');
    history.record(B, 'optimizing', 20);
    assert.equal(history.choose(B, SMALL).tier, 'default');
  });

  test('persists across instances, in a file only its owner can read', () => {
    const { history, path } = fresh();
    history.record(A, 'default', 2000);
    assert.equal(new TierHistory(path).choose(A, SMALL).tier, 'optimizing');
    const json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, { default: number[]; at: number }>;
    assert.deepEqual(json[A]?.default, [2000]);
  });

  test('reads a file that holds one time per tier, as files did before run lists', () => {
    const { history, path } = fresh();
    history.record(B, 'default', 1);
    writeFileSync(path, JSON.stringify({ [A]: { at: 1, default: 3000, optimizing: 1000 } }));
    assert.equal(history.choose(A, SMALL).tier, 'optimizing');
    history.record(A, 'optimizing', 2950);
    assert.equal(history.choose(A, SMALL).tier, 'optimizing');
    const json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, { optimizing: number[] }>;
    assert.deepEqual(json[A]?.optimizing, [1000, 2950]);
  });

  test('a damaged file counts as empty, keeps only well-formed entries, and is rewritten at the next record', () => {
    for (const text of ['', 'not json', '[1,2]', 'null', '{"zz":{"at":1,"default":5000}}']) {
      const { history, path } = fresh();
      history.record(B, 'default', 1);
      writeFileSync(path, text);
      assert.equal(history.choose(A, SMALL).tier, 'default', text);
      history.record(A, 'default', 4000);
      assert.equal(history.choose(A, SMALL).tier, 'optimizing', text);
    }
    const { history, path } = fresh();
    history.record(B, 'default', 1);
    writeFileSync(
      path,
      JSON.stringify({
        [A]: { at: 1, default: 'slow' },
        [B]: { at: 1, default: 5000, optimizing: -1 },
        ['c'.repeat(64)]: { at: 1, default: [] },
        ['d'.repeat(64)]: { at: 1, default: [5000, 'x'] },
        ['e'.repeat(64)]: { at: 1, default: Array(RUNS_KEPT + 1).fill(5000) },
      }),
    );
    for (const digest of [A, B, 'c'.repeat(64), 'd'.repeat(64), 'e'.repeat(64)]) {
      assert.equal(history.choose(digest, SMALL).tier, 'default', digest);
    }
  });

  test('remembers at most 512 modules, forgetting the least recently run', () => {
    const { history, path } = fresh();
    for (let i = 0; i < 520; i++) history.record(i.toString(16).padStart(64, '0'), 'default', 5000);
    const json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    assert.equal(Object.keys(json).length, 512);
    assert.equal(history.choose('0'.repeat(64), SMALL).tier, 'default');
    assert.equal(history.choose((519).toString(16).padStart(64, '0'), SMALL).tier, 'optimizing');
  });

  test('refuses a bad digest or run time', () => {
    const { history } = fresh();
    assert.throws(() => history.record('xyz', 'default', 1), TypeError);
    assert.throws(() => history.record(A, 'default', Number.NaN), TypeError);
    assert.throws(() => history.record(A, 'default', -1), TypeError);
  });
});
