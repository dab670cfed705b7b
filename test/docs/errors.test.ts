import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { attestationErrorCodes } from '../../src/attestation/index.ts';
import { cliErrorCodes } from '../../src/cli/codes.ts';
import { clientErrorCodes } from '../../src/client/index.ts';
import { API_ERRORS } from '../../src/host/errors.ts';
import { keepErrorCodes } from '../../src/keep/errors.ts';
import { ratlsErrorCodes } from '../../src/ratls/index.ts';
import { registryErrorCodes } from '../../src/registry/errors.ts';
import { wasiErrorCodes } from '../../src/wasi/errors.ts';
import { repoRoot } from '../helpers.ts';

const doc = readFileSync(join(repoRoot, 'docs', 'errors.md'), 'utf8');
const documented = new Set([...doc.matchAll(/^\| `(ERR_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]!));

const registries: Record<string, readonly string[]> = {
  'Keep Manager API': Object.keys(API_ERRORS),
  client: clientErrorCodes,
  ratls: ratlsErrorCodes,
  attestation: attestationErrorCodes,
  keep: keepErrorCodes,
  wasi: wasiErrorCodes,
  cli: cliErrorCodes,
  registry: registryErrorCodes,
};

test('docs/errors.md documents every error code of every registry', () => {
  for (const [name, codes] of Object.entries(registries)) {
    const missing = codes.filter((c) => !documented.has(c));
    assert.deepEqual(missing, [], `${name} codes missing from docs/errors.md`);
  }
});

test('docs/errors.md documents no code that no registry has', () => {
  const known = new Set(Object.values(registries).flat());
  assert.deepEqual(
    [...documented].filter((c) => !known.has(c)),
    [],
  );
});

test('docs/errors.md gives each Keep Manager API code its HTTP status', () => {
  for (const [code, { status }] of Object.entries(API_ERRORS)) {
    assert.match(doc, new RegExp(`^\\| \`${code}\` \\| ${status} \\|`, 'm'), code);
  }
});
