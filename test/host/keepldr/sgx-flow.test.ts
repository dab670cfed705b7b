import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeSimSgxQuote, type SimIntelPlatform } from '../../../src/attestation/sim/index.ts';
import { openAttestedChannel } from '../../../src/client/channel.ts';
import { sgxSimBackend } from '../../../src/host/backends/sgx-sim.ts';
import { KeepLoader, type KeepLoaderHooks } from '../../../src/host/keepldr/keepldr.ts';
import { loadOrCreateSimSgxRoot } from '../../../src/host/simroot.ts';
import { builtFile } from '../../../src/paths.ts';
import { encodeFrame } from '../../../src/protocol/frames.ts';
import type { Message } from '../../../src/protocol/messages.ts';
import { readFirstFrame, readFrames, writeFrame } from '../../../src/protocol/stream.ts';
import { example, testHome } from '../../helpers.ts';

// SGX evidence through the whole flow, on the simulated Intel platform: a real Keep Loader (in this process)
// starts a real Keep, and the client verifies the quote in the Keep's certificate and runs a workload. Once
// with the simulated QE in the Keep Loader (`sgx-sim`), once with the Keep making its own quote through a
// fake Gramine /dev/attestation whose files are FIFOs served by this process with the simulated QE.

const MRENCLAVE = createHash('sha256')
  .update(readFileSync(builtFile('keep.cjs')))
  .digest();
let platform: SimIntelPlatform;
let platformPath = '';
const loaders: KeepLoader[] = [];

before(async () => {
  const stored = await loadOrCreateSimSgxRoot(testHome);
  platform = stored.platform;
  platformPath = stored.path;
});

after(() => {
  for (const l of loaders) l.stop();
});

async function startLoader(
  hooks: KeepLoaderHooks,
  extra: { evidenceSource?: 'gramine'; attestationRoot?: string } = {},
): Promise<string> {
  const socketPath = join(mkdtempSync(join(tmpdir(), 'djg-')), 'k.sock');
  const loader = new KeepLoader(
    {
      id: 'sgxflow',
      backend: 'sgx-sim',
      socketPath,
      runtimePath: builtFile('keep.cjs'),
      simSgxRootPath: platformPath,
      limits: {},
      ...extra,
    },
    { exit: () => {}, log: () => {}, ...hooks },
  );
  loaders.push(loader);
  await loader.start();
  return socketPath;
}

