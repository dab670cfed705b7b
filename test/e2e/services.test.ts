// Confidential services end to end: the http and echo examples deployed into Keeps of a Keep Manager, reached
// through the host ports it forwards, verified by the SDK, `donjon proxy` and `donjon attest inspect`; and
// hostile hosts that tamper with, replay or swap them, which the client and the proxy refuse before any byte
// of a request leaves them.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls';
import { pathToFileURL } from 'node:url';
import type { Policy } from '../../src/attestation/index.ts';
import {
  attachWorkload,
  connectService,
  type DeployResult,
  deployWorkload,
  KeepManagerClient,
  measureRuntime,
  parseEnarxToml,
} from '../../src/client/index.ts';
import { KeepManager } from '../../src/host/keepmgr/keepmgr.ts';
import { loadOrCreateSimRoot } from '../../src/host/simroot.ts';
import { builtFile } from '../../src/paths.ts';
import { makeServiceCertificate, readKeepCertificate, spkiOf } from '../../src/ratls/index.ts';
import { cliPath, example, freePort, repoRoot, runCli, testHome } from '../helpers.ts';

const httpWasm = new Uint8Array(readFileSync(example('http')));
const httpConfig = parseEnarxToml(readFileSync(join(repoRoot, 'examples', 'http', 'Enarx.toml'), 'utf8'));
const echoConfig = parseEnarxToml(readFileSync(join(repoRoot, 'examples', 'echo', 'Enarx.toml'), 'utf8'));
const httpDigest = createHash('sha256').update(httpWasm).digest('hex');

let manager: KeepManager;
let url: string;
let simRoot = '';
let policy: Policy;
let host: KeepManagerClient;

before(async () => {
  const root = await loadOrCreateSimRoot(testHome);
  simRoot = root.fingerprint;
  manager = new KeepManager({
    runtimePath: builtFile('keep.cjs'),
    keepldrPath: builtFile('keepldr.cjs'),
    simRootPath: root.path,
    runDir: mkdtempSync(join(tmpdir(), 'djs-')),
  });
  url = await manager.listen();
  host = new KeepManagerClient(url);
  policy = { measurements: [measureRuntime()], trustSimulatedRoots: [simRoot] };
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await manager.close();
});

function deployHttp(env: Record<string, string> = {}): Promise<DeployResult> {
  return deployWorkload({
    host,
    backend: 'sim',
    wasm: httpWasm,
    args: ['http.wasm'],
    env,
    files: httpConfig.files,
    policy,
  });
}

/** One plain HTTP GET over a socket that is already through TLS (or a plain proxy port). */
function get(socket: Socket, path = '/'): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('utf8');
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
    socket.write(`GET ${path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n`);
  });
}

/** How many pages a Keep's http example has served, read from the page itself (one more than before). */
async function servedCount(port: number): Promise<number> {
  const { socket } = await connectService({ host: '127.0.0.1', port, policy });
  const page = await get(socket);
  const m = /Requests served by this Keep so far: (\d+)/.exec(page);
  assert.ok(m, page);
  return Number(m[1]);
}

// --- the CLI: deploy and proxy are run through bin/donjon.js once the command table has them ------------------

const children: ChildProcess[] = [];
let registered: boolean | undefined;

/** The command line that runs `donjon NAME ...`: the installed CLI, or the command's module directly. */
async function donjonArgs(args: string[]): Promise<string[]> {
  registered ??= /^\s+deploy\s/m.test((await runCli(['--help'])).stdout);
  const name = args[0];
  if (registered || (name !== 'deploy' && name !== 'proxy')) return [cliPath, ...args];
  // Until src/cli/main.ts lists them, run the command module the way main.ts runs a command.
  const module = pathToFileURL(join(repoRoot, 'src', 'cli', `${name}.ts`)).href;
  const shim = `const m = await import(${JSON.stringify(module)});
const f = m.${name}Command;
try { process.exitCode = await f(process.argv.slice(1)); }
catch (e) { process.stderr.write('donjon: error: ' + e.message + '\\n'); process.exitCode = e.exitCode ?? (e.name === 'UsageError' ? 2 : 1); }`;
  return ['--import', 'tsx', '--input-type=module', '-e', shim, '--', ...args.slice(1)];
}

