// The embedded host of `donjon run`: only the backend's simulated root, and a signal once a Keep's start began.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startEmbeddedHost } from '../../src/cli/embedded.ts';
import { Reporter } from '../../src/cli/report.ts';
import { ClientError } from '../../src/client/errors.ts';
import { loadOrCreateSimRoot, loadOrCreateSimSgxRoot } from '../../src/host/index.ts';
import { testHome } from '../helpers.ts';

process.env['DONJON_HOME'] = testHome;
const reporter = new Reporter({ quiet: true, json: false });

test('the embedded host trusts the root of the backend it serves, and only that one', async () => {
  const sim = await startEmbeddedHost(reporter, 'sim');
  const sgx = await startEmbeddedHost(reporter, 'sgx-sim');
  const nil = await startEmbeddedHost(reporter, 'nil');
  try {
    assert.equal(await sim.rootFingerprint(), (await loadOrCreateSimRoot(testHome)).fingerprint);
    assert.equal(await sgx.rootFingerprint(), (await loadOrCreateSimSgxRoot(testHome)).fingerprint);
    assert.equal(await nil.rootFingerprint(), undefined);
    // Refused as a host over HTTP refuses: the host's code and message, in the client's error.
    await assert.rejects(sim.client.createKeep('sgx-sim'), (e: unknown) => {
      assert.ok(e instanceof ClientError);
      assert.equal(e.code, 'ERR_HOST_REFUSED');
      assert.equal(e.hostCode, 'ERR_API_BACKEND_UNAVAILABLE');
      assert.match(
        e.message,
        /^The host refused: .*no simulated Intel platform.* \(ERR_API_BACKEND_UNAVAILABLE\)$/,
      );
      return true;
    });
    await assert.rejects(sim.client.openChannel('no-such-keep'), (e: unknown) => {
      assert.ok(e instanceof ClientError);
      assert.equal(e.hostCode, 'ERR_KEEP_NOT_FOUND');
      assert.match(e.message, /^The host refused the channel: /);
      return true;
    });
  } finally {
    await Promise.all([sim.close(), sgx.close(), nil.close()]);
  }
});

test('nextLaunch resolves once a Keep asked for has begun to start, before it is ready', async () => {
  const host = await startEmbeddedHost(reporter, 'sim');
  try {
    const launched = host.nextLaunch();
    let ready = false;
    const keep = host.client.createKeep('sim').then((k) => {
      ready = true;
      return k;
    });
    await launched;
    assert.equal(ready, false);
    assert.equal((await keep).state, 'ready');
  } finally {
    await host.close();
  }
});