/** Opens a channel as the Keep Manager does, once the Keep is ready. */
async function channel(socketPath: string): Promise<Socket> {
  for (let i = 0; i < 200; i++) {
    const socket = connect(socketPath);
    socket.write(encodeFrame({ v: 1, type: 'ldr-channel' }));
    const { message, rest } = await readFirstFrame(socket, { timeoutMs: 5000 });
    if (message.type === 'ldr-event') {
      if (rest.length > 0) socket.unshift(rest);
      socket.resume();
      return socket;
    }
    socket.destroy();
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the Keep never became ready');
}

const policy = () => ({
  mrEnclaves: [MRENCLAVE.toString('hex')],
  trustSimulatedRoots: [platform.fingerprint],
});

async function runHello(tls: Socket, name: string): Promise<{ out: string; end: Message }> {
  const wasm = new Uint8Array(readFileSync(example('hello')));
  writeFrame(tls, {
    v: 1,
    type: 'deploy',
    wasm,
    digest: new Uint8Array(createHash('sha256').update(wasm).digest()),
    args: ['hello', name],
    env: {},
    stdin: false,
    owner: new Uint8Array(32),
  });
  const out: Buffer[] = [];
  const end = await new Promise<Message>((resolve, reject) => {
    readFrames(
      tls,
      (m) => {
        if (m.type === 'stdout') out.push(Buffer.from(m.data));
        else if (m.type === 'exit' || m.type === 'trap' || m.type === 'error') resolve(m);
      },
      { onError: reject },
    );
  });
  tls.end();
  return { out: Buffer.concat(out).toString(), end };
}

/**
 * A fake Gramine attestation interface: `attestation_type` a plain file, `user_report_data` and `quote` FIFOs
 * this process serves, each quote made by the simulated QE over the report_data last written.
 */
function fakeGramine(quoteFor: (reportData: Uint8Array) => Uint8Array): {
  root: string;
  stop(): Promise<void>;
} {
  const root = mkdtempSync(join(tmpdir(), 'djg-att-'));
  writeFileSync(join(root, 'attestation_type'), 'dcap');
  execFileSync('mkfifo', [join(root, 'user_report_data'), join(root, 'quote')]);
  let stopped = false;
  let phase: 'read' | 'write' = 'read';
  const serve = async (): Promise<void> => {
    while (!stopped) {
      phase = 'read';
      const reportData = new Uint8Array(await readFile(join(root, 'user_report_data')));
      if (stopped) return;
      phase = 'write';
      await writeFile(join(root, 'quote'), quoteFor(reportData));
    }
  };
  const served = serve().catch(() => {});
  return {
    root,
    // The server waits in open(2) on a FIFO, which holds a thread until the other end opens: open it to let go.
    stop: async () => {
      stopped = true;
      if (phase === 'read') await writeFile(join(root, 'user_report_data'), '');
      else await readFile(join(root, 'quote'));
      await served;
    },
  };
}

describe('sgx-sim, end to end', () => {
  test("a Keep proves itself with the simulated QE's quote and its collateral, and runs the workload", async () => {
    const socket = await channel(await startLoader({}));
    const { tls, identity } = await openAttestedChannel(socket, {
      nonce: new Uint8Array(randomBytes(32)),
      policy: policy(),
    });
    assert.equal(identity.claims?.kind, 'sgx');
    assert.equal(identity.claims?.simulated, true);
    assert.equal(identity.claims?.measurement, MRENCLAVE.toString('hex'));
    assert.equal(identity.claims?.collateralChecked, true);
    const { out, end } = await runHello(tls, 'Enclave');
    assert.deepEqual(end, { v: 1, type: 'exit', code: 0 });
    assert.equal(out, 'Hello, Enclave!\n');
  });

  test('a Keep Loader that answers with a quote for other report_data gets the Keep refused before any workload', async () => {
    const honest = sgxSimBackend(platformPath, MRENCLAVE);
    const socket = await channel(
      await startLoader({
        backend: { evidence: () => honest.evidence(new Uint8Array(64).fill(0x01)) },
      }),
    );
    await assert.rejects(
      openAttestedChannel(socket, { nonce: new Uint8Array(randomBytes(32)), policy: policy() }),
      { code: 'ERR_REPORT_DATA_MISMATCH' },
    );
  });

  test('without a policy naming the simulated Intel root the Keep is refused', async () => {
    const socket = await channel(await startLoader({}));
    await assert.rejects(
      openAttestedChannel(socket, {
        nonce: new Uint8Array(randomBytes(32)),
        policy: { mrEnclaves: [MRENCLAVE.toString('hex')] },
      }),
      { code: 'ERR_SIMULATED_ROOT_NOT_TRUSTED' },
    );
  });
});

describe('the gramine evidence source over a FIFO-backed /dev/attestation, end to end', () => {
  test('the Keep makes its own quote, the host adds only the collateral, and the client accepts it', async () => {
    const fake = fakeGramine((reportData) => makeSimSgxQuote(platform, { reportData, mrEnclave: MRENCLAVE }));
    try {
      // The Keep Loader's own evidence would be refused: only the Keep's quote can pass.
      const honest = sgxSimBackend(platformPath, MRENCLAVE);
      const socket = await channel(
        await startLoader(
          {
            backend: {
              evidence: () => Promise.reject(new Error('a gramine Keep asks for no evidence')),
              collateral: (quote) => honest.collateral(quote),
            },
          },
          { evidenceSource: 'gramine', attestationRoot: fake.root },
        ),
      );
      const { tls, identity } = await openAttestedChannel(socket, {
        nonce: new Uint8Array(randomBytes(32)),
        policy: policy(),
      });
      assert.equal(identity.claims?.kind, 'sgx');
      assert.equal(identity.claims?.simulated, true);
      const { out, end } = await runHello(tls, 'Gramine');
      assert.deepEqual(end, { v: 1, type: 'exit', code: 0 });
      assert.equal(out, 'Hello, Gramine!\n');
    } finally {
      await fake.stop();
    }
  });

  test('a /dev/attestation whose quote binds other report_data gets no certificate made', async () => {
    const fake = fakeGramine(() =>
      makeSimSgxQuote(platform, { reportData: new Uint8Array(64).fill(9), mrEnclave: MRENCLAVE }),
    );
    try {
      const honest = sgxSimBackend(platformPath, MRENCLAVE);
      let asked = 0;
      const socket = await channel(
        await startLoader(
          {
            backend: {
              evidence: () => Promise.reject(new Error('a gramine Keep asks for no evidence')),
              collateral: (quote) => {
                asked++;
                return honest.collateral(quote);
              },
            },
          },
          { evidenceSource: 'gramine', attestationRoot: fake.root },
        ),
      );
      await assert.rejects(
        openAttestedChannel(socket, { nonce: new Uint8Array(randomBytes(32)), policy: policy() }),
      );
      assert.equal(asked, 0, 'the Keep asked for collateral of a quote it should have refused');
    } finally {
      await fake.stop();
    }
  });
});
