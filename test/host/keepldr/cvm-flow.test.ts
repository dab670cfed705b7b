import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type SimRootMaterial, signSimReport } from '../../../src/attestation/index.ts';
import { openAttestedChannel } from '../../../src/client/channel.ts';
import { cvmBackend } from '../../../src/host/backends/cvm.ts';
import { encodeSnpCertTable, SNP_CERT_GUID } from '../../../src/host/backends/tsm/certs.ts';
import { KeepLoader } from '../../../src/host/keepldr/keepldr.ts';
import { loadOrCreateSimRoot } from '../../../src/host/simroot.ts';
import { builtFile } from '../../../src/paths.ts';
import { encodeFrame } from '../../../src/protocol/frames.ts';
import type { Message } from '../../../src/protocol/messages.ts';
import { readFirstFrame, readFrames, writeFrame } from '../../../src/protocol/stream.ts';
import { example, testHome } from '../../helpers.ts';
import { type FakeRequest, FakeTsm } from '../backends/tsm/fake-tsm.ts';

// The `cvm` backend through the whole flow: a real Keep Loader (in this process, so that it can use the fake
// configfs-tsm, which lives in this process) starts a real Keep; the client opens a channel on the Keep
// Loader's socket as the Keep Manager would, verifies the evidence the fake's simulated chip made for the
// Keep's key and the client's nonce, deploys a workload and reads its output.

const MEASUREMENT = new Uint8Array(48).fill(0x6d);
let root: SimRootMaterial;
const loaders: KeepLoader[] = [];

before(async () => {
  root = (await loadOrCreateSimRoot(testHome)).material;
});

after(() => {
  for (const l of loaders) l.stop();
});

/** The simulated secure processor behind the fake sev_guest provider, with a certificate table. */
function chip(request: FakeRequest) {
  return {
    outblob: signSimReport(root, {
      reportData: request.inblob,
      measurement: MEASUREMENT,
      vmpl: request.privlevel,
    }),
    auxblob: encodeSnpCertTable([
      { guid: SNP_CERT_GUID.VCEK, data: root.vcekDer },
      { guid: SNP_CERT_GUID.ASK, data: root.askDer },
      { guid: SNP_CERT_GUID.ARK, data: root.arkDer },
    ]),
  };
}

async function startLoader(fake: FakeTsm): Promise<string> {
  const socketPath = join(mkdtempSync(join(tmpdir(), 'djf-')), 'k.sock');
  const loader = new KeepLoader(
    { id: 'cvmflow', backend: 'cvm', socketPath, runtimePath: builtFile('keep.js'), limits: {} },
    { backend: cvmBackend({ fs: fake }), exit: () => {} },
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
  measurements: [Buffer.from(MEASUREMENT).toString('hex')],
  trustSimulatedRoots: [root.fingerprint],
});

describe('the cvm backend over a fake configfs-tsm, end to end', () => {
  test("a Keep proves itself with the fake chip's report and runs the workload", async () => {
    const fake = new FakeTsm({ generate: chip });
    const socket = await channel(await startLoader(fake));
    const { tls, identity } = await openAttestedChannel(socket, {
      nonce: new Uint8Array(randomBytes(32)),
      policy: policy(),
    });
    assert.equal(identity.claims?.kind, 'sev-snp');
    const wasm = new Uint8Array(readFileSync(example('hello')));
    writeFrame(tls, {
      v: 1,
      type: 'deploy',
      wasm,
      digest: new Uint8Array(createHash('sha256').update(wasm).digest()),
      args: ['hello', 'Configfs'],
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
    assert.deepEqual(end, { v: 1, type: 'exit', code: 0 });
    assert.equal(Buffer.concat(out).toString(), 'Hello, Configfs!\n');
    tls.end();
  });

  test('a fake that answers with a report for other report_data gets the Keep refused before any workload', async () => {
    const fake = new FakeTsm({
      generate: (r) => chip({ ...r, inblob: new Uint8Array(64).fill(0x01) }),
    });
    const socket = await channel(await startLoader(fake));
    await assert.rejects(
      openAttestedChannel(socket, { nonce: new Uint8Array(randomBytes(32)), policy: policy() }),
    );
  });
});
