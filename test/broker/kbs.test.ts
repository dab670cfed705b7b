// Hostile tests of the broker's KBS protocol, in process over HTTPS on loopback, with simulated SNP evidence.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { BrokerAdminClient } from '../../src/broker/admin-client.ts';
import { teePubkeyOf } from '../../src/broker/binding.ts';
import { openSecret } from '../../src/broker/client.ts';
import { isBrokerError } from '../../src/broker/errors.ts';
import { encodeEvidence } from '../../src/broker/evidence.ts';
import { type Answer, connectPinned, PinnedConnection } from '../../src/broker/http.ts';
import { spkiOf } from '../../src/ratls/index.ts';
import {
  allowPolicy,
  brokerReportData,
  CONFIG,
  fetchFrom,
  makeKeep,
  startBroker,
  type TestBroker,
  type TestKeep,
  WORKLOAD,
} from './support.ts';

let b: TestBroker;
const SECRET = randomBytes(24).toString('hex');

before(async () => {
  b = await startBroker();
  b.store.putSecret('db', new TextEncoder().encode(SECRET), Date.now());
  b.store.putSecret('other', new TextEncoder().encode('other-value'), Date.now());
  b.store.setPolicySource(allowPolicy(b, ['db']), Date.now());
});
after(() => b.close());

/** A raw KBS conversation, for the tests that send what a genuine Keep would not. */
async function open(): Promise<PinnedConnection> {
  return new PinnedConnection(await connectPinned({ host: '127.0.0.1', port: b.port }, b.fingerprint));
}

const JSON_HEADERS = { 'content-type': 'application/json' };
const body = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

async function challenge(
  c: PinnedConnection,
  tee = 'snp',
): Promise<{ cookie: string; nonce: string; answer: Answer }> {
  const answer = await c.send(
    'POST',
    '/kbs/v0/auth',
    JSON_HEADERS,
    body({ version: '0.1.1', tee, 'extra-params': '' }),
  );
  const cookie = /^kbs-session-id=[^;]+/.exec(String(answer.headers['set-cookie']?.[0] ?? ''))?.[0] ?? '';
  const nonce = answer.status === 200 ? (JSON.parse(answer.body.toString()) as { nonce: string }).nonce : '';
  return { cookie, nonce, answer };
}

interface AttestParts {
  keep: TestKeep;
  nonce: string;
  /** The key named in runtime-data (default: the Keep's). */
  presented?: ReturnType<typeof generateKeyPairSync>['privateKey'];
  /** The workload digest named in runtime-data (default: what the evidence binds). */
  workload?: Buffer;
  /** Evidence to send instead of fresh evidence. */
  evidence?: Record<string, unknown>;
}

async function attestation(p: AttestParts): Promise<Record<string, unknown>> {
  const nonce = Buffer.from(p.nonce, 'base64url');
  const evidence =
    p.evidence ??
    encodeEvidence(
      await p.keep.evidence(
        brokerReportData({ nonce, spki: spkiOf(p.keep.key), workload: WORKLOAD, config: CONFIG }),
      ),
    ).primary;
  return {
    'runtime-data': {
      nonce: p.nonce,
      'tee-pubkey': teePubkeyOf(p.presented ?? p.keep.key),
      'workload-digest': (p.workload ?? WORKLOAD).toString('hex'),
      'config-digest': CONFIG.toString('hex'),
    },
    'tee-evidence': { primary_evidence: evidence, additional_evidence: '' },
  };
}

function problem(a: Answer): { code: string; type: string; detail: string } {
  return JSON.parse(a.body.toString()) as { code: string; type: string; detail: string };
}

async function attested(keep: TestKeep): Promise<{ c: PinnedConnection; cookie: string; token: string }> {
  const c = await open();
  const { cookie, nonce } = await challenge(c);
  const a = await c.send(
    'POST',
    '/kbs/v0/attest',
    { ...JSON_HEADERS, cookie },
    body(await attestation({ keep, nonce })),
  );
  assert.equal(a.status, 200, a.body.toString());
  return { c, cookie, token: (JSON.parse(a.body.toString()) as { token: string }).token };
}

const RESOURCE = '/kbs/v0/resource/donjon/secret/db';

