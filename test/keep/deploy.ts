// Helpers for tests that drive a Keep without a Keep Manager: deploy a service over a raw channel stream, and
// talk to the ports it listens on.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Policy } from '../../src/attestation/index.ts';
import { openAttestedChannel } from '../../src/client/channel.ts';
import { parseEnarxToml } from '../../src/client/index.ts';
import type { FileSpec, PortMapping } from '../../src/protocol/messages.ts';
import { readFrames, writeFrame } from '../../src/protocol/stream.ts';
import { example, repoRoot } from '../helpers.ts';

/** An example's module and the descriptor table of its Enarx.toml. */
export function exampleService(name: 'echo' | 'http'): { wasm: Uint8Array; files: FileSpec[] } {
  const toml = readFileSync(join(repoRoot, 'examples', name, 'Enarx.toml'), 'utf8');
  return { wasm: new Uint8Array(readFileSync(example(name))), files: parseEnarxToml(toml).files ?? [] };
}

/**
 * Deploys a service over `stream` (the raw bytes of a channel to a Keep), detached: resolves to the ports of
 * its `started` message once the workload runs.
 */
export async function deployService(
  stream: Duplex,
  name: 'echo' | 'http',
  policy: Policy,
): Promise<PortMapping[]> {
  const { wasm, files } = exampleService(name);
  const { tls } = await openAttestedChannel(stream, { nonce: new Uint8Array(randomBytes(32)), policy });
  writeFrame(tls, {
    v: 1,
    type: 'deploy',
    wasm,
    digest: new Uint8Array(createHash('sha256').update(wasm).digest()),
    args: [`${name}.wasm`],
    env: {},
    stdin: false,
    owner: new Uint8Array(32),
    files,
    detach: true,
  });
  return new Promise((resolve, reject) => {
    readFrames(
      tls,
      (m) => {
        if (m.type === 'started') resolve(m.ports ?? []);
        else if (m.type === 'error') reject(new Error(`${m.code}: ${m.message}`));
      },
      { onError: reject, onEnd: () => reject(new Error('the channel ended before the workload started')) },
    );
  });
}

/** A connection to a local port, once it is open. */
export function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Writes `text` and resolves with the first `text.length` bytes that come back. */
export function roundTrip(socket: Duplex, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer): void => {
      got += d.toString('utf8');
      if (got.length >= text.length) {
        socket.off('data', onData);
        socket.off('close', onClose);
        resolve(got);
      }
    };
    const onClose = (): void => reject(new Error(`the connection closed after ${JSON.stringify(got)}`));
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.write(text);
  });
}

/** Ends the writing side with `text` and resolves with everything that comes back until the peer closes. */
export function lastWords(socket: Duplex, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString('utf8');
    });
    socket.once('error', reject);
    socket.once('close', () => resolve(got));
    socket.end(text);
  });
}

/** Whether the peer closes a fresh connection without echoing what it was sent. */
export async function refused(port: number): Promise<boolean> {
  const s = await open(port);
  s.on('error', () => {});
  const reply = await lastWords(s, 'anyone there?').catch(() => '');
  return reply === '';
}

/** Settles as `promise` does, or fails after `ms` (a guard against hanging, not a measure of speed). */
export function within<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `check` until it holds; fails after `ms`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  ms = 10_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
