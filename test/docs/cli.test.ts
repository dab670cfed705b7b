import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CATEGORY_EXIT, CliError, EXIT, exitStatusFor, exitStatusOf } from '../../src/cli/errors.ts';
import { type ErrorCategory, errorCategories } from '../../src/lib/errors.ts';
import { repoRoot } from '../helpers.ts';

const doc = readFileSync(join(repoRoot, 'docs', 'cli.md'), 'utf8');

interface Row {
  status: number;
  category: ErrorCategory | undefined;
  meaning: string;
}

/** The rows of the table under "## Exit status": status, category (`—` for none), meaning. */
function exitTable(): Row[] {
  const start = doc.indexOf('\n## Exit status\n');
  assert.notEqual(start, -1, 'docs/cli.md has an "## Exit status" section');
  const end = doc.indexOf('\n## ', start + 1);
  const section = doc.slice(start, end === -1 ? undefined : end);
  const rows: Row[] = [];
  for (const line of section.split('\n')) {
    const m = /^\| (\S+) \| (\S+) \| (.+) \|$/.exec(line);
    if (!m || m[1] === 'status' || m[1]!.startsWith('---')) continue;
    assert.match(m[1]!, /^\d+$/, `a status is one number: ${line}`);
    const category = m[2] === '—' ? undefined : /^`(\w+)`$/.exec(m[2]!)?.[1];
    assert.ok(m[2] === '—' || errorCategories.includes(category as ErrorCategory), `a category: ${line}`);
    rows.push({ status: Number(m[1]), category: category as ErrorCategory | undefined, meaning: m[3]! });
  }
  return rows;
}

test('docs/cli.md has one exit status table, and every status of EXIT is in it once', () => {
  const rows = exitTable();
  const statuses = rows.map((r) => r.status);
  assert.deepEqual(
    [...statuses].sort((a, b) => a - b),
    [...new Set(Object.values(EXIT))].sort((a, b) => a - b),
  );
  assert.equal(new Set(statuses).size, statuses.length, 'no status twice');
  assert.equal(doc.match(/^\| status \|/gm)?.length, 1, 'one table of statuses in docs/cli.md');
});

test("docs/cli.md gives each category the status exitStatusFor() ends with, and no status a category's unless it says so", () => {
  const rows = exitTable();
  for (const category of errorCategories) {
    const row = rows.find((r) => r.category === category);
    assert.ok(row, `docs/cli.md has a row for category ${category}`);
    assert.equal(row.status, exitStatusFor(category), category);
  }
  for (const row of rows) {
    if (row.category !== undefined) assert.equal(exitStatusFor(row.category), row.status);
    else
      assert.ok(!Object.values(CATEGORY_EXIT).includes(row.status), `${row.status} is a category's status`);
  }
});

test('docs/cli.md gives an interruption the status exitStatusOf() ends it with', () => {
  const interrupted = exitTable().find((r) => r.meaning.includes('ERR_INTERRUPTED'));
  assert.equal(interrupted?.status, exitStatusOf(new CliError('ERR_INTERRUPTED', 'Interrupted')));
  assert.equal(interrupted?.status, EXIT.interrupted);
});
