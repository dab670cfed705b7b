// The contract of signed workloads from a registry, end to end through the built command: keygen, push
// (signed or not), sign, then run by reference against Debian's docker-registry on loopback.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { example, runCli } from '../helpers.ts';
import { type LocalRegistry, missing, startRegistry } from '../registry/registry-server.ts';

const hello = example('hello');
const absent = missing('docker-registry');

describe('donjon push, sign, keygen and run REF (docker-registry on loopback)', { skip: absent }, () => {
  let registry: LocalRegistry;
  let dir: string;
  let env: Record<string, string>;

  before(async () => {
    registry = await startRegistry();
    dir = mkdtempSync(join(tmpdir(), 'donjon-push-'));
    // No credentials of the machine's user leak in, and the passphrase comes from cosign's variable.
    env = { DOCKER_CONFIG: join(dir, 'docker'), COSIGN_PASSWORD: 'correct horse' };
    const k = await runCli(['keygen', '--output-key-prefix', join(dir, 'cosign')], { env });
    assert.equal(k.code, 0, k.stderr);
    const o = await runCli(['keygen', '--output-key-prefix', join(dir, 'other')], { env });
    assert.equal(o.code, 0, o.stderr);
  });

  after(async () => {
    await registry?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('keygen writes cosign-format files that openssl reads as a P-256 pair', () => {
    assert.match(
      readFileSync(join(dir, 'cosign.key'), 'utf8'),
      /^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/,
    );
    const text = execFileSync(
      'openssl',
      ['pkey', '-pubin', '-in', join(dir, 'cosign.pub'), '-noout', '-text'],
      {
        encoding: 'utf8',
      },
    );
    assert.match(text, /prime256v1|P-256/);
  });

  test('push --sign-key prints the digest; run --verify-key pulls it and greets Alice', async () => {
    const ref = `${registry.host}/hello:1.0`;
    const p = await runCli(['push', hello, ref, '--sign-key', join(dir, 'cosign.key')], { env });
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /^sha256:[0-9a-f]{64}\n$/);
    const r = await runCli(['run', '--verify-key', join(dir, 'cosign.pub'), ref, '--', 'Alice'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Hello, Alice!\n');
    assert.match(r.stderr, new RegExp(`pulled ${ref} as ${p.stdout.trim()}, signed by cosign.pub`));
  });

  test('an unsigned workload is refused with exit 3, and runs under --allow-unsigned', async () => {
    const ref = `${registry.host}/unsigned:1.0`;
    const p = await runCli(['push', hello, ref], { env });
    assert.equal(p.code, 0, p.stderr);
    const refused = await runCli(['run', '--verify-key', join(dir, 'cosign.pub'), ref, '--', 'Bob'], { env });
    assert.equal(refused.code, 3, refused.stderr);
    assert.equal(refused.stdout, '');
    assert.match(refused.stderr, /ERR_WORKLOAD_UNSIGNED|no cosign signature/);
    const noKey = await runCli(['run', ref, '--', 'Bob'], { env });
    assert.equal(noKey.code, 3, noKey.stderr);
    assert.match(noKey.stderr, /--verify-key/);
    const allowed = await runCli(['run', '--allow-unsigned', ref, '--', 'Bob'], { env });
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.equal(allowed.stdout, 'Hello, Bob!\n');
    assert.match(allowed.stderr, /WARNING: running .* unverified/);
  });

  test('a workload signed by another key is refused with exit 3; donjon sign adds a signature that verifies', async () => {
    const ref = `${registry.host}/resigned:1.0`;
    const p = await runCli(['push', hello, ref, '--sign-key', join(dir, 'other.key')], { env });
    assert.equal(p.code, 0, p.stderr);
    const refused = await runCli(['run', '--verify-key', join(dir, 'cosign.pub'), ref, '--', 'Carol'], {
      env,
    });
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /no valid signature/);
    const s = await runCli(['sign', ref, '--key', join(dir, 'cosign.key')], { env });
    assert.equal(s.code, 0, s.stderr);
    assert.equal(s.stdout, p.stdout, 'sign names the digest push printed');
    const r = await runCli(['run', '-q', '--verify-key', join(dir, 'cosign.pub'), ref, '--', 'Carol'], {
      env,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Hello, Carol!\n');
  });

  test('a wrong passphrase stops the push with a usage error before anything is uploaded', async () => {
    const ref = `${registry.host}/wrongpass:1.0`;
    const p = await runCli(['push', hello, ref, '--sign-key', join(dir, 'cosign.key')], {
      env: { ...env, COSIGN_PASSWORD: 'wrong' },
    });
    assert.equal(p.code, 2, p.stderr);
    assert.match(p.stderr, /wrong passphrase/);
    const r = await runCli(['run', '--allow-unsigned', ref], { env });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /ERR_REGISTRY_NOT_FOUND|Cannot find/);
  });

  test('the Enarx.toml pushed with --config travels with the module and gives its arguments', async () => {
    const ref = `${registry.host}/configured:1.0`;
    const toml = join(dir, 'Enarx.toml');
    writeFileSync(toml, 'args = ["Dora"]\n');
    const p = await runCli(['push', hello, ref, '--config', toml], { env });
    assert.equal(p.code, 0, p.stderr);
    const r = await runCli(['run', '-q', '--allow-unsigned', ref], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Hello, Dora!\n');
  });

  test('deploy --follow takes a reference too, verified the same way', async () => {
    const ref = `${registry.host}/service:1.0`;
    const p = await runCli(['push', hello, ref, '--sign-key', join(dir, 'cosign.key')], { env });
    assert.equal(p.code, 0, p.stderr);
    const d = await runCli(
      ['deploy', '--follow', '--verify-key', join(dir, 'cosign.pub'), ref, '--', 'Fay'],
      { env },
    );
    assert.equal(d.code, 0, d.stderr);
    assert.equal(d.stdout, 'Hello, Fay!\n');
    const refused = await runCli(['deploy', '--follow', '--verify-key', join(dir, 'other.pub'), ref], {
      env,
    });
    assert.equal(refused.code, 3, refused.stderr);
  });

  test('a missing file that reads like a path is still a missing file, not a pull', async () => {
    const r = await runCli(['run', '--allow-unsigned', 'examples/nope/nope.wasm'], { env });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /no such file/);
  });
});

describe('donjon keygen', () => {
  test('refuses to overwrite without --force, and to run without a passphrase or a terminal', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'donjon-keygen-'));
    try {
      const prefix = join(dir, 'k');
      const first = await runCli(['keygen', '--output-key-prefix', prefix], { env: { COSIGN_PASSWORD: '' } });
      assert.equal(first.code, 0, first.stderr);
      const again = await runCli(['keygen', '--output-key-prefix', prefix], { env: { COSIGN_PASSWORD: '' } });
      assert.equal(again.code, 2);
      assert.match(again.stderr, /exists \(--force to replace it\)/);
      const forced = await runCli(['keygen', '--force', '--output-key-prefix', prefix], {
        env: { COSIGN_PASSWORD: '' },
      });
      assert.equal(forced.code, 0, forced.stderr);
      const noPass = await runCli(['keygen', '--output-key-prefix', join(dir, 'n')]);
      assert.equal(noPass.code, 2);
      assert.match(noPass.stderr, /set COSIGN_PASSWORD/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
