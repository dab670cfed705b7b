// The Keep's configuration comes from the Keep Loader, which is not trusted: the Keep decodes it against its
// schema before using any of it, and a configuration that does not fit ends the Keep at once with status 2 and
// a one-line reason, before it makes a key or reports ready.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { builtFile } from '../../src/paths.ts';
import { readFrames } from '../../src/protocol/stream.ts';
import { within } from './deploy.ts';

/** Starts the Keep runtime with `args`, its pipes open as a Keep Loader opens them; resolves when it ends. */
function runKeep(args: string[]): Promise<{ code: number | null; stderr: string; events: string[] }> {
  const child = spawn(process.execPath, [builtFile('keep.cjs'), ...args], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe', 'ipc'],
    env: {},
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
  });
  const events: string[] = [];
  readFrames(
    child.stdio[3] as Readable,
    (m) => {
      if (m.type !== 'keep-event') return;
      events.push(m.event);
      // A Keep that got this far accepted its configuration: the test has what it came for.
      if (m.event === 'ready') child.kill('SIGKILL');
    },
    { onError: () => {} },
  );
  return within(
    new Promise((resolve) => child.once('exit', (code) => resolve({ code, stderr, events }))),
    'the Keep to end',
  );
}

describe("the Keep's configuration", () => {
  test('a well-formed one is accepted: the Keep reports ready', async () => {
    const r = await runKeep([JSON.stringify({ limits: { memoryBytes: 1 << 26, descriptors: 64 } })]);
    assert.deepEqual(r.events, ['ready']);
  });

  const bad: [string, string, RegExp][] = [
    ['not JSON', '{limits:', /Cannot decode keep-config: it is not JSON/],
    ['without limits', '{}', /limits is missing/],
    ['with limits of the wrong type', '{"limits":"none"}', /limits is not a map/],
    [
      'with a negative limit',
      '{"limits":{"memoryBytes":-1}}',
      /limits\.memoryBytes must be an unsigned integer/,
    ],
    [
      'with a descriptor limit that is not a number',
      '{"limits":{"descriptors":"many"}}',
      /limits\.descriptors/,
    ],
    ['with an unknown key', '{"limits":{},"debug":true}', /unknown key "debug"/],
    ['with a fractional module size', '{"limits":{},"maxWasmBytes":1.5}', /maxWasmBytes/],
  ];
  for (const [what, config, reason] of bad) {
    test(`one ${what} ends the Keep with status 2 and a one-line reason`, async () => {
      const r = await runKeep([config]);
      assert.equal(r.code, 2, r.stderr);
      assert.deepEqual(r.events, [], 'it never reports ready');
      assert.match(r.stderr, /^donjon keep: Cannot decode keep-config/);
      assert.match(r.stderr, reason);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    });
  }

  test('none at all ends the Keep with status 2', async () => {
    const r = await runKeep([]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^donjon keep: Cannot start: expected its configuration as the first argument\n$/);
  });
});
