import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DonjonError, errorCategories, reasonOf } from '../../src/lib/errors.ts';
import {
  isRegistryError,
  REGISTRY_ERRORS,
  RegistryError,
  registryErrorCodes,
} from '../../src/registry/errors.ts';
import { repoRoot } from '../helpers.ts';

test('every registry code makes a RegistryError of its category, documented with that category', () => {
  const doc = readFileSync(join(repoRoot, 'docs', 'errors.md'), 'utf8');
  for (const code of registryErrorCodes) {
    const e = new RegistryError(code, `Cannot do it: ${code}`, { url: 'http://r/x', status: 500 });
    assert.ok(e instanceof DonjonError);
    assert.equal(e.name, 'RegistryError');
    assert.equal(e.category, REGISTRY_ERRORS[code]);
    assert.ok(errorCategories.includes(e.category));
    assert.equal(reasonOf(e), code);
    assert.equal(e.url, 'http://r/x');
    assert.equal(e.status, 500);
    assert.ok(isRegistryError(e, code));
    assert.match(doc, new RegExp(`^\\| \`${code}\` \\| ${e.category} \\|`, 'm'), code);
  }
});

test('refusals of a workload are refused, not usage, so that the command exits 3', () => {
  assert.equal(REGISTRY_ERRORS.ERR_WORKLOAD_UNSIGNED, 'refused');
  assert.equal(REGISTRY_ERRORS.ERR_WORKLOAD_SIGNATURE_INVALID, 'refused');
  assert.equal(REGISTRY_ERRORS.ERR_REGISTRY_DIGEST_MISMATCH, 'refused');
  assert.ok(
    !('ERR_SIGNATURE_INVALID' in REGISTRY_ERRORS),
    "attestation's ERR_SIGNATURE_INVALID keeps its one meaning",
  );
});
