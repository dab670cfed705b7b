// donjon kube manifest: golden files, determinism, and every input that must be refused before anything is
// printed. The CLI runs use the built command (bin/donjon.js), as a user does.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  formatManifest,
  generateManifest,
  type KubeBackend,
  type KubeObject,
  planManifest,
} from '../../src/kube/index.ts';
import { encryptPrivateKey, generateSigningKey, publicKeyPem } from '../../src/registry/index.ts';
import { runCli } from '../helpers.ts';
import { goldenArgs, goldenDir, goldenRequest, IMAGE, REF } from './manifest-fixtures.ts';
import { validateObject } from './manifest-validate.ts';

const update = process.env['UPDATE_GOLDEN'] === '1';

function golden(file: string, actual: string): void {
  const path = join(goldenDir, file);
  if (update) writeFileSync(path, actual);
  assert.equal(actual, readFileSync(path, 'utf8'), `${file} differs from the generated manifest`);
}

const find = (objects: readonly KubeObject[], kind: string) => objects.filter((o) => o.kind === kind);

describe('donjon kube manifest: golden files', () => {
  for (const backend of ['sim', 'cvm'] as KubeBackend[]) {
    test(`the ${backend} objects are the golden ${backend}.yaml and ${backend}.json, byte for byte`, () => {
      const objects = generateManifest(goldenRequest(backend));
      golden(`${backend}.yaml`, formatManifest(objects, false));
      golden(`${backend}.json`, formatManifest(objects, true));
    });

    test(`the command prints the golden ${backend}.yaml and, with --json, ${backend}.json, and the same bytes twice`, async () => {
      const runs = await Promise.all([
        runCli(goldenArgs(backend)),
        runCli(goldenArgs(backend)),
        runCli([...goldenArgs(backend), '--json']),
      ]);
      for (const r of runs) assert.equal(r.code, 0, r.stderr);
      assert.equal(runs[0]!.stdout, readFileSync(join(goldenDir, `${backend}.yaml`), 'utf8'));
      assert.equal(runs[1]!.stdout, runs[0]!.stdout);
      assert.equal(runs[2]!.stdout, readFileSync(join(goldenDir, `${backend}.json`), 'utf8'));
    });
  }

  test('the golden objects validate against the Kubernetes schemas, and hold what the issue asks', () => {
    for (const backend of ['sim', 'cvm'] as KubeBackend[]) {
      const objects = JSON.parse(readFileSync(join(goldenDir, `${backend}.json`), 'utf8')) as KubeObject[];
      for (const o of objects) validateObject(o);
      assert.deepEqual(
        objects.map((o) => o.kind),
        [
          'Namespace',
          'ServiceAccount',
          'ConfigMap',
          'ConfigMap',
          ...(backend === 'sim' ? ['Secret'] : []),
          'Deployment',
          'Service',
          'NetworkPolicy',
          'PodDisruptionBudget',
        ],
      );
      const ns = find(objects, 'Namespace')[0]!;
      const level = backend === 'sim' ? 'restricted' : 'privileged';
      assert.equal(
        (ns.metadata['labels'] as Record<string, string>)['pod-security.kubernetes.io/enforce'],
        level,
      );
      const text = JSON.stringify(find(objects, 'Deployment')[0]);
      if (backend === 'cvm') {
        assert.match(text, /"hostPath":\{"path":"\/sys\/kernel\/config","type":"Directory"\}/);
        assert.match(text, /"runAsUser":0/);
        assert.match(text, /not yet run on hardware/);
        assert.match(text, /feature\.node\.kubernetes\.io\/cpu-security\.tdx\.protected/);
      } else {
        assert.match(text, /"runAsUser":10001/);
        assert.doesNotMatch(text, /hostPath|nodeAffinity|nodeSelector/);
      }
    }
  });
});

