import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { Policy } from '../../src/attestation/index.ts';
import { ClientError, KeepManagerClient, measureRuntime, runWorkload } from '../../src/client/index.ts';
import { KeepManager, keepmgrChannel } from '../../src/host/keepmgr/keepmgr.ts';
import { loadOrCreateSimRoot } from '../../src/host/simroot.ts';
import { builtFile } from '../../src/paths.ts';
import { example, testHome } from '../helpers.ts';
import { startRelay } from './relay.ts';

const wasm = new Uint8Array(readFileSync(example('hello')));

let manager: KeepManager;
let url: string;
let policy: Policy;

before(async () => {
  const root = await loadOrCreateSimRoot(testHome);
  manager = new KeepManager({
    runtimePath: builtFile('keep.cjs'),
    keepldrPath: builtFile('keepldr.cjs'),
    simRootPath: root.path,
    runDir: mkdtempSync(join(tmpdir(), 'donjon-test-')),
  });
  url = await manager.listen();
  policy = { measurements: [measureRuntime()], trustSimulatedRoots: [root.fingerprint] };
});

after(async () => {
  await manager.close();
});

function sink(): PassThrough & { text(): string } {
  const chunks: Buffer[] = [];
  const s = new PassThrough() as PassThrough & { text(): string };
  s.on('data', (c: Buffer) => chunks.push(c));
  s.text = () => Buffer.concat(chunks).toString('utf8');
  return s;
}

function run(host: KeepManagerClient, overrides: { policy?: Policy } = {}) {
  const stdout = sink();
  const events: string[] = [];
  const promise = runWorkload({
    host,
    backend: 'sim',
    wasm,
    args: ['hello', 'Mallory'],
    env: {},
    stdin: null,
    stdout,
    stderr: sink(),
    policy: overrides.policy ?? policy,
    onEvent: (e) => events.push(e.type),
  });
  return { promise, stdout, events };
}

/** Every state each Keep went through, as the Keep Manager published them. */
const states = new Map<string, string[]>();
keepmgrChannel.subscribe((message) => {
  const m = message as { id?: string; state?: string };
  if (m.id === undefined || m.state === undefined) return;
  states.set(m.id, [...(states.get(m.id) ?? []), m.state]);
});

describe('hostile host and relay', () => {
  test('an honest path runs the workload (the control case for the tests below)', async () => {
    const relay = await startRelay(Number(new URL(url).port));
    try {
      const { promise, stdout } = run(new KeepManagerClient(relay.url));
      const result = await promise;
      assert.deepEqual(result.outcome, { kind: 'exit', code: 0 });
      assert.equal(stdout.text(), 'Hello, Mallory!\n');
      assert.ok(relay.channelBytesFromClient() > wasm.length, 'the workload crossed the relay, encrypted');
    } finally {
      await relay.close();
    }
  });

  test("a relay that flips a byte of the Keep's handshake makes the client refuse before sending anything", async () => {
    const relay = await startRelay(Number(new URL(url).port), {
      toClient: (chunk, offset) => {
        const out = Buffer.from(chunk);
        const at = 200 - offset;
        if (at >= 0 && at < out.length) out[at]! ^= 0x01;
        return out;
      },
    });
    try {
      const { promise, events } = run(new KeepManagerClient(relay.url));
      await assert.rejects(
        promise,
        (e: unknown) => e instanceof ClientError && e.code === 'ERR_CHANNEL_FAILED',
      );
      assert.ok(!events.includes('workload-sent'));
      assert.ok(
        relay.channelBytesFromClient() < wasm.length / 4,
        `client sent ${relay.channelBytesFromClient()} bytes`,
      );
    } finally {
      await relay.close();
    }
  });

  test('a relay that injects bytes towards the Keep breaks the channel; the Keep never runs anything', async () => {
    let keepId: string;
    const relay = await startRelay(Number(new URL(url).port), {
      toKeep: (chunk, offset) =>
        offset === 0 ? Buffer.concat([Buffer.from([23, 3, 3, 0, 5, 1, 2, 3, 4, 5]), chunk]) : chunk,
    });
    try {
      const host = new KeepManagerClient(relay.url);
      const { promise } = run(host);
      await assert.rejects(promise, (e: unknown) => e instanceof ClientError);
      const keeps = await new KeepManagerClient(url).listKeeps();
      keepId = keeps.at(-1)!.id;
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(!states.get(keepId)?.includes('running'), `states: ${states.get(keepId)?.join(' ')}`);
      assert.ok(states.get(keepId)?.includes('ready'), 'the Keep had become ready');
    } finally {
      await relay.close();
    }
  });

  test('a relay that flips a byte of the encrypted workload makes the Keep drop the channel, the workload unrun', async () => {
    const relay = await startRelay(Number(new URL(url).port), {
      toKeep: (chunk, offset) => {
        const out = Buffer.from(chunk);
        const at = 4000 - offset;
        if (at >= 0 && at < out.length) out[at]! ^= 0x80;
        return out;
      },
    });
    try {
      const { promise, stdout } = run(new KeepManagerClient(relay.url));
      await assert.rejects(
        promise,
        (e: unknown) => e instanceof ClientError && e.code === 'ERR_CHANNEL_LOST',
      );
      assert.equal(stdout.text(), '');
      const keeps = await new KeepManagerClient(url).listKeeps();
      const id = keeps.at(-1)!.id;
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(!states.get(id)?.includes('running'), `states: ${states.get(id)?.join(' ')}`);
    } finally {
      await relay.close();
    }
  });

  test('a relay that swaps the nonce in the channel hello (a replay) is refused before the workload is sent', async () => {
    const relay = await startRelay(Number(new URL(url).port), {
      toKeep: (chunk, offset) => {
        if (offset !== 0) return chunk;
        // The hello is the first frame: a 4-byte length, then CBOR whose last 32 bytes are the nonce.
        const out = Buffer.from(chunk);
        const end = 4 + out.readUInt32BE(0);
        out[end - 1]! ^= 0xff;
        return out;
      },
    });
    try {
      const { promise, events } = run(new KeepManagerClient(relay.url));
      await assert.rejects(
        promise,
        (e: unknown) => (e as { code?: string }).code === 'ERR_KEEP_NONCE_MISMATCH',
      );
      assert.ok(!events.includes('workload-sent'));
      assert.ok(
        relay.channelBytesFromClient() < wasm.length / 4,
        `client sent ${relay.channelBytesFromClient()} bytes`,
      );
    } finally {
      await relay.close();
    }
  });

  test('simulated evidence is refused by a policy that did not opt into that root', async () => {
    const { promise, events } = run(new KeepManagerClient(url), {
      policy: { measurements: policy.measurements! },
    });
    await assert.rejects(
      promise,
      (e: unknown) => (e as { code?: string }).code === 'ERR_SIMULATED_ROOT_NOT_TRUSTED',
    );
    assert.ok(!events.includes('workload-sent'));
  });

  test('a nil Keep is refused unless the client accepts it as insecure', async () => {
    const stdout = sink();
    const base = {
      host: new KeepManagerClient(url),
      backend: 'nil' as const,
      wasm,
      args: ['hello'],
      env: {},
      stdin: null,
      stdout,
      stderr: sink(),
      policy,
    };
    await assert.rejects(
      runWorkload(base),
      (e: unknown) => (e as { code?: string }).code === 'ERR_KEEP_NOT_ATTESTED',
    );
    const ok = await runWorkload({ ...base, insecure: true });
    assert.deepEqual(ok.outcome, { kind: 'exit', code: 0 });
    assert.equal(ok.identity.claims, null);
  });
});
