import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { API_ROUTES } from '../../src/host/keepmgr/keepmgr.ts';
import { repoRoot } from '../helpers.ts';

const doc = readFileSync(join(repoRoot, 'docs', 'api.md'), 'utf8');
const documented = [...doc.matchAll(/^\| `(GET|POST|DELETE|PUT)` \| `([^`]+)` \|/gm)].map(
  (m) => `${m[1]} ${m[2]}`,
);

test('docs/api.md lists exactly the routes the Keep Manager serves', () => {
  assert.deepEqual(documented.sort(), API_ROUTES.map((r) => `${r.method} ${r.path}`).sort());
});