test('fetchSecrets() releases a secret to an attested Keep named by the policy, as JWE to its key', async () => {
  const keep = makeKeep(b);
  const got = await fetchFrom(b, keep, ['db']);
  assert.equal(new TextDecoder().decode(got.get('db')), SECRET);
  assert.equal(keep.asked.length, 1);
});

test('the resource is a flattened JWE with ECDH-ES+A256KW and A256GCM, never RSA', async () => {
  const keep = makeKeep(b);
  const { c, cookie } = await attested(keep);
  try {
    const a = await c.send('GET', RESOURCE, { cookie });
    assert.equal(a.status, 200);
    const jwe = JSON.parse(a.body.toString()) as Record<string, string>;
    assert.deepEqual(Object.keys(jwe).sort(), ['ciphertext', 'encrypted_key', 'iv', 'protected', 'tag']);
    const header = JSON.parse(Buffer.from(jwe['protected']!, 'base64url').toString()) as Record<
      string,
      unknown
    >;
    assert.equal(header['alg'], 'ECDH-ES+A256KW');
    assert.equal(header['enc'], 'A256GCM');
    assert.ok(!a.body.toString().includes(SECRET));
    assert.equal(new TextDecoder().decode(await openSecret(jwe, keep.key)), SECRET);
  } finally {
    c.close();
  }
});

test('a nonce is single-use: answering the same challenge twice is refused', async () => {
  const keep = makeKeep(b);
  const c = await open();
  try {
    const { cookie, nonce } = await challenge(c);
    const att = await attestation({ keep, nonce });
    assert.equal(
      (await c.send('POST', '/kbs/v0/attest', { ...JSON_HEADERS, cookie }, body(att))).status,
      200,
    );
    const again = await c.send('POST', '/kbs/v0/attest', { ...JSON_HEADERS, cookie }, body(att));
    assert.equal(again.status, 401);
    assert.equal(problem(again).code, 'ERR_BROKER_NONCE_INVALID');
  } finally {
    c.close();
  }
});

test('replayed evidence in a new session is refused: it binds the old nonce', async () => {
  const keep = makeKeep(b);
  const c = await open();
  try {
    const first = await challenge(c);
    const att = await attestation({ keep, nonce: first.nonce });
    assert.equal(
      (await c.send('POST', '/kbs/v0/attest', { ...JSON_HEADERS, cookie: first.cookie }, body(att))).status,
      200,
    );
    const second = await challenge(c);
    // The old evidence, with the new nonce in runtime-data.
    const replay = await attestation({
      keep,
      nonce: second.nonce,
      evidence: (att['tee-evidence'] as { primary_evidence: Record<string, unknown> }).primary_evidence,
    });
    const a = await c.send(
      'POST',
      '/kbs/v0/attest',
      { ...JSON_HEADERS, cookie: second.cookie },
      body(replay),
    );
    assert.equal(a.status, 401);
    assert.equal(problem(a).code, 'ERR_BROKER_EVIDENCE_REFUSED');
    // And with the old nonce too: that nonce is not this session's.
    const third = await challenge(c);
    const a2 = await c.send('POST', '/kbs/v0/attest', { ...JSON_HEADERS, cookie: third.cookie }, body(att));
    assert.equal(problem(a2).code, 'ERR_BROKER_NONCE_INVALID');
  } finally {
    c.close();
  }
});

test('a challenge expires within minutes', async () => {
  const keep = makeKeep(b);
  const c = await open();
  try {
    const { cookie, nonce } = await challenge(c);
    const att = await attestation({ keep, nonce });
    b.advance(121_000);
    const a = await c.send('POST', '/kbs/v0/attest', { ...JSON_HEADERS, cookie }, body(att));
    assert.equal(a.status, 401);
    assert.equal(problem(a).code, 'ERR_BROKER_NONCE_INVALID');
  } finally {
    b.advance(-121_000);
    c.close();
  }
});

