// Hand-written messages: at least one per type (the mapped type makes a missing type a compile error),
// with optional fields both present and absent, and boundary values.
import type { MessageOf, MessageType } from '../../../src/protocol/messages.ts';

const bytes = (n: number, fill = 0xab): Uint8Array => new Uint8Array(n).fill(fill);

export const samples: { readonly [T in MessageType]: readonly MessageOf<T>[] } = {
  'create-keep': [
    { v: 1, type: 'create-keep', backend: 'sim' },
    {
      v: 1,
      type: 'create-keep',
      backend: 'cvm',
      limits: { memoryBytes: 64 * 1024 * 1024, wallTimeMs: 30_000, outputBytes: 1 << 20 },
    },
    { v: 1, type: 'create-keep', backend: 'nil', limits: {} },
  ],
  keep: [
    { v: 1, type: 'keep', id: 'k-1', backend: 'sim', state: 'creating', createdAt: 1_700_000_000_000 },
    {
      v: 1,
      type: 'keep',
      id: 'k-2',
      backend: 'cvm',
      state: 'failed',
      createdAt: Number.MAX_SAFE_INTEGER,
      exitCode: -1,
      error: 'Cannot start the Keep: the backend is gone',
      keepldrPid: 4242,
      keepPid: 4243,
    },
    {
      v: 1,
      type: 'keep',
      id: 'k-3',
      backend: 'sim',
      state: 'running',
      createdAt: 1,
      ports: [
        { name: 'https', port: 40443 },
        { name: 'echo', port: 65535 },
      ],
    },
  ],
  'keep-events': [
    { v: 1, type: 'keep-events', id: 'k-1', events: [] },
    {
      v: 1,
      type: 'keep-events',
      id: 'k-2',
      events: [
        { at: 1, state: 'creating' },
        { at: 2, state: 'failed', message: 'the Keep was killed by SIGKILL' },
      ],
    },
  ],
  'channel-hello': [{ v: 1, type: 'channel-hello', nonce: bytes(32, 7) }],
  attach: [{ v: 1, type: 'attach', secret: bytes(32, 9) }],
  notice: [
    { v: 1, type: 'notice', message: '1024 bytes of output were dropped while no client was attached' },
  ],
  'keep-list': [
    { v: 1, type: 'keep-list', keeps: [] },
    {
      v: 1,
      type: 'keep-list',
      keeps: [
        { v: 1, type: 'keep', id: 'a', backend: 'nil', state: 'running', createdAt: 0 },
        { v: 1, type: 'keep', id: 'b', backend: 'sim', state: 'exited', createdAt: 1, exitCode: 0 },
      ],
    },
  ],
  error: [{ v: 1, type: 'error', code: 'ERR_KEEP_NOT_FOUND', message: 'Cannot find the Keep: no such id' }],
  deploy: [
    {
      v: 1,
      type: 'deploy',
      wasm: Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00),
      digest: bytes(32, 0x11),
      args: ['main.wasm', '--verbose', ''],
      env: { HOME: '/', LANG: 'C.UTF-8', '': 'empty key', ü水𐅑: 'x' },
      stdin: true,
      owner: bytes(32, 0x22),
      tier: 'optimizing',
      limits: { memoryBytes: 0, wallTimeMs: 1, outputBytes: 2 ** 32 },
      files: [
        { kind: 'stdin' },
        { kind: 'stdout', name: 'out' },
        { kind: 'null' },
        { kind: 'listen', name: 'https', prot: 'tls', port: 443, addr: '::' },
        { kind: 'connect', name: 'db', prot: 'tcp', port: 5432, host: 'db.example' },
      ],
      dirs: [
        {
          guest: '/data',
          entries: [
            { path: 'sub' },
            { path: 'sub/a.txt', data: Uint8Array.of(104, 105) },
            { path: 'empty', data: new Uint8Array(0) },
          ],
        },
        { guest: 'other', entries: [] },
      ],
      detach: true,
    },
    {
      v: 1,
      type: 'deploy',
      wasm: new Uint8Array(0),
      digest: bytes(32),
      args: [],
      env: {},
      stdin: false,
      owner: bytes(32),
    },
    {
      v: 1,
      type: 'deploy',
      wasm: new Uint8Array(1),
      digest: bytes(32),
      args: ['x'],
      env: {},
      stdin: false,
      owner: bytes(32),
      detach: false,
    },
  ],
  stdin: [
    { v: 1, type: 'stdin', data: Uint8Array.of(1, 2, 3) },
    { v: 1, type: 'stdin', data: new Uint8Array(0) },
  ],
  'stdin-end': [{ v: 1, type: 'stdin-end' }],
  started: [
    { v: 1, type: 'started' },
    { v: 1, type: 'started', ports: [] },
    { v: 1, type: 'started', ports: [{ name: 'https', port: 8443 }] },
  ],
  stdout: [{ v: 1, type: 'stdout', data: bytes(300) }],
  stderr: [{ v: 1, type: 'stderr', data: bytes(70_000) }],
  exit: [
    { v: 1, type: 'exit', code: 0 },
    { v: 1, type: 'exit', code: 255 },
  ],
  trap: [{ v: 1, type: 'trap', message: 'unreachable executed' }],
  limit: [
    { v: 1, type: 'limit', limit: 'memory', message: 'Cannot grow memory: the limit is 64 MiB' },
    { v: 1, type: 'limit', limit: 'fds', message: 'Cannot open a descriptor: the limit is 64' },
  ],
  'evidence-request': [{ v: 1, type: 'evidence-request', reportData: bytes(64) }],
  'collateral-request': [{ v: 1, type: 'collateral-request', quote: bytes(4600) }],
  evidence: [
    {
      v: 1,
      type: 'evidence',
      kind: 'sev-snp',
      report: bytes(1184),
      certs: [bytes(1300), bytes(1600), bytes(1500)],
    },
    { v: 1, type: 'evidence', kind: 'none', report: new Uint8Array(0), certs: [] },
    { v: 1, type: 'evidence', kind: 'tdx', report: bytes(5000), certs: [], collateral: bytes(9000) },
    { v: 1, type: 'evidence', kind: 'sgx', report: bytes(4600), certs: [], collateral: bytes(9000) },
  ],
  'keep-event': [
    { v: 1, type: 'keep-event', event: 'ready' },
    { v: 1, type: 'keep-event', event: 'failed', code: -9_007_199_254_740_991, message: 'bad module' },
  ],
  'ldr-channel': [{ v: 1, type: 'ldr-channel' }],
  'ldr-watch': [{ v: 1, type: 'ldr-watch' }],
  'ldr-stop': [{ v: 1, type: 'ldr-stop' }],
  'ldr-event': [
    { v: 1, type: 'ldr-event', state: 'running', keepPid: 4242 },
    { v: 1, type: 'ldr-event', state: 'exited', exitCode: 3, error: 'exited with 3' },
    { v: 1, type: 'ldr-event', state: 'running', ports: [{ name: 'echo', port: 1 }] },
  ],
};
