// The Keep Loader as a process (dist/keepldr.cjs): what it does with the configuration in argv, and that its
// socket goes with it however it is asked to end.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { KeepLoaderConfig } from '../../../src/host/keepldr/keepldr.ts';
import { builtFile } from '../../../src/paths.ts';
import { FakeKeep } from './fake-keep.ts';

/** Runs the Keep Loader with `args`; `whileRunning` may act on it before it ends. */
function run(
  args: string[],
  whileRunning?: (pid: number) => Promise<void>,
): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [builtFile('keepldr.cjs'), ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {},
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString('utf8');
  });
  const ended = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stderr })),
  );
  if (whileRunning) void whileRunning(child.pid!).catch(() => child.kill('SIGKILL'));
  return ended;
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
}

describe('keepldr main', () => {
  const bad: [string, string[], RegExp][] = [
    [
      'no configuration',
      [],
      /^donjon keepldr: Cannot start: expected its configuration as the first argument\n$/,
    ],
    [
      'text that is not JSON',
      ['{id'],
      /^donjon keepldr: Cannot decode Keep Loader configuration: it is not JSON\n$/,
    ],
    [
      'a backend it does not know',
      [JSON.stringify({ id: 'k', backend: 'sgx', socketPath: '/x', runtimePath: '/y', limits: {} })],
      /^donjon keepldr: Cannot decode Keep Loader configuration message: backend must be one of "sim", "nil", "cvm", "sgx-sim"\n$/,
    ],
    [
      'a field missing',
      [JSON.stringify({ id: 'k', backend: 'nil', runtimePath: '/y', limits: {} })],
      /^donjon keepldr: Cannot decode .* socketPath is missing\n$/,
    ],
    [
      'a field of the wrong type',
      [
        JSON.stringify({
          id: 'k',
          backend: 'nil',
          socketPath: '/x',
          runtimePath: '/y',
          limits: { memoryBytes: -1 },
        }),
      ],
      /^donjon keepldr: Cannot decode .* limits\.memoryBytes must be an unsigned integer/,
    ],
  ];
  for (const [what, args, message] of bad) {
    test(`a bad configuration (${what}) exits 2 with one line`, async () => {
      const { code, stderr } = await run(args);
      assert.equal(code, 2);
      assert.match(stderr, message);
    });
  }

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`on ${signal} the Keep Loader stops its Keep, removes its socket and exits 0`, async () => {
      const keep = new FakeKeep();
      const config: KeepLoaderConfig = {
        id: 'sig',
        backend: 'nil',
        socketPath: join(keep.dir, 'ldr.sock'),
        runtimePath: keep.runtimePath,
        limits: {},
      };
      try {
        const { code } = await run([JSON.stringify(config)], async (pid) => {
          await until(() => existsSync(config.socketPath));
          await keep.control;
          process.kill(pid, signal);
        });
        assert.equal(code, 0);
        assert.equal(existsSync(config.socketPath), false);
      } finally {
        keep.close();
      }
    });
  }
});