async function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const argv = await donjonArgs(args);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, {
      cwd: repoRoot,
      env: { PATH: process.env['PATH'] ?? '', DONJON_HOME: testHome },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

interface Proxy {
  port: number;
  stderr(): string;
  stop(): void;
}

async function startProxy(args: string[]): Promise<Proxy> {
  const child = spawn(process.execPath, await donjonArgs(['proxy', ...args]), {
    cwd: repoRoot,
    env: { PATH: process.env['PATH'] ?? '', DONJON_HOME: testHome },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`donjon proxy did not start: ${stderr}`)), 15_000);
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code) => reject(new Error(`donjon proxy exited with ${code}: ${stderr}`)));
  });
  return { port, stderr: () => stderr, stop: () => child.kill('SIGINT') };
}

/** A plain HTTP GET to a local port (what curl does through the proxy). */
function httpGet(port: number): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString('utf8');
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', (e) => resolve({ error: e.message }));
    req.end();
  });
}

async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// --- a relay the host controls, between a client and a Keep's host port ------------------------------------

interface Relay {
  port: number;
  /** Bytes that went from the client towards the Keep. */
  fromClient(): number;
  close(): void;
}

function relay(target: () => number, tamper?: (chunk: Buffer, offset: number) => Buffer): Promise<Relay> {
  let fromClient = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target(), '127.0.0.1');
    sockets.add(client).add(upstream);
    let offset = 0;
    client.on('data', (c: Buffer) => {
      fromClient += c.length;
      upstream.write(c);
    });
    upstream.on('data', (c: Buffer) => {
      client.write(tamper ? tamper(c, offset) : c);
      offset += c.length;
    });
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
    }
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as { port: number }).port,
        fromClient: () => fromClient,
        close: () => {
          for (const s of sockets) s.destroy();
          server.close();
        },
      }),
    );
  });
}

