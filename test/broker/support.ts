// An in-process broker on loopback and a simulated Keep that attests to it, for the broker's tests.
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signSimReport } from '../../src/attestation/sim/index.ts';
import { brokerReportData } from '../../src/broker/binding.ts';
import { type FetchSecretsOptions, fetchSecrets } from '../../src/broker/client.ts';
import { loadOrCreateBrokerIdentity } from '../../src/broker/identity.ts';
import { BrokerServer } from '../../src/broker/server.ts';
import { BrokerStore } from '../../src/broker/store.ts';
import { loadOrCreateSimRoot, type StoredSimRoot } from '../../src/host/simroot.ts';
import type { CarriedEvidence } from '../../src/ratls/index.ts';
import { testHome } from '../helpers.ts';

/** The runtime measurement the test broker takes as "this version's". */
export const MEASUREMENT = createHash('sha384').update('donjon test runtime').digest('hex');

/** A workload digest and its configuration digest. */
export const WORKLOAD = createHash('sha256').update('cat.wasm').digest();
export const CONFIG = createHash('sha256').update('Enarx.toml').digest();

export interface TestBroker {
  server: BrokerServer;
  store: BrokerStore;
  url: string;
  port: number;
  fingerprint: string;
  adminToken: string;
  root: StoredSimRoot;
  dir: string;
  logs: string[];
  /** Moves the broker's clock. */
  advance(ms: number): void;
  close(): Promise<void>;
}

/** Starts a broker on 127.0.0.1 with a fresh state directory and the tests' simulated root. */
export async function startBroker(): Promise<TestBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'donjon-broker-'));
  const root = await loadOrCreateSimRoot(testHome);
  const identity = loadOrCreateBrokerIdentity(dir);
  const store = new BrokerStore(dir);
  const logs: string[] = [];
  let offset = 0;
  const server = new BrokerServer({
    store,
    identity,
    defaultMeasurements: [MEASUREMENT],
    now: () => new Date(Date.now() + offset),
    log: (e) => logs.push(JSON.stringify(e)),
  });
  const url = await server.listen('127.0.0.1', 0);
  return {
    server,
    store,
    url,
    port: Number(new URL(url).port),
    fingerprint: identity.fingerprint,
    adminToken: store.createAdminToken(Date.now()).token,
    root,
    dir,
    logs,
    advance: (ms) => {
      offset += ms;
    },
    close: async () => {
      await server.close(100);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A policy allowing `secrets` to WORKLOAD under the test root, as TOML. */
export function allowPolicy(b: TestBroker, secrets: string[], extra = ''): string {
  return `[[allow]]
secrets = ${JSON.stringify(secrets)}
workloads = ["${WORKLOAD.toString('hex')}"]
sim-roots = ["${b.root.fingerprint}"]
${extra}`;
}

/** A simulated Keep: its key and an evidence function signing with the test root. */
export interface TestKeep {
  key: KeyObject;
  /** Every report_data it was asked to sign, in order. */
  asked: Uint8Array[];
  evidence: (reportData: Uint8Array) => Promise<CarriedEvidence>;
}

export function makeKeep(b: Pick<TestBroker, 'root'>, measurement = MEASUREMENT): TestKeep {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const asked: Uint8Array[] = [];
  return {
    key: privateKey,
    asked,
    evidence: async (reportData) => {
      asked.push(reportData);
      const report = signSimReport(b.root.material, {
        reportData,
        measurement: Buffer.from(measurement, 'hex'),
      });
      return {
        kind: 'sev-snp',
        report,
        certs: [b.root.material.vcekDer, b.root.material.askDer, b.root.material.arkDer],
      };
    },
  };
}

/** Fetches secrets from the test broker as a Keep would, over a plain TCP stream to it. */
export function fetchFrom(
  b: TestBroker,
  keep: TestKeep,
  secrets: string[],
  overrides: Partial<FetchSecretsOptions> = {},
): Promise<Map<string, Uint8Array>> {
  return fetchSecrets({
    stream: connect(b.port, '127.0.0.1'),
    fingerprint: b.fingerprint,
    key: keep.key,
    evidence: keep.evidence,
    workload: WORKLOAD,
    config: CONFIG,
    tee: 'snp',
    secrets,
    ...overrides,
  });
}

export { brokerReportData };
