// `donjon run` starts its Keep before the CLI loads; the embedded host's Keep Loader adopts that very process.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { test } from 'node:test';
import fc from 'fast-check';
import { startEmbeddedHost } from '../../src/cli/embedded.ts';
import { keepAheadConfig, startKeepAhead } from '../../src/cli/keep-ahead.ts';
import { Reporter } from '../../src/cli/report.ts';
import { adoptEarlyKeep } from '../../src/host/keepldr/spawn-keep.ts';
import { encodeIpc } from '../../src/host/keepldr/wire.ts';
import { builtFile } from '../../src/paths.ts';
import { keepConfigSchema } from '../../src/protocol/ipc.ts';
import type { Limits } from '../../src/protocol/messages.ts';
import { testHome } from '../helpers.ts';

process.env['DONJON_HOME'] = testHome;
delete process.env['DONJON_HOST'];

/** The Keep started ahead and not yet adopted, if any. */
function early(): ChildProcess | undefined {
  const slot = (globalThis as Record<symbol, { keep?: { child: ChildProcess } } | undefined>)[
    Symbol.for('donjon.early-keep')
  ];
  return slot?.keep?.child;
}

function ended(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

test('keepAheadConfig() gives the bytes the Keep Loader sends a Keep of those limits', () => {
  const limits = fc.record(
    {
      memoryBytes: fc.integer({ min: 1, max: 2 ** 40 }),
      wallTimeMs: fc.integer({ min: 1, max: 2 ** 31 }),
      outputBytes: fc.integer({ min: 1, max: 2 ** 40 }),
    },
    { requiredKeys: [] },
  );
  fc.assert(
    fc.property(limits, (l: Limits) => {
      const sent = JSON.stringify(encodeIpc(keepConfigSchema, { limits: l }, 'Keep configuration'));
      assert.equal(keepAheadConfig(l), sent);
    }),
  );
});

test('startKeepAhead() starts no Keep when the flags do not say which Keep the embedded host will start', async () => {
  const cases = [
    [],
    ['--help', 'hello.wasm'],
    ['--host', 'https://127.0.0.1:1', 'hello.wasm'],
    ['--publish', 'web=0', 'hello.wasm'],
    ['--backend', 'cvm', 'hello.wasm'],
    ['--backend', 'nil', 'hello.wasm'],
    ['--memory', 'lots', 'hello.wasm'],
    ['--no-such-flag', 'hello.wasm'],
  ];
  for (const argv of cases) {
    startKeepAhead(argv);
    assert.equal(early(), undefined, `no Keep for: ${argv.join(' ')}`);
  }
  process.env['DONJON_HOST'] = 'https://127.0.0.1:1';
  try {
    startKeepAhead(['hello.wasm']);
    assert.equal(early(), undefined, 'no Keep when DONJON_HOST names a host');
  } finally {
    delete process.env['DONJON_HOST'];
  }
});

test('a Keep started ahead with other limits is not adopted: it is killed and a fresh Keep started', async () => {
  startKeepAhead(['--memory', '64MiB', 'hello.wasm']);
  const child = early();
  assert.ok(child?.pid, 'a Keep was started ahead');
  assert.equal(
    adoptEarlyKeep(builtFile('keep.cjs'), keepAheadConfig({ memoryBytes: 32 * 2 ** 20 })),
    undefined,
  );
  assert.equal(child.killed, true);
  await ended(child);
  assert.equal(child.signalCode, 'SIGKILL');
  assert.equal(early(), undefined, 'a Keep is adopted or refused once');
});

test('a Keep started ahead that ended is not adopted', async () => {
  startKeepAhead(['hello.wasm']);
  const child = early()!;
  child.kill('SIGKILL');
  await ended(child);
  assert.equal(adoptEarlyKeep(builtFile('keep.cjs'), keepAheadConfig({})), undefined);
});

test("the embedded host's Keep Loader adopts the Keep started ahead for its first Keep", async () => {
  startKeepAhead(['--timeout', '30s', 'hello.wasm']);
  const child = early();
  assert.ok(child?.pid, 'a Keep was started ahead');
  const host = await startEmbeddedHost(new Reporter({ quiet: true, json: false }), 'sim');
  try {
    const keep = await host.client.createKeep('sim', { wallTimeMs: 30_000 });
    assert.equal(keep.state, 'ready');
    assert.equal(early(), undefined, 'adopted');
    // A Keep refused at adoption is sent SIGKILL at once; this one runs: it is the Keep that became ready.
    assert.equal(child.killed, false);
    assert.equal(child.exitCode, null);
  } finally {
    await host.close();
  }
  await ended(child);
});
