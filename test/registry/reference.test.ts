import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  formatReference,
  isLoopbackRegistry,
  looksLikeReference,
  manifestReference,
  parseReference,
  pinned,
  repositoryName,
  signatureTag,
} from '../../src/registry/index.ts';

const D = `sha256:${'ab'.repeat(32)}`;

test('parseReference() reads host[:port]/repo[:tag][@digest]', () => {
  assert.deepEqual(parseReference('127.0.0.1:5000/hello:1.0'), {
    registry: '127.0.0.1:5000',
    repository: 'hello',
    tag: '1.0',
  });
  assert.deepEqual(parseReference('ghcr.io/org/team/app'), {
    registry: 'ghcr.io',
    repository: 'org/team/app',
  });
  assert.deepEqual(parseReference(`localhost/app@${D}`), {
    registry: 'localhost',
    repository: 'app',
    digest: D,
  });
  assert.deepEqual(parseReference(`reg.example:443/a/b:v2@${D}`), {
    registry: 'reg.example:443',
    repository: 'a/b',
    tag: 'v2',
    digest: D,
  });
  assert.deepEqual(parseReference('[::1]:5000/x__y.z-w:T_1'), {
    registry: '[::1]:5000',
    repository: 'x__y.z-w',
    tag: 'T_1',
  });
});

test('parseReference() refuses what is not a reference, saying why', () => {
  const cases: [string, RegExp][] = [
    ['hello', /names no registry/],
    ['library/hello:1', /names no registry/],
    ['reg.example/', /names no repository/],
    ['reg.example/Hello', /Hello is not a repository name component/],
    ['reg.example/a//b', /an empty path component/],
    ['reg.example/a:-x', /-x is not a tag/],
    ['reg.example/a@sha256:abc', /not a sha256 digest/],
    [`reg.example/a@sha512:${'a'.repeat(128)}`, /not a sha256 digest/],
    ['reg.example:99999/a', /99999 is not a port number/],
    ['bad_host.example/a', /bad_host.example is not a host name/],
    ['[::1/a', /no closing bracket/],
    [`reg.example/${'a'.repeat(300)}`, /longer than 255/],
  ];
  for (const [text, why] of cases) {
    assert.throws(
      () => parseReference(text),
      { code: 'ERR_REFERENCE_INVALID', category: 'usage', message: why },
      text,
    );
  }
});

test('looksLikeReference() tells references from file names', () => {
  assert.equal(looksLikeReference('127.0.0.1:5000/hello:1.0'), true);
  assert.equal(looksLikeReference('examples/hello/hello.wasm'), false);
  assert.equal(looksLikeReference('dir.v2/app.wasm'), false, 'a .wasm name is a file');
  assert.equal(looksLikeReference('hello'), false);
});

test('formatReference(), pinned() and manifestReference() go by digest once there is one', () => {
  const ref = parseReference('reg.example/a/b:1');
  assert.equal(formatReference(ref), 'reg.example/a/b:1');
  assert.equal(manifestReference(ref), '1');
  assert.equal(manifestReference(parseReference('reg.example/a/b')), 'latest');
  const p = pinned(ref, D);
  assert.equal(formatReference(p), `reg.example/a/b@${D}`);
  assert.equal(manifestReference(p), D);
});

test("signatureTag() is cosign's sha256-<hex>.sig", () => {
  assert.equal(signatureTag(D), `sha256-${'ab'.repeat(32)}.sig`);
  assert.throws(() => signatureTag('sha256:xyz'), TypeError);
});

test('isLoopbackRegistry() admits localhost, 127.0.0.0/8 and ::1 only', () => {
  for (const r of ['localhost:5000', '127.0.0.1', '127.1.2.3:80', '[::1]:5000'])
    assert.equal(isLoopbackRegistry(r), true, r);
  for (const r of ['registry.example', '10.0.0.1:5000', '128.0.0.1', 'localhost.example'])
    assert.equal(isLoopbackRegistry(r), false, r);
});

test("repositoryName() folds Docker Hub's aliases as cosign writes them", () => {
  assert.equal(repositoryName(parseReference('docker.io/library/x:1')), 'index.docker.io/library/x');
  assert.equal(repositoryName(parseReference('127.0.0.1:5000/hello:1')), '127.0.0.1:5000/hello');
});