describe('confidential services', () => {
  let http: DeployResult;

  before(async () => {
    http = await deployHttp();
  });

  test('deployWorkload() returns once the http example runs, naming its host port and digests', async () => {
    assert.equal(http.ports.length, 1);
    assert.equal(http.ports[0]!.name, 'https');
    assert.ok(http.ports[0]!.port > 0);
    assert.equal(http.workloadDigest, httpDigest);
    const keep = await host.getKeep(http.keepId);
    assert.equal(keep.state, 'running');
    // Once the Keep Manager copies the Keep Loader's ports into its records, they match.
    if (keep.ports !== undefined) assert.deepEqual(keep.ports, http.ports);
  });

  test('connectService() proves workload, configuration and runtime, then serves the page', async () => {
    const { socket, identity } = await connectService({
      host: '127.0.0.1',
      port: http.ports[0]!.port,
      policy,
      workloadDigests: [httpDigest],
      configDigests: [http.configDigest],
    });
    assert.equal(identity.workloadDigest, httpDigest);
    assert.equal(identity.configDigest, http.configDigest);
    assert.ok(identity.claims?.kind === 'sev-snp' && identity.claims.measurement === measureRuntime());
    const page = await get(socket);
    assert.match(page, /^HTTP\/1\.1 200 OK/);
    assert.match(page, /Hello from examples\/http/);
  });

  test('connectService() refuses another workload before sending anything', async () => {
    await assert.rejects(
      connectService({
        host: '127.0.0.1',
        port: http.ports[0]!.port,
        policy,
        workloadDigests: ['ab'.repeat(32)],
      }),
      (e: unknown) => (e as { code?: string }).code === 'ERR_SERVICE_WORKLOAD_MISMATCH',
    );
    await assert.rejects(
      connectService({
        host: '127.0.0.1',
        port: http.ports[0]!.port,
        policy: { measurements: policy.measurements! },
      }),
      (e: unknown) => (e as { code?: string }).code === 'ERR_SIMULATED_ROOT_NOT_TRUSTED',
    );
  });

  test('the echo example on a tcp listen file echoes through the host port', async () => {
    const echo = await deployWorkload({
      host,
      backend: 'sim',
      wasm: new Uint8Array(readFileSync(example('echo'))),
      args: ['echo.wasm'],
      env: {},
      files: echoConfig.files,
      policy,
    });
    const reply = await new Promise<string>((resolve, reject) => {
      const s = connect(echo.ports[0]!.port, '127.0.0.1');
      let text = '';
      s.on('data', (d: Buffer) => {
        text += d.toString('utf8');
      });
      s.on('error', reject);
      s.on('close', () => resolve(text));
      s.end('round trip');
    });
    assert.equal(reply, 'round trip');
    await host.stopKeep(echo.keepId);
  });

  test('the Enarx.toml port is the host port a service gets when it is free, and --publish chooses another', async () => {
    const configured = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'djs-port-'));
    const config = join(dir, 'Enarx.toml');
    writeFileSync(
      config,
      readFileSync(join(repoRoot, 'examples', 'http', 'Enarx.toml'), 'utf8').replace(
        /^port = \d+$/m,
        `port = ${configured}`,
      ),
    );
    const deploy = async (
      extra: string[],
    ): Promise<{ id: string; ports: { name: string; hostPort: number }[] }> => {
      const r = await cli([
        'deploy',
        example('http'),
        '--config',
        config,
        '--host',
        url,
        '--trust-sim-root',
        simRoot,
        '--json',
        ...extra,
      ]);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout);
    };
    const same = await deploy([]);
    assert.deepEqual(same.ports, [{ name: 'https', hostPort: configured }]);
    assert.ok((await servedCount(configured)) >= 1);
    const published = await freePort();
    const chosen = await deploy(['--publish', `https=${published}`]);
    assert.deepEqual(chosen.ports, [{ name: 'https', hostPort: published }]);
    const bad = await cli([
      'deploy',
      example('http'),
      '--config',
      config,
      '--host',
      url,
      '--publish',
      'www=1',
    ]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(
      bad.stderr,
      /Cannot publish www: the Enarx\.toml has no listen file of that name \(it has https\)/,
    );
    await host.stopKeep(same.id);
    await host.stopKeep(chosen.id);
  });

  test('donjon deploy --json prints the Keep id and the host port of its listener', async () => {
    const r = await cli([
      'deploy',
      example('http'),
      '--config',
      join(repoRoot, 'examples', 'http', 'Enarx.toml'),
      '--host',
      url,
      '--trust-sim-root',
      simRoot,
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { id: string; ports: { name: string; hostPort: number }[] };
    assert.match(out.id, /^[0-9a-f]{16}$/);
    assert.equal(out.ports.length, 1);
    assert.equal(out.ports[0]!.name, 'https');
    const keep = await host.getKeep(out.id);
    assert.equal(keep.state, 'running');
    assert.ok((await servedCount(out.ports[0]!.hostPort)) >= 1);
    await host.stopKeep(out.id);
  });

  test('donjon deploy without a Keep Manager to outlive it is a usage error', async () => {
    const r = await cli(['deploy', example('http')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--host/);
  });

  test('donjon proxy exposes the verified service on a plain local port; another --workload is refused', async () => {
    const hostPort = http.ports[0]!.port;
    const good = await startProxy([
      '--to',
      `127.0.0.1:${hostPort}`,
      '--listen',
      '127.0.0.1:0',
      '--trust-sim-root',
      simRoot,
      '--workload',
      example('http'),
    ]);
    const bad = await startProxy([
      '--to',
      `127.0.0.1:${hostPort}`,
      '--listen',
      '127.0.0.1:0',
      '--trust-sim-root',
      simRoot,
      '--workload',
      example('echo'),
    ]);
    try {
      const before = await servedCount(hostPort);
      const page = await httpGet(good.port);
      assert.ok('status' in page && page.status === 200, JSON.stringify(page));
      assert.match(page.body, /Hello from examples\/http/);
      assert.match(good.stderr(), /verified 127\.0\.0\.1:\d+: workload [0-9a-f]{64}/);
      const refused = await httpGet(bad.port);
      assert.ok('error' in refused, JSON.stringify(refused));
      await until(() => /ERR_SERVICE_WORKLOAD_MISMATCH/.test(bad.stderr()), 'the refusal on stderr');
      assert.match(bad.stderr(), /refused a connection to .*: Cannot trust the service: it runs workload/);
      assert.equal(await servedCount(hostPort), before + 2, 'the refused request never reached the workload');
    } finally {
      good.stop();
      bad.stop();
    }
  });

  test('a deployed service keeps its output for the deployer, who attaches with its secret', async () => {
    const chunks: Buffer[] = [];
    const stderr = new PassThrough();
    stderr.on('data', (c: Buffer) => chunks.push(c));
    const controller = new AbortController();
    const attached = attachWorkload({
      host,
      keepId: http.keepId,
      secret: http.secret,
      stdin: null,
      stdout: new PassThrough(),
      stderr,
      policy,
      signal: controller.signal,
    });
    await until(
      () => /http: serving on descriptor 3 \(https\)/.test(Buffer.concat(chunks).toString()),
      'the output kept while nobody was attached',
    );
    controller.abort();
    // An abort detaches (it was a rejection saying the Keep was being stopped, which it was not).
    assert.equal((await attached).outcome, undefined);
    assert.equal((await host.getKeep(http.keepId)).state, 'running', 'detaching leaves the service running');
    assert.ok((await servedCount(http.ports[0]!.port)) > 0);
  });

  test('donjon attest inspect prints what the service proves, and fails without the simulated root', async () => {
    const target = `127.0.0.1:${http.ports[0]!.port}`;
    const ok = await cli(['attest', 'inspect', target, '--trust-sim-root', simRoot]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`workload sha256\\s+${httpDigest}`));
    assert.match(ok.stdout, new RegExp(`config sha256\\s+${http.configDigest}`));
    assert.match(ok.stdout, /verified\s+yes/);
    assert.match(ok.stderr, /SIMULATED/);
    const json = await cli(['attest', 'inspect', target, '--json']);
    assert.equal(json.code, 3);
    const report = JSON.parse(json.stdout) as {
      verified: boolean;
      workloadDigest: string;
      error: { code: string };
    };
    assert.equal(report.verified, false);
    assert.equal(report.workloadDigest, httpDigest);
    assert.equal(report.error.code, 'ERR_SIMULATED_ROOT_NOT_TRUSTED');
  });
});

