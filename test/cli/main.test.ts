import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadOrCreateSimRoot } from '../../src/host/simroot.ts';
import { example, freePort, runCli, startDaemon, testHome } from '../helpers.ts';

// The donjon command as a user meets it, run as a process against `donjon host` as an operator runs it: the
// same cause ends every command with the same status, and the error is one line (or one JSON object).

const state = mkdtempSync(join(tmpdir(), 'djm-'));
const home = mkdtempSync(join(tmpdir(), 'donjon-main-'));
const env = { DONJON_HOME: home };
let daemon: ChildProcess | undefined;
let url = '';
let fingerprint = '';
let token = '';

/** The one error a failed command reports with --json: the last JSON line of its stderr. */
function errorEvent(stderr: string): Record<string, unknown> {
  const lines = stderr.trim().split('\n');
  const event = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
  assert.equal(event['event'], 'error', stderr);
  return event;
}

/** One line, `donjon: error: ...`, with neither a stack trace nor Node's own parseArgs paragraph. */
function oneLine(stderr: string, pattern: RegExp): void {
  const errors = stderr.split('\n').filter((l) => l.startsWith('donjon: error: '));
  assert.equal(errors.length, 1, stderr);
  assert.match(errors[0]!, pattern);
  assert.doesNotMatch(stderr, /^\s+at |To specify a positional argument/m, stderr);
}

before(async () => {
  // Reuse the test run's simulated root rather than making another (two RSA-4096 keys).
  const root = await loadOrCreateSimRoot(testHome);
  mkdirSync(state, { recursive: true });
  copyFileSync(root.path, join(state, 'sim-root.cbor'));
  const info = await runCli(['host', 'info', '--state', state, '--json']);
  assert.equal(info.code, 0, info.stderr);
  fingerprint = (JSON.parse(info.stdout) as { fingerprint: string }).fingerprint;
  token = (await runCli(['host', 'token', 'create', '--state', state])).stdout.trim();
  const port = await freePort();
  url = `https://127.0.0.1:${port}`;
  daemon = await startDaemon(port, state);
});

after(() => {
  daemon?.kill('SIGKILL');
  rmSync(home, { recursive: true, force: true });
});

describe('donjon: one exit status per cause, in every command', () => {
  test('a wrong --host-fingerprint ends run, deploy and keeps ls alike with 3 (keeps ls ended with 1)', async () => {
    const wrong = ['--host', url, '--token', token, '--host-fingerprint', '00'.repeat(32)];
    for (const args of [
      ['run', ...wrong, example('hello')],
      ['deploy', ...wrong, example('hello')],
      ['keeps', 'ls', ...wrong],
      ['keeps', 'inspect', '0123456789abcdef', ...wrong],
    ]) {
      const r = await runCli(args, { env });
      assert.equal(r.code, 3, `donjon ${args.slice(0, 2).join(' ')}: ${r.stderr}`);
      oneLine(r.stderr, /fingerprint/);
    }
    const json = await runCli(['keeps', 'ls', '--json', ...wrong], { env });
    assert.equal(json.code, 3);
    const event = errorEvent(json.stderr);
    assert.equal(event['code'], 'ERR_HOST_UNTRUSTED');
    assert.equal(event['category'], 'refused');
  });

  test('keeps inspect, logs, stop and rm of no such Keep exit 2 with the host code ERR_KEEP_NOT_FOUND (they exited 1)', async () => {
    const pinned = ['--host', url, '--token', token, '--host-fingerprint', fingerprint];
    for (const verb of ['inspect', 'logs', 'stop', 'rm']) {
      const r = await runCli(['keeps', verb, '0123456789abcdef', ...pinned], { env });
      assert.equal(r.code, 2, `keeps ${verb}: ${r.stderr}`);
      oneLine(r.stderr, /ERR_KEEP_NOT_FOUND/);
    }
    const json = await runCli(['keeps', 'inspect', '0123456789abcdef', '--json', ...pinned], { env });
    assert.equal(json.code, 2);
    const event = errorEvent(json.stderr);
    assert.equal(event['code'], 'ERR_HOST_REFUSED');
    assert.equal(event['hostCode'], 'ERR_KEEP_NOT_FOUND');
    assert.equal(event['category'], 'usage');
  });

  test('a token the host does not know ends run and keeps ls alike with 4, the host code in --json', async () => {
    const bad = ['--host', url, '--token', 'djt_nope', '--host-fingerprint', fingerprint];
    const run = await runCli(['run', ...bad, '--json', example('hello')], { env });
    assert.equal(run.code, 4, run.stderr);
    assert.equal(errorEvent(run.stderr)['hostCode'], 'ERR_API_UNAUTHORIZED');
    const ls = await runCli(['keeps', 'ls', ...bad], { env });
    assert.equal(ls.code, 4, ls.stderr);
    oneLine(ls.stderr, /ERR_API_UNAUTHORIZED/);
  });

  test('a Keep Manager that cannot be reached ends run, deploy and keeps ls alike with 4', async () => {
    const gone = ['--host', `http://127.0.0.1:${await freePort()}`, '--token', token];
    for (const args of [
      ['run', ...gone, example('hello')],
      ['deploy', ...gone, example('hello')],
      ['keeps', 'ls', ...gone],
    ]) {
      const r = await runCli(args, { env });
      assert.equal(r.code, 4, `donjon ${args[0]}: ${r.stderr}`);
      oneLine(r.stderr, /Cannot reach the host/);
    }
  });
});

describe('donjon: the command line', () => {
  test('an unknown flag is one line naming it and donjon help COMMAND, exit 2, in every command', async () => {
    for (const [command, ...args] of [
      ['run', '--frob', example('hello')],
      ['deploy', '--frob', example('hello')],
      ['keeps', 'ls', '--frob'],
      ['attest', 'verify', '--frob', 'x'],
      ['measure', '--frob'],
      ['platform', 'info', '--frob'],
      ['proxy', '--frob'],
    ]) {
      const r = await runCli([command!, ...args], { env });
      assert.equal(r.code, 2, `${command}: ${r.stderr}`);
      oneLine(r.stderr, new RegExp(`unknown option --frob \\(see donjon help ${command}\\)$`));
    }
    for (const command of ['host', 'host info', 'push', 'keygen']) {
      const r = await runCli([...command.split(' '), '--frob'], { env });
      assert.equal(r.code, 2, r.stderr);
      oneLine(r.stderr, new RegExp(`unknown option --frob \\(see donjon help ${command}\\)$`));
    }
  });

  test('--json after -- is the workload’s argument: run keeps its human output and errors', async () => {
    const ok = await runCli(['run', example('hello'), '--', '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'Hello, --json!\n');
    assert.match(ok.stderr, /^donjon: Keep [0-9a-f]{16} created/m);
    assert.doesNotMatch(ok.stderr, /^\{/m);
    const refused = await runCli(['run', '--backend', 'nil', example('hello'), '--', '--json'], { env });
    assert.equal(refused.code, 3, refused.stderr);
    oneLine(refused.stderr, /Cannot trust a nil Keep/);
    // Before --, the same flag is the command's: the error is one JSON object.
    const json = await runCli(['run', '--json', '--backend', 'nil', example('hello')], { env });
    assert.equal(json.code, 3, json.stderr);
    const event = errorEvent(json.stderr);
    assert.equal(event['code'], 'ERR_KEEP_NOT_ATTESTED');
    assert.equal(event['category'], 'refused');
  });
});
