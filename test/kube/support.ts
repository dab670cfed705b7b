// What the keep-pod tests share: a kubelet-like runner of `donjon keep-pod` replicas (processes with the env
// and files Kubernetes would give them), a round-robin TCP proxy standing for the Service, a signed http
// example in a loopback registry, and small HTTP helpers.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { loadOrCreateSimRoot } from '../../src/host/simroot.ts';
import { cliPath, example, processGroupMembers, repoRoot, testHome } from '../helpers.ts';

/** How a replica runs: the Pod spec's container command, with what Kubernetes mounts and sets. */
export interface ReplicaSpec {
  /** The Pod's name (POD_NAME), also the name of its state folder. */
  name: string;
  /** The Pod's IP (POD_IP): a loopback address of its own, where its ports are bound. */
  ip: string;
  reference: string;
  /** The ConfigMap files: the Enarx.toml and the verifying keys. */
  config: string;
  keys: readonly string[];
  /** The Secret file: the shared simulated root. */
  simRoot: string;
  healthPort: number;
  /** An emptyDir: kept across restarts of the container, as a Pod's is. */
  stateDir: string;
  gracePeriodSeconds?: number;
  /**
   * The Pod spec's container command (`donjon keep-pod ...` with the Pod's paths, see {@link podCommand}): run
   * with the Pod's mounts and addresses mapped to this replica's files and address, as kubelet mounts volumes.
   * Without it, the command line is made from the fields above.
   */
  command?: readonly string[];
}

/** Where the Pod mounts what keep-pod reads (KEEPPOD-CONTRACT: ConfigMaps, the Secret, the emptyDir). */
export const POD_PATHS = {
  config: '/etc/donjon/config/Enarx.toml',
  key: (n: number) => `/etc/donjon/keys/key-${n}.pub`,
  simRoot: '/etc/donjon/sim-root/sim-root.cbor',
  stateDir: '/var/run/donjon',
} as const;

/** The container command of a sim replica as the Deployment states it: the contract's paths and addresses. */
export function podCommand(reference: string, keys: number, gracePeriodSeconds = 20): string[] {
  return [
    'donjon',
    'keep-pod',
    reference,
    '--config',
    POD_PATHS.config,
    ...Array.from({ length: keys }, (_, i) => ['--verify-key', POD_PATHS.key(i + 1)]).flat(),
    '--backend',
    'sim',
    '--sim-root',
    POD_PATHS.simRoot,
    '--health-listen',
    '0.0.0.0:8080',
    '--listen-address',
    '0.0.0.0',
    '--state-dir',
    POD_PATHS.stateDir,
    '--grace-period',
    String(gracePeriodSeconds),
  ];
}

/**
 * A Pod's container command as this machine runs it: `donjon` is bin/donjon.js, each path the Pod mounts is
 * the replica's own file, and the addresses the Pod binds on every interface are the replica's Pod IP (its
 * probes on a free port of it). A path under a mount the harness does not make fails the test.
 */
export function localCommand(spec: ReplicaSpec, command: readonly string[]): string[] {
  assert.deepEqual(command.slice(0, 2), ['donjon', 'keep-pod'], 'the container runs donjon keep-pod');
  const files = new Map<string, string>([
    [POD_PATHS.config, spec.config],
    [POD_PATHS.simRoot, spec.simRoot],
    [POD_PATHS.stateDir, spec.stateDir],
    ...spec.keys.map((k, i): [string, string] => [POD_PATHS.key(i + 1), k]),
  ]);
  const out = ['keep-pod'];
  for (let i = 2; i < command.length; i++) {
    const arg = command[i]!;
    const flag = command[i - 1];
    if (flag === '--health-listen') out.push(`${spec.ip}:${spec.healthPort}`);
    else if (flag === '--listen-address') out.push(spec.ip);
    else if (arg.startsWith('/')) {
      const local = files.get(arg);
      assert.ok(local !== undefined, `the harness mounts nothing at ${arg}`);
      out.push(local);
    } else out.push(arg);
  }
  return out;
}