test('evidence bound to another key is refused', async () => {
  const keep = makeKeep(b);
  const { privateKey: other } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const c = await open();
  try {
    const { cookie, nonce } = await challenge(c);
    const a = await c.send(
      'POST',
      '/kbs/v0/attest',
      { ...JSON_HEADERS, cookie },
      body(await attestation({ keep, nonce, presented: other })),
    );
    assert.equal(a.status, 401);
    assert.equal(problem(a).code, 'ERR_BROKER_EVIDENCE_REFUSED');
    assert.match(problem(a).detail, /report_data|REPORT_DATA|report data/i);
  } finally {
    c.close();
  }
});

test('a swapped workload digest is refused: the evidence binds the one it was made for', async () => {
  const keep = makeKeep(b);
  const c = await open();
  try {
    const { cookie, nonce } = await challenge(c);
    const swapped = Buffer.alloc(32, 7);
    const a = await c.send(
      'POST',
      '/kbs/v0/attest',
      { ...JSON_HEADERS, cookie },
      body(await attestation({ keep, nonce, workload: swapped })),
    );
    assert.equal(a.status, 401);
    assert.equal(problem(a).code, 'ERR_BROKER_EVIDENCE_REFUSED');
  } finally {
    c.close();
  }
});

test('a workload the policy does not name is denied, and the denial is audited', async () => {
  const keep = makeKeep(b);
  await assert.rejects(
    fetchFrom(b, keep, ['db'], { workload: Buffer.alloc(32, 9) }),
    (e) => isBrokerError(e, 'ERR_SECRET_DENIED') && /workload 0909/.test(e.message),
  );
  const last = b.store.auditLog(1)[0]!;
  assert.equal(last.verdict, 'refused');
  assert.equal(last.secret, 'db');
  assert.equal(last.workload, '09'.repeat(32));
  assert.equal(last.evidenceKind, 'sev-snp');
  assert.equal(last.measurement, keep.asked.length > 0 ? last.measurement : undefined);
  assert.match(last.reason ?? '', /not named/);
});

test('a secret no rule names is denied even when it exists (403, not 404)', async () => {
  await assert.rejects(fetchFrom(b, makeKeep(b), ['other']), (e) => isBrokerError(e, 'ERR_SECRET_DENIED'));
});

test('another measurement than the runtime default is denied', async () => {
  await assert.rejects(fetchFrom(b, makeKeep(b, 'ab'.repeat(48)), ['db']), (e) =>
    isBrokerError(e, 'ERR_SECRET_DENIED'),
  );
});

test('a wrong broker fingerprint: nothing is sent and no evidence is made', async () => {
  const keep = makeKeep(b);
  const before = b.store.auditLog().length;
  await assert.rejects(fetchFrom(b, keep, ['db'], { fingerprint: '00'.repeat(32) }), (e) =>
    isBrokerError(e, 'ERR_BROKER_UNTRUSTED'),
  );
  assert.equal(keep.asked.length, 0);
  assert.equal(b.store.auditLog().length, before);
});

test('a host that relays the Keep to a fake broker gets nothing: the pinned fingerprint does not match', async () => {
  const fake = await startBroker();
  try {
    fake.store.putSecret('db', new TextEncoder().encode('fake'), Date.now());
    fake.store.setPolicySource(allowPolicy(fake, ['db']), Date.now());
    const keep = makeKeep(b);
    const { connect } = await import('node:net');
    await assert.rejects(fetchFrom(b, keep, ['db'], { stream: connect(fake.port, '127.0.0.1') }), (e) =>
      isBrokerError(e, 'ERR_BROKER_UNTRUSTED'),
    );
    assert.equal(keep.asked.length, 0);
    assert.deepEqual(fake.store.auditLog(), []);
  } finally {
    await fake.close();
  }
});

test('TDX evidence goes to the verifier and is refused when it does not verify; SNP evidence in a TDX session too', async () => {
  const keep = makeKeep(b);
  const c = await open();
  try {
    const { cookie, nonce } = await challenge(c, 'tdx');
    const junk = { quote: Buffer.alloc(64, 1).toString('base64url') };
    const r = await c.send(
      'POST',
      '/kbs/v0/attest',
      { ...JSON_HEADERS, cookie },
      body(await attestation({ keep, nonce, evidence: junk })),
    );
    assert.equal(r.status, 401);
    assert.equal(problem(r).code, 'ERR_BROKER_EVIDENCE_REFUSED');
    const next = await challenge(c, 'tdx');
    const snp = await c.send(
      'POST',
      '/kbs/v0/attest',
      { ...JSON_HEADERS, cookie: next.cookie },
      body(await attestation({ keep, nonce: next.nonce })),
    );
    assert.equal(snp.status, 401);
  } finally {
    c.close();
  }
});

