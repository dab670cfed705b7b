import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isWorkloadReference, pullWorkloadReference } from '../../src/client/workload-ref.ts';

const dir = mkdtempSync(join(tmpdir(), 'donjon-ref-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('isWorkloadReference(): an existing file wins over a reference of the same name', () => {
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    assert.equal(isWorkloadReference('registry.example/app:1'), true);
    mkdirSync('registry.example');
    writeFileSync(join('registry.example', 'app:1'), '\0asm');
    assert.equal(isWorkloadReference('registry.example/app:1'), false, 'the file is there');
    assert.equal(isWorkloadReference('missing/app.wasm'), false);
    assert.equal(isWorkloadReference('app'), false);
  } finally {
    process.chdir(cwd);
  }
});

test('pullWorkloadReference() refuses to pull what nothing could verify, before any request', async () => {
  let requests = 0;
  await assert.rejects(
    pullWorkloadReference('registry.example/app:1', {
      verifyKeys: [],
      allowUnsigned: false,
      dockerConfig: join(dir, 'none.json'),
      fetch: async () => {
        requests++;
        return new Response(null, { status: 500 });
      },
    }),
    TypeError,
  );
  assert.equal(requests, 0);
  await assert.rejects(pullWorkloadReference('app:1', { verifyKeys: [], allowUnsigned: true }), {
    code: 'ERR_REFERENCE_INVALID',
  });
});
