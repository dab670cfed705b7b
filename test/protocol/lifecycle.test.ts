import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  canReach,
  canTransition,
  isTerminalState,
  KEEP_STATES,
  KEEP_TRANSITIONS,
  KeepLifecycle,
  type RefusedTransition,
} from '../../src/protocol/lifecycle.ts';
import { messageSchemas } from '../../src/protocol/messages.ts';

test('KEEP_TRANSITIONS names exactly the states of the protocol', () => {
  const wire = messageSchemas.keep.fields.state;
  assert.deepEqual([...KEEP_STATES].sort(), [...wire.values].sort());
  for (const to of Object.values(KEEP_TRANSITIONS).flat()) assert.ok(KEEP_STATES.includes(to));
});

test('the lifecycle goes creating → ready → running → exited, and any live state may fail or stop', () => {
  assert.ok(canTransition('creating', 'ready'));
  assert.ok(canTransition('ready', 'running'));
  assert.ok(canTransition('running', 'exited'));
  for (const s of ['creating', 'ready', 'running'] as const) {
    assert.ok(canTransition(s, 'failed'));
    assert.ok(canTransition(s, 'stopped'));
    assert.equal(isTerminalState(s), false);
  }
  for (const s of ['exited', 'failed', 'stopped'] as const) {
    assert.equal(isTerminalState(s), true);
    for (const to of KEEP_STATES) assert.equal(canTransition(s, to), false, `${s} → ${to}`);
  }
});

test('canTransition() refuses skipped and backward steps; canReach() accepts skipped ones', () => {
  assert.equal(canTransition('creating', 'running'), false);
  assert.equal(canTransition('running', 'ready'), false);
  assert.equal(canTransition('ready', 'exited'), false);
  assert.equal(canTransition('ready', 'ready'), false);
  assert.ok(canReach('creating', 'running'));
  assert.ok(canReach('creating', 'exited'));
  assert.equal(canReach('running', 'ready'), false);
  assert.equal(canReach('exited', 'running'), false);
});

test('KeepLifecycle moves along the table and reports a refused step without moving', () => {
  const refused: RefusedTransition[] = [];
  const life = new KeepLifecycle('creating', { onRefused: (r) => refused.push(r) });
  assert.equal(life.to('ready'), true);
  assert.equal(life.to('ready'), false, 'staying is not a step');
  assert.equal(life.to('exited'), false);
  assert.deepEqual(refused, [{ from: 'ready', to: 'exited' }]);
  assert.equal(life.state, 'ready');
  assert.equal(life.to('running'), true);
  assert.equal(life.to('exited'), true);
  assert.equal(life.terminal, true);
  assert.equal(life.to('failed'), false);
  assert.equal(life.state, 'exited');
  assert.equal(refused.length, 2);
});

test('an observer KeepLifecycle accepts a state it can reach, never one behind it', () => {
  const refused: RefusedTransition[] = [];
  const life = new KeepLifecycle('creating', { observer: true, onRefused: (r) => refused.push(r) });
  assert.equal(life.to('running'), true);
  assert.equal(life.to('ready'), false);
  assert.deepEqual(refused, [{ from: 'running', to: 'ready' }]);
});