test('GET /metrics needs the admin token and counts releases', async () => {
  const c = await open();
  try {
    assert.equal((await c.send('GET', '/metrics', {})).status, 401);
    const m = await c.send('GET', '/metrics', { authorization: `Bearer ${b.adminToken}` });
    assert.equal(m.status, 200);
    assert.match(m.body.toString(), /^donjon_broker_releases_total [1-9]/m);
    assert.match(m.body.toString(), /^donjon_broker_secrets 2$/m);
  } finally {
    c.close();
  }
});

test('a broker that cannot be reached is ERR_BROKER_UNREACHABLE', async () => {
  const { connect } = await import('node:net');
  const stream = connect(1, '127.0.0.1');
  await assert.rejects(fetchFrom(b, makeKeep(b), ['db'], { stream }), (e) =>
    isBrokerError(e, 'ERR_BROKER_UNREACHABLE'),
  );
});

test("a token reused with another Keep's session is refused; bare, it yields a JWE only its key opens", async () => {
  const a = await attested(makeKeep(b));
  const thief = makeKeep(b);
  const t = await attested(thief);
  try {
    const mixed = await t.c.send('GET', RESOURCE, { cookie: t.cookie, authorization: `Bearer ${a.token}` });
    assert.equal(mixed.status, 401);
    assert.equal(problem(mixed).code, 'ERR_BROKER_TOKEN_INVALID');
    const bare = await t.c.send('GET', RESOURCE, { authorization: `Bearer ${a.token}` });
    assert.equal(bare.status, 200);
    await assert.rejects(openSecret(JSON.parse(bare.body.toString()), thief.key));
  } finally {
    a.c.close();
    t.c.close();
  }
});

test('a forged or altered token is refused', async () => {
  const a = await attested(makeKeep(b));
  try {
    const [h, p, s] = a.token.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    claims['exp'] = (claims['exp'] as number) + 3600;
    const altered = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
    const r = await a.c.send('GET', RESOURCE, { authorization: `Bearer ${altered}` });
    assert.equal(r.status, 401);
    assert.equal(problem(r).code, 'ERR_BROKER_TOKEN_INVALID');
  } finally {
    a.c.close();
  }
});

test('a token and its session are refused after expiry', async () => {
  const a = await attested(makeKeep(b));
  try {
    assert.equal((await a.c.send('GET', RESOURCE, { cookie: a.cookie })).status, 200);
    b.advance(301_000);
    const byCookie = await a.c.send('GET', RESOURCE, { cookie: a.cookie });
    assert.equal(byCookie.status, 401);
    const byBearer = await a.c.send('GET', RESOURCE, { authorization: `Bearer ${a.token}` });
    assert.equal(byBearer.status, 401);
    assert.equal(problem(byBearer).code, 'ERR_BROKER_TOKEN_INVALID');
  } finally {
    b.advance(-301_000);
    a.c.close();
  }
});

test('a resource request with neither cookie nor token is 401', async () => {
  const c = await open();
  try {
    const r = await c.send('GET', RESOURCE, {});
    assert.equal(r.status, 401);
    assert.equal(problem(r).type, 'https://github.com/confidential-containers/kbs/errors/TokenVerifierError');
  } finally {
    c.close();
  }
});

test('a policy edit takes effect on the next request, within a live session', async () => {
  const admin = new BrokerAdminClient(b.url, { token: b.adminToken, fingerprint: b.fingerprint });
  const a = await attested(makeKeep(b));
  try {
    assert.equal((await a.c.send('GET', RESOURCE, { cookie: a.cookie })).status, 200);
    await admin.setPolicy(allowPolicy(b, ['other']));
    const denied = await a.c.send('GET', RESOURCE, { cookie: a.cookie });
    assert.equal(denied.status, 403);
    assert.equal(problem(denied).code, 'ERR_SECRET_DENIED');
    assert.equal(
      (await a.c.send('GET', '/kbs/v0/resource/donjon/secret/other', { cookie: a.cookie })).status,
      200,
    );
  } finally {
    await admin.setPolicy(allowPolicy(b, ['db']));
    a.c.close();
  }
});

