import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  basicAuthorization,
  dockerConfigCredentials,
  parseChallenge,
  parseCredentials,
} from '../../src/registry/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'donjon-auth-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test("parseChallenge() reads Docker Hub's Bearer challenge and a Basic one", () => {
  assert.deepEqual(
    parseChallenge(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"',
    ),
    {
      scheme: 'bearer',
      params: {
        realm: 'https://auth.docker.io/token',
        service: 'registry.docker.io',
        scope: 'repository:library/ubuntu:pull',
      },
    },
  );
  assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), {
    scheme: 'basic',
    params: { realm: 'Registry Realm' },
  });
  assert.deepEqual(parseChallenge('Bearer realm=https://a/t, service=x'), {
    scheme: 'bearer',
    params: { realm: 'https://a/t', service: 'x' },
  });
  assert.equal(parseChallenge(null), undefined);
  assert.equal(parseChallenge(''), undefined);
});

test('parseCredentials() splits at the first colon; the password may hold more', () => {
  assert.deepEqual(parseCredentials('alice:a:b'), { username: 'alice', password: 'a:b' });
  assert.throws(() => parseCredentials('alice'), { code: 'ERR_REGISTRY_AUTH' });
  assert.throws(() => parseCredentials(':pw'), { code: 'ERR_REGISTRY_AUTH' });
  assert.equal(
    basicAuthorization({ username: 'u', password: 'p' }),
    `Basic ${Buffer.from('u:p').toString('base64')}`,
  );
});

test("dockerConfigCredentials() finds a registry's auths entry under any of the key forms docker writes", () => {
  const path = join(dir, 'config.json');
  const auth = (s: string): string => Buffer.from(s).toString('base64');
  writeFileSync(
    path,
    JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: auth('hub:1') },
        'ghcr.io': { auth: auth('gh:2') },
        'http://127.0.0.1:5000/v2/': { auth: auth('local:3') },
        'quay.io': {},
      },
      credsStore: 'desktop',
    }),
  );
  assert.deepEqual(dockerConfigCredentials('docker.io', path), { username: 'hub', password: '1' });
  assert.deepEqual(dockerConfigCredentials('ghcr.io', path), { username: 'gh', password: '2' });
  assert.deepEqual(dockerConfigCredentials('127.0.0.1:5000', path), { username: 'local', password: '3' });
  assert.equal(
    dockerConfigCredentials('quay.io', path),
    undefined,
    'an entry without auth (a helper holds it) gives none',
  );
  assert.equal(dockerConfigCredentials('other.example', path), undefined);
  assert.equal(dockerConfigCredentials('ghcr.io', join(dir, 'missing.json')), undefined);
  writeFileSync(join(dir, 'bad.json'), '{');
  assert.throws(() => dockerConfigCredentials('ghcr.io', join(dir, 'bad.json')), {
    code: 'ERR_REGISTRY_AUTH',
    message: /not JSON/,
  });
});