describe('hostile hosts between a relying party and a service', () => {
  let a: DeployResult;
  let b: DeployResult;

  before(async () => {
    // Two tenants run the same module with different configurations.
    [a, b] = await Promise.all([deployHttp({ TENANT: 'a' }), deployHttp({ TENANT: 'b' })]);
  });

  const pinnedTo = (d: DeployResult) => ({
    policy,
    workloadDigests: [d.workloadDigest],
    configDigests: [d.configDigest],
  });

  test('a relay that flips a byte of the handshake: the client and the proxy refuse, and send no request', async () => {
    const r = await relay(
      () => a.ports[0]!.port,
      (chunk, offset) => {
        const out = Buffer.from(chunk);
        const at = 300 - offset;
        if (at >= 0 && at < out.length) out[at]! ^= 0x01;
        return out;
      },
    );
    const proxy = await startProxy([
      '--to',
      `127.0.0.1:${r.port}`,
      '--listen',
      '127.0.0.1:0',
      '--trust-sim-root',
      simRoot,
      '--workload-digest',
      a.workloadDigest,
    ]);
    try {
      const before = await servedCount(a.ports[0]!.port);
      await assert.rejects(connectService({ host: '127.0.0.1', port: r.port, ...pinnedTo(a) }));
      assert.ok(r.fromClient() < 2048, `${r.fromClient()} bytes left the client: only its handshake`);
      const page = await httpGet(proxy.port);
      assert.ok('error' in page, JSON.stringify(page));
      await until(() => /refused a connection/.test(proxy.stderr()), 'the proxy’s refusal');
      assert.ok(r.fromClient() < 4096, `${r.fromClient()} bytes left the client and the proxy`);
      assert.equal(
        await servedCount(a.ports[0]!.port),
        before + 1,
        'no tampered request reached the workload',
      );
    } finally {
      proxy.stop();
      r.close();
    }
  });

  test('a host that swaps two tenants’ Keeps: the client and the proxy refuse the other configuration', async () => {
    // The host routes tenant A's connections to tenant B's Keep.
    const r = await relay(() => b.ports[0]!.port);
    const proxy = await startProxy([
      '--to',
      `127.0.0.1:${r.port}`,
      '--listen',
      '127.0.0.1:0',
      '--trust-sim-root',
      simRoot,
      '--workload-digest',
      a.workloadDigest,
      '--config-digest',
      a.configDigest,
    ]);
    try {
      const before = await servedCount(b.ports[0]!.port);
      await assert.rejects(
        connectService({ host: '127.0.0.1', port: r.port, ...pinnedTo(a) }),
        (e: unknown) => (e as { code?: string }).code === 'ERR_SERVICE_CONFIG_MISMATCH',
      );
      const page = await httpGet(proxy.port);
      assert.ok('error' in page, JSON.stringify(page));
      await until(() => /ERR_SERVICE_CONFIG_MISMATCH/.test(proxy.stderr()), 'the proxy’s refusal');
      assert.equal(await servedCount(b.ports[0]!.port), before + 1, 'B served no request of A’s');
    } finally {
      proxy.stop();
      r.close();
    }
  });

  test('a host that replays a Keep’s evidence under its own key: refused, and nothing reaches it', async () => {
    // Take A's certificate as any client sees it, and serve its evidence with a key the host holds.
    const der = await new Promise<Uint8Array>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: a.ports[0]!.port, rejectUnauthorized: false });
      s.once('secureConnect', () => {
        resolve(new Uint8Array(s.getPeerCertificate(false).raw));
        s.destroy();
      });
      s.once('error', reject);
    });
    const stolen = readKeepCertificate(der).cmw!;
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const forged = makeServiceCertificate({
      privateKey,
      now: new Date(),
      workload: Buffer.from(a.workloadDigest, 'hex'),
      config: Buffer.from(a.configDigest, 'hex'),
      evidence: stolen.evidence,
    });
    assert.notDeepEqual(spkiOf(privateKey), stolen.binding.spki);
    let received = 0;
    const pem = (d: Uint8Array): string =>
      `-----BEGIN CERTIFICATE-----\n${Buffer.from(d).toString('base64')}\n-----END CERTIFICATE-----\n`;
    const impostor = createTlsServer(
      { key: privateKey.export({ type: 'pkcs8', format: 'pem' }), cert: pem(forged) },
      (s) => {
        s.on('data', (d: Buffer) => {
          received += d.length;
        });
        s.on('error', () => {});
      },
    );
    await new Promise<void>((r) => impostor.listen(0, '127.0.0.1', () => r()));
    const port = (impostor.address() as { port: number }).port;
    const proxy = await startProxy([
      '--to',
      `127.0.0.1:${port}`,
      '--listen',
      '127.0.0.1:0',
      '--trust-sim-root',
      simRoot,
      '--workload-digest',
      a.workloadDigest,
    ]);
    try {
      await assert.rejects(
        connectService({ host: '127.0.0.1', port, ...pinnedTo(a) }),
        (e: unknown) => (e as { code?: string }).code === 'ERR_REPORT_DATA_MISMATCH',
      );
      const page = await httpGet(proxy.port);
      assert.ok('error' in page, JSON.stringify(page));
      await until(() => /ERR_REPORT_DATA_MISMATCH/.test(proxy.stderr()), 'the proxy’s refusal');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(received, 0, 'the impostor received no application data');
    } finally {
      proxy.stop();
      impostor.close();
    }
  });
});