/** One running replica: its process (a process group of its own, like a container's processes). */
export class Replica {
  readonly spec: ReplicaSpec;
  readonly child: ChildProcess;
  /** Its stderr, line by line (JSON objects, one per event). */
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(spec: ReplicaSpec) {
    this.spec = spec;
    const args = spec.command ? localCommand(spec, spec.command) : replicaArgs(spec);
    this.child = spawn(process.execPath, [cliPath, ...args], {
      cwd: repoRoot,
      env: {
        PATH: process.env['PATH'] ?? '',
        // The downward API.
        POD_NAME: spec.name,
        POD_NAMESPACE: 'donjon-test',
        POD_IP: spec.ip,
        NODE_NAME: 'node-a',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
    });
    let rest = '';
    this.child.stderr!.on('data', (c: Buffer) => {
      const text = rest + c.toString('utf8');
      const parts = text.split('\n');
      rest = parts.pop()!;
      this.lines.push(...parts.filter((l) => l.trim() !== ''));
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  /** The events it logged, parsed. */
  events(): Record<string, unknown>[] {
    return this.lines.flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }

  /** GET /healthz or /readyz: the status, or undefined when nothing answers. */
  probe(path: '/healthz' | '/readyz'): Promise<number | undefined> {
    return httpStatus(this.spec.ip, this.spec.healthPort, path);
  }

  /** Waits until /readyz answers 200; fails with its log when it exits first or takes over `ms`. */
  async ready(ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      if ((await this.probe('/readyz')) === 200) return;
      if (this.child.exitCode !== null || this.child.signalCode !== null)
        assert.fail(`replica ${this.spec.name} exited before it was ready:\n${this.lines.join('\n')}`);
      if (Date.now() > deadline)
        assert.fail(`replica ${this.spec.name} was not ready:\n${this.lines.join('\n')}`);
      await sleep(50);
    }
  }

  /** kill -9 of the container: every process of its group at once, as the kernel does when PID 1 dies. */
  async killHard(): Promise<void> {
    const pgid = this.child.pid!;
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {}
    await this.exited;
    await groupGone(pgid);
  }

  /** Waits until none of its processes is left (its Keep Loader and Keep end after it), or fails. */
  async allGone(): Promise<void> {
    await this.exited;
    await groupGone(this.child.pid!);
  }

  /** Whatever is left of it, gone (for `after`). */
  async cleanUp(): Promise<void> {
    const pgid = this.child.pid;
    if (pgid === undefined) return;
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {}
    await groupGone(pgid);
  }
}

/** The container command of a replica: what the generated Deployment runs. */
export function replicaArgs(spec: ReplicaSpec): string[] {
  return [
    'keep-pod',
    spec.reference,
    '--config',
    spec.config,
    ...spec.keys.flatMap((k) => ['--verify-key', k]),
    '--backend',
    'sim',
    '--sim-root',
    spec.simRoot,
    '--health-listen',
    `${spec.ip}:${spec.healthPort}`,
    '--listen-address',
    spec.ip,
    '--state-dir',
    spec.stateDir,
    '--grace-period',
    String(spec.gracePeriodSeconds ?? 20),
  ];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function groupGone(pgid: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (processGroupMembers(pgid).length > 0) {
    if (Date.now() > deadline) assert.fail(`processes left behind: ${processGroupMembers(pgid).join(', ')}`);
    await sleep(25);
  }
}

/** The status of GET http://host:port/path, or undefined when the connection fails. */
export function httpStatus(host: string, port: number, path: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = request({ host, port, path, agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/** One HTTP/1.1 GET over an open (verified) stream; resolves with the whole response once it closes. */
export function httpGet(socket: Duplex, path = '/'): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('utf8');
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
    socket.write(`GET ${path} HTTP/1.1\r\nHost: service\r\nConnection: close\r\n\r\n`);
  });
}

/**
 * A round-robin TCP proxy standing for the Service: each connection goes to the next of its endpoints. The
 * endpoints are the replicas that are ready, as the EndpointSlice controller keeps them from the readiness
 * probes; the test adds and removes them as it sees /readyz.
 */
export class RoundRobinProxy {
  readonly #server: Server;
  readonly #endpoints: { host: string; port: number }[] = [];
  readonly #sockets = new Set<Socket>();
  #next = 0;

  constructor() {
    this.#server = createServer((client) => {
      this.#sockets.add(client);
      client.on('close', () => this.#sockets.delete(client));
      client.on('error', () => client.destroy());
      if (this.#endpoints.length === 0) {
        client.destroy();
        return;
      }
      const to = this.#endpoints[this.#next++ % this.#endpoints.length]!;
      const upstream = connect(to.port, to.host);
      this.#sockets.add(upstream);
      upstream.on('close', () => this.#sockets.delete(upstream));
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  listen(): Promise<number> {
    return new Promise((resolve) =>
      this.#server.listen(0, '127.0.0.1', () => resolve((this.#server.address() as { port: number }).port)),
    );
  }

  add(host: string, port: number): void {
    if (!this.#endpoints.some((e) => e.host === host && e.port === port))
      this.#endpoints.push({ host, port });
  }

  remove(host: string, port: number): void {
    const i = this.#endpoints.findIndex((e) => e.host === host && e.port === port);
    if (i !== -1) this.#endpoints.splice(i, 1);
  }

  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

/** The http example's Enarx.toml with its listen file on `port` (what the Deployment's ConfigMap holds). */
export function httpConfig(dir: string, port: number, name = 'Enarx.toml'): string {
  const text = readFileSync(join(repoRoot, 'examples', 'http', 'Enarx.toml'), 'utf8');
  assert.match(text, /^port = 8443$/m);
  const path = join(dir, name);
  writeFileSync(path, text.replace(/^port = 8443$/m, `port = ${port}`));
  return path;
}

/**
 * The http example as another build of the same source: the module with a custom section appended (valid
 * Wasm, the same behaviour, another digest), for a rollout to "a new module".
 */
export function rebuiltHttp(dir: string, label: string): string {
  const wasm = readFileSync(example('http'));
  const name = Buffer.from('donjon.build');
  const payload = Buffer.from(label);
  const body = Buffer.concat([Buffer.from([name.length]), name, payload]);
  assert.ok(body.length < 128, 'one LEB128 byte of size');
  const path = join(dir, `http-${label}.wasm`);
  writeFileSync(path, Buffer.concat([wasm, Buffer.from([0, body.length]), body]));
  return path;
}

/**
 * The simulated root the replicas share, as the manifest's Secret mounts it, and its fingerprint: the test
 * run's own (made once per run), copied into `dir`.
 */
export async function sharedSimRoot(dir: string): Promise<{ path: string; fingerprint: string }> {
  const root = await loadOrCreateSimRoot(testHome);
  mkdirSync(join(dir, 'sim-root'), { recursive: true });
  const path = join(dir, 'sim-root', 'sim-root.cbor');
  copyFileSync(root.path, path);
  return { path, fingerprint: root.fingerprint };
}
