import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as protocol from '../../src/protocol/index.ts';

test('the protocol index exports the public API and nothing of the schema internals', () => {
  assert.deepStrictEqual(Object.keys(protocol).sort(), [
    'FRAME_HEADER_BYTES',
    'FrameReader',
    'PROTOCOL_VERSION',
    'ProtocolError',
    'decode',
    'decodeMessage',
    'decodeMessageAs',
    'decodeMessageBytes',
    'defaultLimits',
    'defaultMaxFrameBytes',
    'encode',
    'encodeFrame',
    'encodeMessage',
    'messageTypes',
    'protocolErrorCodes',
  ]);
});

test('the protocol index round-trips a message through a frame', () => {
  const reader = new protocol.FrameReader();
  const [m] = reader.push(protocol.encodeFrame({ v: protocol.PROTOCOL_VERSION, type: 'exit', code: 7 }));
  reader.end();
  assert.deepStrictEqual(m, { v: 1, type: 'exit', code: 7 });
});