test('a simulated root the policy does not name is refused at attestation', async () => {
  const admin = new BrokerAdminClient(b.url, { token: b.adminToken, fingerprint: b.fingerprint });
  await admin.setPolicy(allowPolicy(b, ['db']).replace(/sim-roots = .*\n/, ''));
  try {
    await assert.rejects(fetchFrom(b, makeKeep(b), ['db']), (e) =>
      isBrokerError(e, 'ERR_BROKER_EVIDENCE_REFUSED'),
    );
  } finally {
    await admin.setPolicy(allowPolicy(b, ['db']));
  }
});

test('nil, sample and unknown TEEs are refused at the first step', async () => {
  const c = await open();
  try {
    for (const tee of ['nil', 'sample', 'sgx', 'az-snp-vtpm']) {
      const { answer } = await challenge(c, tee);
      assert.equal(answer.status, 401, tee);
      assert.equal(problem(answer).code, 'ERR_BROKER_TEE_UNSUPPORTED');
    }
  } finally {
    c.close();
  }
});

test('an RSA tee-pubkey and init-data are refused', async () => {
  const keep = makeKeep(b);
  const c = await open();
  try {
    const { cookie, nonce } = await challenge(c);
    const att = await attestation({ keep, nonce });
    (att['runtime-data'] as Record<string, unknown>)['tee-pubkey'] = {
      kty: 'RSA',
      alg: 'RSA1_5',
      n: 'AQAB',
      e: 'AQAB',
    };
    const r = await c.send('POST', '/kbs/v0/attest', { ...JSON_HEADERS, cookie }, body(att));
    assert.equal(r.status, 401);
    assert.equal(problem(r).code, 'ERR_BROKER_REQUEST_INVALID');
    const next = await challenge(c);
    const withInit = {
      ...(await attestation({ keep, nonce: next.nonce })),
      'init-data': { format: 'toml', body: '' },
    };
    const r2 = await c.send(
      'POST',
      '/kbs/v0/attest',
      { ...JSON_HEADERS, cookie: next.cookie },
      body(withInit),
    );
    assert.equal(r2.status, 401);
  } finally {
    c.close();
  }
});

test('the admin API refuses requests without a known admin token', async () => {
  const admin = new BrokerAdminClient(b.url, { token: 'dbt_wrong', fingerprint: b.fingerprint });
  await assert.rejects(admin.listSecrets(), (e) => isBrokerError(e, 'ERR_BROKER_ADMIN_UNAUTHORIZED'));
});

test('the audit log records releases and refusals with evidence kind, measurement, workload and secret', () => {
  const log = b.store.auditLog();
  const released = log.find((e) => e.verdict === 'released');
  const refused = log.find((e) => e.verdict === 'refused' && e.stage === 'resource');
  assert.ok(released && refused);
  assert.equal(released.evidenceKind, 'sev-snp');
  assert.equal(released.simulated, true);
  assert.equal(released.workload, WORKLOAD.toString('hex'));
  assert.equal(released.secret, 'db');
  assert.match(released.measurement ?? '', /^[0-9a-f]{96}$/);
  assert.ok(typeof refused.reason === 'string' && refused.reason.length > 0);
});

test('no secret byte reaches the logs, the metrics or the audit log', () => {
  const forms = [
    SECRET,
    Buffer.from(SECRET).toString('base64'),
    Buffer.from(SECRET).toString('base64url'),
    Buffer.from(SECRET).toString('hex'),
  ];
  const haystacks = [b.logs.join('\n'), b.server.metrics.render(), JSON.stringify(b.store.auditLog())];
  for (const h of haystacks) for (const f of forms) assert.ok(!h.includes(f));
  assert.ok(b.server.metrics.get('donjon_broker_releases_total') > 0);
  assert.ok(b.logs.some((l) => l.includes('"event":"released"')));
});
