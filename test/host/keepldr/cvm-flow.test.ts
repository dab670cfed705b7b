import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DcapCollateral, TrustRoots } from '../../../src/attestation/index.ts';
import { type SimRootMaterial, signSimReport } from '../../../src/attestation/sim/index.ts';
import { openAttestedChannel } from '../../../src/client/channel.ts';
import { cvmBackend } from '../../../src/host/backends/cvm.ts';
import { encodeSnpCertTable, SNP_CERT_GUID } from '../../../src/host/backends/tsm/certs.ts';
import { KeepLoader } from '../../../src/host/keepldr/keepldr.ts';
import { loadOrCreateSimRoot } from '../../../src/host/simroot.ts';
import { builtFile } from '../../../src/paths.ts';
import { encodeFrame } from '../../../src/protocol/frames.ts';
import type { Message } from '../../../src/protocol/messages.ts';
import { readFirstFrame, readFrames, writeFrame } from '../../../src/protocol/stream.ts';
import {
  buildQuote,
  chainPem,
  ecCrl,
  makePki,
  qeBody,
  qeIdentity,
  collateral as signCollateral,
  type TestPki,
  tcbInfo,
  tdBody,
} from '../../attestation/dcap/forge.ts';
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

async function startLoader(
  fake: FakeTsm,
  options: Omit<Parameters<typeof cvmBackend>[0], 'fs'> = {},
): Promise<string> {
  const socketPath = join(mkdtempSync(join(tmpdir(), 'djf-')), 'k.sock');
  const loader = new KeepLoader(
    { id: 'cvmflow', backend: 'cvm', socketPath, runtimePath: builtFile('keep.cjs'), limits: {} },
    { backend: cvmBackend({ fs: fake, ...options }), exit: () => {} },
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

/** Deploys the hello example over an attested channel and returns its output and how it ended. */
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

describe('the cvm backend over a fake configfs-tsm, end to end', () => {
  test("a Keep proves itself with the fake chip's report and runs the workload", async () => {
    const fake = new FakeTsm({ generate: chip });
    const socket = await channel(await startLoader(fake));
    const { tls, identity } = await openAttestedChannel(socket, {
      nonce: new Uint8Array(randomBytes(32)),
      policy: policy(),
    });
    assert.equal(identity.claims?.kind, 'sev-snp');
    const { out, end } = await runHello(tls, 'Configfs');
    assert.deepEqual(end, { v: 1, type: 'exit', code: 0 });
    assert.equal(out, 'Hello, Configfs!\n');
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

// A TDX guest: the fake tdx_guest provider answers with a quote signed end to end under a test Intel PKI
// (PCK chain inside), and the host's PCS cache (here: the same PKI's signed TCB info, QE identity and CRLs)
// supplies the collateral that the Keep's certificate carries to the client. Everything is dated around now,
// because the Keep dates its certificate with the real clock.
const DAY = 86_400_000;
const MR_TD = new Uint8Array(48).fill(0x7d);
const TDX_COMPONENTS = [6, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

interface TdxWorld {
  pki: TestPki;
  roots: TrustRoots;
  /** The simulated TD's quoting: a quote for the report_data the guest asked for. */
  chip: (request: FakeRequest) => { outblob: Uint8Array };
  /**
   * Collateral as Intel's PCS would serve it for this platform: `revoke` puts the PCK on the PCK CRL, `status`
   * is the TCB status of the platform's level.
   */
  collateral: (options?: { revoke?: boolean; status?: string }) => DcapCollateral;
}

function tdxWorld(): TdxWorld {
  const now = Date.now();
  const pki = makePki({ pckValidity: [new Date(now - 30 * DAY), new Date(now + 365 * DAY)] });
  const chipFn = (request: FakeRequest) => ({
    outblob: buildQuote({
      version: 4,
      body: tdBody({ reportData: request.inblob, mrTd: MR_TD }),
      qeReport: qeBody('tdx'),
      pck: pki.pck,
      chainPem: chainPem(pki.pck.der, pki.pckCa.der, pki.root.der),
    }),
  });
  const dates = {
    issueDate: new Date(now - DAY).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    nextUpdate: new Date(now + 30 * DAY).toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
  const collateral = (options: { revoke?: boolean; status?: string } = {}) =>
    signCollateral(
      pki,
      tcbInfo({
        id: 'TDX',
        ...dates,
        levels: [
          {
            sgx: pki.platform.components,
            pcesvn: pki.platform.pceSvn,
            tdx: TDX_COMPONENTS,
            status: options.status ?? 'UpToDate',
          },
        ],
        tdxModuleIdentities: [
          {
            id: 'TDX_01',
            mrsigner: '00'.repeat(48),
            attributes: '00'.repeat(8),
            attributesMask: 'FF'.repeat(8),
            tcbLevels: [{ tcb: { isvsvn: 6 }, tcbDate: '2024-03-13T00:00:00Z', tcbStatus: 'UpToDate' }],
          },
        ],
      }),
      qeIdentity({ id: 'TD_QE', ...dates }),
      {
        rootCrl: ecCrl({
          issuer: pki.rootName,
          issuerKey: pki.root.key.privateKey,
          thisUpdate: new Date(now - DAY),
          nextUpdate: new Date(now + 30 * DAY),
        }),
        pckCrl: ecCrl({
          issuer: pki.caName,
          issuerKey: pki.pckCa.key.privateKey,
          thisUpdate: new Date(now - DAY),
          nextUpdate: new Date(now + 30 * DAY),
          revoked: options.revoke ? [pki.pck.serial] : [0x77n],
        }),
      },
    );
  return { pki, roots: pki.roots, chip: chipFn, collateral };
}

describe('the cvm backend on a TDX guest, collateral from the host carried to the client', () => {
  let world: TdxWorld;
  before(() => {
    world = tdxWorld();
  });
  const tdxPolicy = () => ({ mrTds: [Buffer.from(MR_TD).toString('hex')] });
  const open = (socket: Socket, policyOverrides: Record<string, unknown> = {}) =>
    openAttestedChannel(socket, {
      nonce: new Uint8Array(randomBytes(32)),
      policy: { ...tdxPolicy(), ...policyOverrides },
      roots: world.roots,
    });

  test('a TDX Keep proves itself with its quote and the collateral, checked by the client, and runs the workload', async () => {
    const fake = new FakeTsm({ provider: 'tdx_guest', generate: world.chip });
    let fetched = 0;
    const socket = await channel(
      await startLoader(fake, {
        dcapCollateral: async () => {
          fetched++;
          return world.collateral();
        },
      }),
    );
    const { tls, identity } = await open(socket);
    const claims = identity.claims;
    assert.equal(claims?.kind, 'tdx');
    assert.ok(claims?.kind === 'tdx');
    assert.equal(claims.collateralChecked, true);
    assert.equal(claims.tcbStatus, 'UpToDate');
    assert.equal(fetched, 1);
    const { out, end } = await runHello(tls, 'TDX');
    assert.deepEqual(end, { v: 1, type: 'exit', code: 0 });
    assert.equal(out, 'Hello, TDX!\n');
  });

  test('without collateral the client refuses the TDX Keep, unless its policy does without', async () => {
    const warnings: unknown[] = [];
    const offline = () =>
      startLoader(new FakeTsm({ provider: 'tdx_guest', generate: world.chip }), {
        dcapCollateral: async () => {
          throw new Error('PCS unreachable');
        },
        onCollateralError: (e: unknown) => warnings.push(e),
      });
    await assert.rejects(open(await channel(await offline())), (e: Error & { field?: string }) => {
      assert.equal(e.field, 'requireCollateral');
      return true;
    });
    assert.match(String(warnings[0]), /PCS unreachable/);
    const { tls, identity } = await open(await channel(await offline()), { requireCollateral: false });
    assert.ok(identity.claims?.kind === 'tdx');
    assert.equal(identity.claims.collateralChecked, false);
    assert.equal(identity.claims.tcbStatus, undefined);
    tls.destroy();
  });

  test("collateral whose PCK CRL revokes the quote's PCK gets the Keep refused", async () => {
    const fake = new FakeTsm({ provider: 'tdx_guest', generate: world.chip });
    const socket = await channel(
      await startLoader(fake, { dcapCollateral: async () => world.collateral({ revoke: true }) }),
    );
    await assert.rejects(open(socket), { code: 'ERR_REVOKED' });
  });

  test('an out-of-date platform is refused, and so is the host rewriting its TCB status in the collateral', async () => {
    const outOfDate = () => world.collateral({ status: 'OutOfDate' });
    const honest = await channel(
      await startLoader(new FakeTsm({ provider: 'tdx_guest', generate: world.chip }), {
        dcapCollateral: async () => outOfDate(),
      }),
    );
    await assert.rejects(open(honest), { code: 'ERR_TCB_STATUS' });
    const rewritten = async (): Promise<DcapCollateral> => {
      const c = outOfDate();
      const tcbInfo = String(c.tcbInfo).replace('"tcbStatus":"OutOfDate"', '"tcbStatus":"UpToDate"');
      assert.notEqual(tcbInfo, c.tcbInfo);
      return { ...c, tcbInfo };
    };
    const forged = await channel(
      await startLoader(new FakeTsm({ provider: 'tdx_guest', generate: world.chip }), {
        dcapCollateral: rewritten,
      }),
    );
    await assert.rejects(open(forged), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ERR_COLLATERAL_INVALID');
      assert.match(e.message, /signature/);
      return true;
    });
  });

  test('a quote from another TD (other MRTD) is refused even with good collateral', async () => {
    const fake = new FakeTsm({ provider: 'tdx_guest', generate: world.chip });
    const socket = await channel(await startLoader(fake, { dcapCollateral: async () => world.collateral() }));
    await assert.rejects(
      openAttestedChannel(socket, {
        nonce: new Uint8Array(randomBytes(32)),
        policy: { mrTds: ['00'.repeat(48)] },
        roots: world.roots,
      }),
      (e: Error & { field?: string }) => e.field === 'mrTds',
    );
  });
});
