import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { PREVIEW1_SIGNATURES } from '../../src/wasi/abi.ts';

// Keeps every preview1 function tested on an error path: a function added to the host's signature table
// fails this file until some test under test/wasi/ asserts one of its errors. An error-path assertion is
// a line that names the function as a string literal and expects an errno other than success, as in
// `assert.equal(h.call('fd_seek', 1, 0n, 0, 0), errno.spipe)` or a table row
// `['fd_close', [77], errno.badf]`.

const NAMES = Object.keys(PREVIEW1_SIGNATURES);

/** Functions with no errno to test, and where their other end is tested instead. */
const NO_ERRNO: Readonly<Record<string, { why: string; testTitle: RegExp }>> = {
  proc_exit: {
    why: 'returns nothing: its only path is ending the run',
    testTitle: /proc_exit\(\) with any (argument|code)/,
  },
  sched_yield: {
    why: 'preview1 defines no failure for it',
    testTitle: /sched_yield\(\) succeeds/,
  },
};

const ERRNO_NOT_SUCCESS = /\berrno\.(?!success\b)[a-z0-9_]+/;
const QUOTED_NAME = /['"]([a-z_]+)['"]/g;

/** Maps each function to the `file:line` places that assert one of its errors. */
function errorPathCoverage(
  sources: readonly { file: string; text: string }[],
  names: readonly string[],
): Map<string, string[]> {
  const known = new Set(names);
  const found = new Map<string, string[]>(names.map((n) => [n, []]));
  for (const { file, text } of sources) {
    text.split('\n').forEach((line, i) => {
      if (!ERRNO_NOT_SUCCESS.test(line)) return;
      for (const m of line.matchAll(QUOTED_NAME)) {
        const name = m[1]!;
        if (known.has(name)) found.get(name)!.push(`${file}:${i + 1}`);
      }
    });
  }
  return found;
}

function testSources(): { file: string; text: string }[] {
  const dir = new URL('./', import.meta.url);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.test.ts') && f !== 'import-coverage.test.ts')
    .sort()
    .map((file) => ({ file, text: readFileSync(new URL(file, dir), 'utf8') }));
}

test('every preview1 function has a test asserting one of its errors', () => {
  const coverage = errorPathCoverage(testSources(), NAMES);
  const missing = NAMES.filter((n) => !(n in NO_ERRNO) && coverage.get(n)!.length === 0);
  assert.deepEqual(missing, [], `no error-path assertion for: ${missing.join(', ')}`);
});

test('the functions without an errno are preview1 functions, and their other path is tested', () => {
  const sources = testSources();
  for (const [name, { why, testTitle }] of Object.entries(NO_ERRNO)) {
    assert.ok(NAMES.includes(name), `${name} is not a preview1 function`);
    assert.ok(why.length > 0);
    assert.ok(
      sources.some(({ text }) =>
        [...text.matchAll(/\btest\((['"])(.*?)\1/g)].some((m) => testTitle.test(m[2]!)),
      ),
      `no test title matches ${testTitle} for ${name}`,
    );
  }
});

test('errorPathCoverage() counts only lines that name the function and expect a failing errno', () => {
  const c = errorPathCoverage(
    [
      {
        file: 'a.test.ts',
        text: [
          "assert.equal(h.call('fd_close', 77), errno.badf);",
          "assert.equal(h.call('fd_seek', 1, 0n, 0, 0), errno.success);",
          "// 'fd_tell' is mentioned, errno.badf is mentioned elsewhere",
          "['path_open', [3, 0], errno.noent],",
          "assert.equal(h.call('not_a_function', 1), errno.inval);",
        ].join('\n'),
      },
    ],
    ['fd_close', 'fd_seek', 'fd_tell', 'path_open'],
  );
  assert.deepEqual(Object.fromEntries(c), {
    fd_close: ['a.test.ts:1'],
    fd_seek: [],
    // A comment that says both still counts: the scan is by line, so keep such comments out of tests.
    fd_tell: ['a.test.ts:3'],
    path_open: ['a.test.ts:4'],
  });
});
