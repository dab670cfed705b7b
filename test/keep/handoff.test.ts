// A Keep receiving connections on its IPC channel from a host that does not follow the rules: this test
// stands where the Keep Loader is (control pipe, channel pipe, IPC channel) and hands over sockets with
// messages of every wrong shape. The Keep closes what does not fit, reports each hand-off it closes, keeps
// running and serves the connections that do fit.
import assert from 'node:assert/strict';
import { type ChildProcess, type Serializable, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { Policy } from '../../src/attestation/index.ts';
import { measureRuntime } from '../../src/client/index.ts';
import { simBackend } from '../../src/host/backends/index.ts';
import { loadOrCreateSimRoot } from '../../src/host/simroot.ts';
import { builtFile } from '../../src/paths.ts';
import { MUX_BOUND, MUX_LISTEN, MUX_OPEN, MuxSession } from '../../src/protocol/mux.ts';
import { readFrames, writeFrame } from '../../src/protocol/stream.ts';
import { testHome } from '../helpers.ts';
import { deployService, lastWords, roundTrip, until } from './deploy.ts';

/** The host port this fake Keep Loader claims to have bound. */
const CLAIMED_PORT = 4242;

let keep: ChildProcess;
let mux: MuxSession;
let policy: Policy;
/** The id of the LISTEN stream of the workload's listen file, once it asked. */
let listener: number | undefined;
const reports: unknown[] = [];
const servers: Server[] = [];
let server: Server;
const accepted: Socket[] = [];

before(async () => {
  const root = await loadOrCreateSimRoot(testHome);
  policy = { measurements: [measureRuntime()], trustSimulatedRoots: [root.fingerprint] };
  const runtime = builtFile('keep.cjs');
  const backend = simBackend(root.path, createHash('sha384').update(readFileSync(runtime)).digest());
  keep = spawn(process.execPath, [runtime, JSON.stringify({ limits: {} })], {
    stdio: ['ignore', 'ignore', 'inherit', 'pipe', 'pipe', 'ipc'],
    env: {},
  });
  keep.on('message', (m: unknown) => reports.push(m));
  const control = keep.stdio[3] as unknown as Readable & Writable;
  const pipe = keep.stdio[4] as unknown as Readable & Writable;
  const ready = new Promise<void>((resolve, reject) => {
    readFrames(
      control,
      (m) => {
        if (m.type === 'keep-event' && m.event === 'ready') resolve();
        if (m.type !== 'evidence-request') return;
        void backend.evidence(m.reportData).then((e) => {
          assert.equal(e.kind, 'sev-snp');
          if (e.kind === 'sev-snp') {
            writeFrame(control, { v: 1, type: 'evidence', kind: e.kind, report: e.report, certs: e.certs });
          }
        });
      },
      { onError: reject },
    );
  });
  mux = new MuxSession(pipe, {
    side: 'host',
    onStream: ({ stream, kind }) => {
      stream.on('error', () => {});
      if (kind !== MUX_LISTEN) {
        stream.reset('not here');
        return;
      }
      listener = stream.id;
      stream.sendControl(MUX_BOUND, Uint8Array.of(CLAIMED_PORT >> 8, CLAIMED_PORT & 0xff));
      stream.resume();
    },
    onError: (error) => assert.fail(error),
  });
  server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => accepted.push(s));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  await ready;
});

after(() => {
  keep?.kill('SIGKILL');
  for (const s of servers) s.close();
});

/** A TCP connection: the client's end, and the accepted end to hand over (not yet read). */
async function pair(): Promise<{ client: Socket; handed: Socket }> {
  const before = accepted.length;
  const client = connect((server.address() as { port: number }).port, '127.0.0.1');
  client.on('error', () => {});
  await until(() => accepted.length > before, 'the accepted end');
  return { client, handed: accepted[before]! };
}

/** Whether the Keep closed the connection without echoing anything (a reset counts as closed). */
async function closedUnread(client: Socket): Promise<boolean> {
  return (await lastWords(client, 'hello?').catch(() => '')) === '';
}

function alive(): boolean {
  return keep.exitCode === null && keep.signalCode === null;
}

describe('connections handed over to a Keep', () => {
  test('before there is a workload, a handed-over connection is closed and reported', async () => {
    const { client, handed } = await pair();
    keep.send({ t: 'accept', listener: 0x8000_0001, id: 1 }, handed);
    assert.ok(await closedUnread(client));
    await until(() => reports.some((r) => (r as { id?: number }).id === 1), 'the report of hand-off 1');
    assert.ok(alive());
  });

  test('once the workload runs, a well-formed hand-off carries bytes both ways and is reported when closed', async () => {
    const ports = await deployService(mux.open(MUX_OPEN), 'echo', policy);
    assert.deepEqual(ports, [{ name: 'echo', port: CLAIMED_PORT }]);
    assert.ok(listener !== undefined);
    const { client, handed } = await pair();
    keep.send({ t: 'accept', listener, id: 2 }, handed);
    assert.equal(await roundTrip(client, 'over the handed socket'), 'over the handed socket');
    assert.equal(await lastWords(client, 'and its end'), 'and its end');
    await until(
      () => reports.some((r) => JSON.stringify(r) === JSON.stringify({ t: 'closed', id: 2 })),
      'the report of hand-off 2',
    );
  });

  test('sockets that come with a malformed message are closed; the Keep keeps running', async () => {
    assert.ok(listener !== undefined);
    const wrong: Serializable[] = [
      { t: 'accept', listener: 'echo', id: 10 },
      { t: 'accept', listener: 1.5, id: 11 },
      { t: 'accept', listener: listener + 1, id: 12 },
      { t: 'connect', listener, id: 13 },
      { listener, id: 14 },
      { t: 'accept', id: 15 },
      'accept',
      42,
      false,
      [listener],
      { t: 'accept', listener: -1 },
    ];
    for (const m of wrong) {
      const { client, handed } = await pair();
      keep.send(m, handed);
      assert.ok(await closedUnread(client), `the socket of ${JSON.stringify(m)} is closed`);
    }
    // A hand-off is reported by the id it came with, whatever else was wrong with it.
    await until(
      () => [10, 11, 12, 13, 14, 15].every((id) => reports.some((r) => (r as { id?: number }).id === id)),
      'the reports of the malformed hand-offs',
    );
    assert.ok(alive());
  });

  test('messages without a socket, or with another kind of handle, change nothing', async () => {
    assert.ok(listener !== undefined);
    keep.send({ t: 'accept', listener, id: 20 });
    keep.send('not even an object');
    const other = createServer();
    servers.push(other);
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    keep.send({ t: 'accept', listener, id: 21 }, other);
    // Still serving: a well-formed hand-off after all that works.
    const { client, handed } = await pair();
    keep.send({ t: 'accept', listener, id: 22 }, handed);
    assert.equal(await roundTrip(client, 'still serving'), 'still serving');
    client.destroy();
    assert.ok(alive());
    assert.ok(!reports.some((r) => [20, 21].includes((r as { id?: number }).id ?? -1)));
    assert.ok(
      reports.every((r) => typeof r === 'object' && r !== null && (r as { t?: unknown }).t === 'closed'),
    );
  });
});
