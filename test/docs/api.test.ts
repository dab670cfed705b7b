import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { API_ROUTES } from '../../src/host/index.ts';
import { repoRoot } from '../helpers.ts';

const doc = readFileSync(join(repoRoot, 'docs', 'api.md'), 'utf8');
const documented = [...doc.matchAll(/^\| `(GET|POST|DELETE|PUT)` \| `([^`]+)` \|/gm)].map(
  (m) => `${m[1]} ${m[2]}`,
);

// API_ROUTES is the table the Keep Manager's server dispatches through (each entry carries its handler), so a
// route added to the server without a line in docs/api.md fails here.
test('docs/api.md lists exactly the routes the Keep Manager serves', () => {
  for (const route of API_ROUTES)
    assert.equal(typeof route.handle, 'function', `${route.method} ${route.path}`);
  assert.deepEqual(documented.sort(), API_ROUTES.map((r) => `${r.method} ${r.path}`).sort());
});
