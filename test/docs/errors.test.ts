import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ATTESTATION_ERRORS, attestationErrorCodes } from '../../src/attestation/errors.ts';
import { BROKER_CATEGORIES, brokerErrorCodes } from '../../src/broker/errors.ts';
import { cliErrorCodes, cliErrors } from '../../src/cli/codes.ts';
import { CLIENT_ERRORS, clientErrorCodes } from '../../src/client/errors.ts';
import { API_ERRORS } from '../../src/host/errors.ts';
import { KEEPPOD_ERRORS } from '../../src/host/keep-pod/errors.ts';
import { KEEPMGR_ERRORS } from '../../src/host/keepmgr/errors.ts';
import { KEEP_ERRORS, keepErrorCodes } from '../../src/keep/errors.ts';
import { KUBE_ERRORS, kubeErrorCodes } from '../../src/kube/errors.ts';
import type { ErrorCategory } from '../../src/lib/errors.ts';
import { RATLS_ERRORS, ratlsErrorCodes } from '../../src/ratls/errors.ts';
import { REGISTRY_ERRORS, registryErrorCodes } from '../../src/registry/errors.ts';
import { WASI_ERRORS, wasiErrorCodes } from '../../src/wasi/errors.ts';
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
  'Keep Manager daemon': Object.keys(KEEPMGR_ERRORS),
  'keep-pod': Object.keys(KEEPPOD_ERRORS),
  broker: brokerErrorCodes,
  kube: kubeErrorCodes,
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

test('docs/errors.md gives each code the category of its registry', () => {
  const categories: Record<string, ErrorCategory> = {
    ...Object.fromEntries(Object.entries(API_ERRORS).map(([code, { category }]) => [code, category])),
    ...CLIENT_ERRORS,
    ...RATLS_ERRORS,
    ...ATTESTATION_ERRORS,
    ...KEEP_ERRORS,
    ...WASI_ERRORS,
    ...cliErrors,
    ...REGISTRY_ERRORS,
    ...KEEPMGR_ERRORS,
    ...KEEPPOD_ERRORS,
    ...BROKER_CATEGORIES,
    ...KUBE_ERRORS,
  };
  const rows = [...doc.matchAll(/^\| `(ERR_[A-Z0-9_]+)` \| (?:\d{3} \| )?(\w+) \|/gm)];
  assert.equal(rows.length, documented.size, 'every row of a code has a category column');
  for (const [, code, category] of rows) assert.equal(category, categories[code!], code);
});
