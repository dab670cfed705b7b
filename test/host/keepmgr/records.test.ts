import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KeepRecords } from '../../../src/host/keepmgr/records.ts';
import { type KeepRecord, MemoryStore } from '../../../src/host/keepmgr/store.ts';

function setup(state: KeepRecord['state'] = 'creating') {
  const logged: Record<string, unknown>[] = [];
  const records = new KeepRecords(new MemoryStore(), (e) => logged.push(e));
  records.insert({
    id: 'k1',
    owner: 'local',
    backend: 'nil',
    state,
    createdAt: 1,
    updatedAt: 1,
    socketPath: '/nowhere.sock',
    limits: {},
  });
  return { records, logged };
}

describe('KeepRecords', () => {
  test('setState() follows the lifecycle and records each change as an event', () => {
    const { records } = setup();
    assert.equal(records.setState('k1', 'ready'), true);
    assert.equal(records.setState('k1', 'running', { keepPid: 42 }), true);
    assert.equal(records.get('k1')?.keepPid, 42);
    assert.deepEqual(
      records.store.events('k1').map((e) => e.state),
      ['creating', 'ready', 'running'],
    );
  });

  test('setState() accepts a reachable state an observer missed the steps to (creating → running)', () => {
    const { records, logged } = setup();
    assert.equal(records.setState('k1', 'running'), true);
    assert.equal(records.get('k1')?.state, 'running');
    assert.ok(!logged.some((e) => e['event'] === 'transition-refused'));
  });

  test('setState() refuses and logs a step back: a failed Keep reported running stays failed', () => {
    const { records, logged } = setup();
    records.setState('k1', 'failed', { error: 'the Keep Loader ended unexpectedly' });
    assert.equal(records.setState('k1', 'running', { keepPid: 7 }), false);
    const r = records.get('k1');
    assert.equal(r?.state, 'failed');
    assert.equal(r?.keepPid, undefined, 'a refused report changes nothing');
    assert.deepEqual(
      logged.filter((e) => e['event'] === 'transition-refused'),
      [{ event: 'transition-refused', id: 'k1', from: 'failed', to: 'running' }],
    );
    // Nor from one end to another.
    assert.equal(records.setState('k1', 'exited'), false);
    assert.equal(records.setState('k1', 'ready'), false);
    assert.equal(records.get('k1')?.state, 'failed');
  });

  test('fail() ends a Keep not yet ended with its reason, and leaves an ended one as it is', () => {
    const { records } = setup('running');
    records.fail('k1', 'disk full');
    assert.equal(records.get('k1')?.state, 'failed');
    assert.equal(records.get('k1')?.error, 'disk full');
    records.fail('k1', 'another reason');
    assert.equal(records.get('k1')?.error, 'disk full');
  });

  test('waitFor() resolves on the change it waits for', async () => {
    const { records } = setup();
    const waiting = records.waitFor('k1', (r) => r.state === 'ready', 10_000);
    records.setState('k1', 'ready');
    assert.equal((await waiting)?.state, 'ready');
  });
});
