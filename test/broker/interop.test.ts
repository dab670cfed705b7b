// Interoperability: an independent JOSE implementation (Debian's python3-jwcrypto) opens the JWE the broker
// releases and verifies the attestation token it issues, so neither is jose checking itself.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { issuerOf } from '../../src/broker/tokens.ts';
import { allowPolicy, CONFIG, makeKeep, startBroker, type TestBroker, WORKLOAD } from './support.ts';

const PYTHON = '/usr/bin/python3';

const SCRIPT = `
import json, sys
from jwcrypto import jwk, jwe, jwt
d = json.load(sys.stdin)
key = jwk.JWK(**d['keep'])
e = jwe.JWE()
e.deserialize(json.dumps(d['jwe']), key=key)
broker = jwk.JWK.from_pem(d['broker'].encode())
t = jwt.JWT(jwt=d['token'], key=broker, algs=['ES384'], check_claims={'iss': d['iss'], 'exp': None})
print(json.dumps({'plaintext': e.payload.decode(), 'header': json.loads(e.objects['protected']),
                  'claims': json.loads(t.claims)}))
`;

function jwcryptoAvailable(): boolean {
  return spawnSync(PYTHON, ['-c', 'import jwcrypto'], { stdio: 'ignore' }).status === 0;
}

const available = jwcryptoAvailable();
const skip =
  !available && process.env['CI'] === undefined
    ? 'python3-jwcrypto is not installed (apt-get install python3-jwcrypto); CI installs it'
    : false;

let b: TestBroker;
before(async () => {
  if (skip) return;
  b = await startBroker();
  b.store.putSecret('db', new TextEncoder().encode('interop-secret'), Date.now());
  b.store.setPolicySource(allowPolicy(b, ['db']), Date.now());
});
after(() => b?.close());

test('python3-jwcrypto opens the released JWE and verifies the token', { skip }, async () => {
  assert.ok(available, 'python3-jwcrypto must be installed where CI is set');
  const keep = makeKeep(b);
  const { connectPinned, PinnedConnection } = await import('../../src/broker/http.ts');
  const { teePubkeyOf, brokerReportData } = await import('../../src/broker/binding.ts');
  const { encodeEvidence } = await import('../../src/broker/evidence.ts');
  const { spkiOf } = await import('../../src/ratls/index.ts');
  const c = new PinnedConnection(await connectPinned({ host: '127.0.0.1', port: b.port }, b.fingerprint));
  try {
    const json = { 'content-type': 'application/json' };
    const auth = await c.send(
      'POST',
      '/kbs/v0/auth',
      json,
      Buffer.from(JSON.stringify({ version: '0.1.1', tee: 'snp' })),
    );
    const cookie = /^kbs-session-id=[^;]+/.exec(String(auth.headers['set-cookie']?.[0]))![0];
    const { nonce } = JSON.parse(auth.body.toString()) as { nonce: string };
    const rd = brokerReportData({
      nonce: Buffer.from(nonce, 'base64url'),
      spki: spkiOf(keep.key),
      workload: WORKLOAD,
      config: CONFIG,
    });
    const attestation = {
      'runtime-data': {
        nonce,
        'tee-pubkey': teePubkeyOf(keep.key),
        'workload-digest': WORKLOAD.toString('hex'),
        'config-digest': CONFIG.toString('hex'),
      },
      'tee-evidence': { primary_evidence: encodeEvidence(await keep.evidence(rd)).primary },
    };
    const att = await c.send(
      'POST',
      '/kbs/v0/attest',
      { ...json, cookie },
      Buffer.from(JSON.stringify(attestation)),
    );
    assert.equal(att.status, 200, att.body.toString());
    const { token } = JSON.parse(att.body.toString()) as { token: string };
    const res = await c.send('GET', '/kbs/v0/resource/donjon/secret/db', { cookie });
    assert.equal(res.status, 200);
    const input = JSON.stringify({
      keep: keep.key.export({ format: 'jwk' }),
      jwe: JSON.parse(res.body.toString()),
      token,
      broker: createPublicKey(readFileSync(join(b.dir, 'broker-cert.pem'), 'utf8')).export({
        type: 'spki',
        format: 'pem',
      }),
      iss: issuerOf(b.fingerprint),
    });
    const py = spawnSync(PYTHON, ['-c', SCRIPT], { input, encoding: 'utf8' });
    assert.equal(py.status, 0, py.stderr);
    const out = JSON.parse(py.stdout) as {
      plaintext: string;
      header: Record<string, unknown>;
      claims: Record<string, unknown>;
    };
    assert.equal(out.plaintext, 'interop-secret');
    assert.equal(out.header['alg'], 'ECDH-ES+A256KW');
    assert.equal(out.header['enc'], 'A256GCM');
    assert.equal(out.claims['eat_profile'], 'tag:github.com,2023:veraison/ear');
    assert.deepEqual((out.claims['cnf'] as { jwk: unknown }).jwk, teePubkeyOf(keep.key));
  } finally {
    c.close();
  }
});
