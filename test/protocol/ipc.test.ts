import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProtocolError } from '../../src/protocol/errors.ts';
import {
  connectRequestSchema,
  decodeIpc,
  decodeIpcJson,
  handOffAcceptSchema,
  keepConfigSchema,
  listenRequestSchema,
} from '../../src/protocol/ipc.ts';

function refuses(f: () => unknown, pattern: RegExp): void {
  assert.throws(
    f,
    (e: unknown) => e instanceof ProtocolError && e.code === 'ERR_MESSAGE_INVALID' && pattern.test(e.message),
  );
}

test('decodeIpcJson() reads a Keep configuration and copies only what it declares', () => {
  const c = decodeIpcJson(
    keepConfigSchema,
    '{"limits":{"memoryBytes":1048576},"maxWasmBytes":10}',
    'Keep config',
  );
  assert.deepEqual(c, { limits: { memoryBytes: 1048576 }, maxWasmBytes: 10 });
});

test('decodeIpcJson() refuses what is not JSON, unknown keys and wrong types, naming the path', () => {
  refuses(() => decodeIpcJson(keepConfigSchema, '{', 'Keep config'), /not JSON/);
  refuses(
    () => decodeIpcJson(keepConfigSchema, '{"limits":{},"extra":1}', 'Keep config'),
    /unknown key "extra"/,
  );
  refuses(
    () => decodeIpcJson(keepConfigSchema, '{"limits":{"memoryBytes":-1}}', 'Keep config'),
    /limits\.memoryBytes/,
  );
  refuses(() => decodeIpcJson(keepConfigSchema, '{}', 'Keep config'), /limits is missing/);
  refuses(
    () => decodeIpcJson(keepConfigSchema, '{"limits":{},"__proto__":{"x":1}}', 'Keep config'),
    /unknown key/,
  );
});

test('decodeIpc() checks mux requests and hand-off messages', () => {
  assert.deepEqual(decodeIpc(listenRequestSchema, { name: 'web', port: 0, addr: '::' }, 'LISTEN request'), {
    name: 'web',
    port: 0,
    addr: '::',
  });
  refuses(
    () => decodeIpc(listenRequestSchema, { name: 'web', port: '80', addr: '::' }, 'LISTEN request'),
    /port/,
  );
  refuses(() => decodeIpc(connectRequestSchema, { host: 'a', port: 1.5 }, 'CONNECT request'), /port/);
  refuses(
    () => decodeIpc(handOffAcceptSchema, { t: 'closed', listener: 1, id: 2 }, 'hand-off'),
    /t must be one of/,
  );
  refuses(() => decodeIpc(handOffAcceptSchema, null, 'hand-off'), /not a map/);
});
