// Debian's docker-registry (the CNCF Distribution registry) on loopback, for the tests that need a real
// one: a temporary config (filesystem storage in a temporary directory, http on 127.0.0.1 and a free
// port), started per test file and stopped after. Where the binary is missing the tests are skipped with
// a message, except under CI=true, where a missing registry is a failure: CI installs it.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, runCli } from '../helpers.ts';

/** A running registry: `host` is `127.0.0.1:PORT`. */
export interface LocalRegistry {
  readonly host: string;
  readonly dir: string;
  stop(): Promise<void>;
}

function onPath(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Why a test that needs `commands` cannot run here, or undefined when it can. Under CI=true a missing
 * command throws instead: the tests must not pass by skipping there.
 */
export function missing(...commands: string[]): string | undefined {
  const absent = commands.filter((c) => !onPath(c));
  if (absent.length === 0) return undefined;
  const why = `${absent.join(' and ')} not installed (apt-get install docker-registry skopeo)`;
  if (process.env.CI === 'true') throw new Error(`Cannot run the registry tests under CI: ${why}`);
  return why;
}

async function waitUntilUp(host: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited (${child.exitCode}): ${log()}`);
    try {
      const r = await fetch(`http://${host}/v2/`);
      if (r.status === 200) return;
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`docker-registry did not answer on ${host}: ${log()}`);
}

/** Starts docker-registry on a free loopback port with its storage in a fresh temporary directory. */
export async function startRegistry(): Promise<LocalRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'donjon-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      'http:',
      `  addr: ${host}`,
      '',
    ].join('\n'),
  );
  const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString('utf8')).slice(-4000);
  });
  try {
    await waitUntilUp(host, child, () => stderr);
  } catch (error) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    host,
    dir,
    stop: async () => {
      if (child.exitCode === null) {
        const ended = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await ended;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A cosign key pair made by `donjon keygen` (passphrase `pw`): the private key's and the public key's paths. */
export async function keyPair(dir: string, prefix: string): Promise<{ key: string; pub: string }> {
  const k = await runCli(['keygen', '--output-key-prefix', join(dir, prefix)], {
    env: { COSIGN_PASSWORD: 'pw', DONJON_HOME: dir },
  });
  assert.equal(k.code, 0, k.stderr);
  return { key: join(dir, `${prefix}.key`), pub: join(dir, `${prefix}.pub`) };
}

/**
 * Pushes a module with its Enarx.toml and signs it (`donjon push --sign-key`, a key of {@link keyPair});
 * resolves to REPO@DIGEST.
 */
export async function pushSigned(
  dir: string,
  wasm: string,
  repoTag: string,
  config: string,
  key: string,
): Promise<string> {
  const p = await runCli(['push', wasm, repoTag, '--config', config, '--sign-key', key], {
    env: { COSIGN_PASSWORD: 'pw', DONJON_HOME: dir, DOCKER_CONFIG: join(dir, 'docker') },
  });
  assert.equal(p.code, 0, p.stderr);
  const digest = p.stdout.trim();
  assert.match(digest, /^sha256:[0-9a-f]{64}$/);
  return `${repoTag.replace(/:[^:/]+$/, '')}@${digest}`;
}
