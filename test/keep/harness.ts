// A Keep under test, started from the runtime bundle as its Keep Loader starts it: this harness stands where the
// Keep Loader is (control pipe, channel pipe, IPC channel), answers evidence requests with the simulated
// backend, and records the lifecycle events the Keep reports.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Policy } from '../../src/attestation/index.ts';
import { openAttestedChannel } from '../../src/client/channel.ts';
import { measureRuntime } from '../../src/client/index.ts';
import { simBackend } from '../../src/host/backends/index.ts';
import { loadOrCreateSimRoot } from '../../src/host/simroot.ts';
import { builtFile } from '../../src/paths.ts';
import type { Limits, Message, MessageOf } from '../../src/protocol/messages.ts';
import { MUX_OPEN, MuxSession } from '../../src/protocol/mux.ts';
import { readFrames, writeFrame } from '../../src/protocol/stream.ts';
import { testHome } from '../helpers.ts';

/** A Keep process and what this harness saw of it. */
export interface KeepUnderTest {
  readonly child: ChildProcess;
  readonly mux: MuxSession;
  /** The lifecycle events it reported on its control pipe, in order. */
  readonly events: string[];
  /** Settles when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** What it wrote on stderr. */
  stderr(): string;
}

/** The policy that accepts this build's Keeps on the test machine's simulated root. */
export async function testPolicy(): Promise<Policy> {
  const root = await loadOrCreateSimRoot(testHome);
  return { measurements: [measureRuntime()], trustSimulatedRoots: [root.fingerprint] };
}

/** Starts a Keep with `config` (JSON-encoded as the Keep Loader passes it) and resolves once it is ready. */
export async function startKeep(config: unknown): Promise<KeepUnderTest> {
  const root = await loadOrCreateSimRoot(testHome);
  const runtime = builtFile('keep.cjs');
  const backend = simBackend(root.path, createHash('sha384').update(readFileSync(runtime)).digest());
  const child = spawn(process.execPath, [runtime, JSON.stringify(config)], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe', 'ipc'],
    env: {},
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const control = child.stdio[3] as unknown as Readable & Writable;
  const pipe = child.stdio[4] as unknown as Readable & Writable;
  pipe.on('error', () => {});
  control.on('error', () => {});
  const events: string[] = [];
  const ready = new Promise<void>((resolve, reject) => {
    readFrames(
      control,
      (m) => {
        if (m.type === 'keep-event') {
          events.push(m.event);
          if (m.event === 'ready') resolve();
        } else if (m.type === 'evidence-request') {
          void backend.evidence(m.reportData).then((e) => {
            if (e.kind === 'sev-snp') {
              writeFrame(control, { v: 1, type: 'evidence', kind: e.kind, report: e.report, certs: e.certs });
            }
          });
        }
      },
      { onError: () => {} },
    );
    void exited.then(({ code }) =>
      reject(new Error(`the Keep exited with ${code} before it was ready: ${stderr}`)),
    );
  });
  const mux = new MuxSession(pipe, {
    side: 'host',
    onStream: ({ stream }) => stream.reset('not here'),
    onError: () => child.kill('SIGKILL'),
  });
  await ready;
  return { child, mux, events, exited, stderr: () => stderr };
}

/** What a deploy over a channel of {@link deployOver} may set. */
export interface DeployFields {
  limits?: Limits;
  dirs?: MessageOf<'deploy'>['dirs'];
}

/** The end of a workload, as the channel brought it. */
export type Outcome = MessageOf<'exit'> | MessageOf<'trap'> | MessageOf<'limit'> | MessageOf<'error'>;

/**
 * Opens an attested channel to `keep`, deploys `wasm`, and resolves with the channel once the handshake is done;
 * `outcome` settles with the frame that ends the workload (or an error frame).
 */
export async function deployOver(
  keep: KeepUnderTest,
  policy: Policy,
  wasm: Uint8Array,
  fields: DeployFields = {},
): Promise<{ tls: TLSSocket; outcome: Promise<Outcome>; frames: Message[] }> {
  const { tls } = await openAttestedChannel(keep.mux.open(MUX_OPEN), {
    nonce: new Uint8Array(randomBytes(32)),
    policy,
  });
  const deploy: Message = {
    v: 1,
    type: 'deploy',
    wasm,
    digest: new Uint8Array(createHash('sha256').update(wasm).digest()),
    args: ['test.wasm'],
    env: {},
    stdin: false,
    owner: new Uint8Array(32),
  };
  if (fields.limits) deploy.limits = fields.limits;
  if (fields.dirs) deploy.dirs = fields.dirs;
  writeFrame(tls, deploy);
  const frames: Message[] = [];
  const outcome = new Promise<Outcome>((resolve, reject) => {
    readFrames(
      tls,
      (m) => {
        frames.push(m);
        if (m.type === 'exit' || m.type === 'trap' || m.type === 'limit' || m.type === 'error') resolve(m);
      },
      {
        maxFrameBytes: 16 << 20,
        onError: reject,
        onEnd: () => reject(new Error('the channel ended before the workload did')),
      },
    );
  });
  return { tls, outcome, frames };
}