describe('donjon kube manifest: inputs that must be refused', () => {
  const refused = (
    code: string,
    changes: Parameters<typeof goldenRequest>[1],
    backend: KubeBackend = 'sim',
  ) => {
    assert.throws(
      () => generateManifest(goldenRequest(backend, changes)),
      (e: unknown) => (e as { code?: string }).code === code,
    );
  };
  const pkcs8 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  }) as string;

  test('a reference or an image without a sha256 digest (ERR_KUBE_DIGEST_REQUIRED)', () => {
    refused('ERR_KUBE_DIGEST_REQUIRED', { reference: 'registry.example:5000/team/http:1.0' });
    refused('ERR_KUBE_DIGEST_REQUIRED', { image: 'ghcr.io/example/donjon:latest' });
    refused('ERR_KUBE_DIGEST_REQUIRED', { image: `ghcr.io/example/donjon@sha512:${'ab'.repeat(64)}` });
  });

  test('a verifying key that is a private key, bare, encrypted, cosign-encrypted or beside a public key (ERR_KUBE_SECRET_INPUT)', () => {
    const publicPem = readFileSync(join(goldenDir, 'cosign.pub'), 'utf8');
    const { privateKey } = generateSigningKey();
    const encrypted = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
      cipher: 'aes-256-cbc',
      passphrase: 'x',
    }) as string;
    for (const text of [pkcs8, encrypted, encryptPrivateKey(privateKey, 'pw'), `${publicPem}${pkcs8}`]) {
      refused('ERR_KUBE_SECRET_INPUT', { verifyKeys: [{ text, source: 'k' }] });
    }
    assert.match(encrypted, /ENCRYPTED PRIVATE KEY/);
  });

  test('no verifying key and no --allow-unsigned (ERR_KUBE_SECRET_INPUT); --allow-unsigned passes on', () => {
    refused('ERR_KUBE_SECRET_INPUT', { verifyKeys: [] });
    const objects = generateManifest(goldenRequest('sim', { verifyKeys: [], allowUnsigned: true }));
    const text = JSON.stringify(objects);
    assert.match(text, /"--allow-unsigned"/);
    assert.doesNotMatch(text, /--verify-key|-keys"/);
  });

  test("an Enarx.toml carrying a secret's value is refused by the parser (ERR_CONFIG_INVALID)", () => {
    const text = `${readFileSync(join(goldenDir, 'Enarx.toml'), 'utf8')}value = "hunter2"\n`;
    refused('ERR_CONFIG_INVALID', { enarxToml: { text, source: 'Enarx.toml' } });
  });

  test('an Enarx.toml a Pod cannot serve: no listen file, port 0, the health port, an invalid port name (ERR_KUBE_CONFIG_UNSUPPORTED)', () => {
    const listen = (name: string, port: number) =>
      `[[files]]\nkind = "stdout"\n\n[[files]]\nkind = "listen"\nname = "${name}"\nport = ${port}\n`;
    for (const text of [
      '[[files]]\nkind = "stdout"\n',
      listen('https', 0),
      listen('https', 8080),
      listen('health', 8443),
      listen('Https_Port', 8443),
      listen('a-very-long-port-name', 8443),
      `${listen('a', 8443)}\n[[files]]\nkind = "listen"\nname = "b"\nport = 8443\n`,
    ]) {
      refused('ERR_KUBE_CONFIG_UNSUPPORTED', { enarxToml: { text, source: 'Enarx.toml' } });
    }
  });

  test('names and namespaces that are not RFC 1123 (1035) labels (ERR_KUBE_NAME_INVALID); the default name is sanitised', () => {
    for (const name of ['Http', '-http', 'http-', '9http', 'h_ttp', 'x'.repeat(55), '']) {
      refused('ERR_KUBE_NAME_INVALID', { name });
    }
    for (const namespace of ['Prod', 'prod.eu', 'x'.repeat(64)])
      refused('ERR_KUBE_NAME_INVALID', { namespace });
    const plan = (reference: string) => planManifest(goldenRequest('sim', { reference }));
    const digest = `@sha256:${'0'.repeat(64)}`;
    assert.equal(plan(`r.example/a/b/my_svc.v2${digest}`).name, 'my-svc-v2');
    assert.equal(plan(`r.example/x/2048${digest}`).name, 'keep-2048');
    assert.equal(plan(`r.example/x/2048${digest}`).namespace, 'keep-2048');
    assert.equal(planManifest(goldenRequest('sim', { name: 'web', namespace: 'prod' })).namespace, 'prod');
    // The longest name still gives labels for every object (NAME-sim-root), which the rules check.
    assert.equal(
      generateManifest(goldenRequest('sim', { name: 'x'.repeat(54) }))[0]!.metadata['name'],
      'x'.repeat(54),
    );
    assert.equal(plan(`r.example/x/${'a'.repeat(80)}${digest}`).name, 'a'.repeat(54));
  });

  test('a simulated root that does not parse, and out-of-range replicas (usage errors)', () => {
    refused('ERR_KUBE_CONFIG_UNSUPPORTED', {
      simRoot: { bytes: new TextEncoder().encode('{}'), source: 'x' },
    });
    refused('ERR_KUBE_CONFIG_UNSUPPORTED', { replicas: 0 });
    refused('ERR_KUBE_CONFIG_UNSUPPORTED', { replicas: 1.5 });
  });

  test('the command exits 2 with a stable code, and prints nothing on stdout, for a private key or a missing digest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'donjon-kube-'));
    const keyFile = join(dir, 'cosign.key');
    writeFileSync(keyFile, pkcs8);
    const args = goldenArgs('sim');
    const withKey = args.map((a) => (a.endsWith('cosign.pub') ? keyFile : a));
    const r = await runCli([...withKey, '--json']);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(JSON.parse(r.stderr.trim().split('\n').pop()!).code, 'ERR_KUBE_SECRET_INPUT');
    const noDigest = await runCli(args.map((a) => (a === REF ? REF.slice(0, REF.indexOf('@')) : a)));
    assert.equal(noDigest.code, 2);
    assert.match(noDigest.stderr, /^donjon: error: Cannot use .* it has no @sha256: digest/m);
    const tagImage = await runCli(args.map((a) => (a === IMAGE ? 'donjon:1.0' : a)));
    assert.equal(tagImage.code, 2);
    assert.match(tagImage.stderr, /--image donjon:1\.0: it has no @sha256: digest/);
    // No flag puts a value, a file or a credential of the tenant into the manifest.
    for (const flag of ['--env', '--dir', '--registry-auth']) {
      const r = await runCli([...args, flag, 'x=y']);
      assert.equal(r.code, 2, flag);
      assert.match(r.stderr, new RegExp(`unknown option ${flag} \\(see donjon help kube\\)`));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('the sim manifest warns loudly on stderr that its Secret holds a simulated private key', async () => {
    const r = await runCli(goldenArgs('sim'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /WARNING: .*SIMULATED root's PRIVATE KEY/);
    assert.match(r.stderr, /DEVELOPMENT ONLY/);
    const c = await runCli(goldenArgs('cvm'));
    assert.doesNotMatch(c.stderr, /SIMULATED/);
    assert.match(c.stderr, /not yet run on hardware/);
  });
});

test('the verifying key in the manifest is the canonical public key, nothing else of the file', () => {
  const { publicKey } = generateSigningKey();
  const pem = publicKeyPem(publicKey);
  const objects = generateManifest(
    goldenRequest('sim', {
      verifyKeys: [{ text: `a comment\n${pem.replace(/\n/g, '\r\n')}trailing`, source: 'k' }],
    }),
  );
  const keys = find(objects, 'ConfigMap').find((o) => o.metadata['name'] === 'http-keys')!;
  assert.deepEqual(keys['data'], { 'key-1.pub': pem });
});

test('donjon --help lists kube, docs/cli.md documents kube manifest, and a missing or unknown verb exits 2', async () => {
  const help = await runCli(['--help']);
  assert.match(help.stdout, /^ {2}kube {6}print the Kubernetes objects/m);
  const doc = readFileSync(join(goldenDir, '..', '..', '..', 'docs', 'cli.md'), 'utf8');
  assert.match(doc, /^## donjon kube manifest$/m);
  assert.match(doc, /^donjon kube manifest REF@sha256:/m);
  const bare = await runCli(['kube']);
  assert.equal(bare.code, 2);
  assert.match(bare.stderr, /Usage: donjon kube manifest/);
  const wrong = await runCli(['kube', 'apply']);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /Cannot run 'donjon kube apply': use manifest/);
  const noConfig = await runCli(
    goldenArgs('cvm').filter((a, i, all) => a !== '--config' && all[i - 1] !== '--config'),
  );
  assert.equal(noConfig.code, 2);
  assert.match(noConfig.stderr, /--config is required/);
});
