import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BACKEND_REGISTRY } from '../../src/host/backends/index.ts';
import {
  BACKEND_PROBES,
  DEFAULT_PLATFORM_PATHS,
  offeredBackends,
  type PlatformProbeOptions,
  platformInfo,
} from '../../src/host/platform.ts';
import { FakeTsm, type FakeTsmOptions, sysError } from './backends/tsm/fake-tsm.ts';

const P = DEFAULT_PLATFORM_PATHS;

/** A host with these paths present, configfs-tsm behaving as `tsm` says, running as `uid`. */
function host(present: string[], tsm: FakeTsmOptions = {}, uid = 0): PlatformProbeOptions & { fs: FakeTsm } {
  const files = new Set(present);
  return { exists: async (p) => files.has(p), fs: new FakeTsm(tsm), uid };
}

async function status(options: PlatformProbeOptions, name: string) {
  const info = await platformInfo(options);
  const s = info.backends.find((b) => b.name === name);
  assert.ok(s, name);
  return s;
}

describe('platformInfo()', () => {
  test('platformInfo() lists sim, nil, cvm, sgx-sim, snp and sgx, sim, nil and sgx-sim always available', async () => {
    const info = await platformInfo(host([]));
    assert.deepEqual(
      info.backends.map((b) => b.name),
      ['sim', 'nil', 'cvm', 'sgx-sim', 'snp', 'sgx'],
    );
    assert.deepEqual(info.backends.slice(0, 2), [
      { name: 'sim', available: true },
      { name: 'nil', available: true },
    ]);
    assert.deepEqual(info.backends[3], { name: 'sgx-sim', available: true });
    for (const b of info.backends.filter((b) => !['sim', 'nil', 'sgx-sim'].includes(b.name))) {
      assert.equal(b.available, false);
      assert.match(b.reason ?? '', /^[a-z]/);
    }
  });

  test('platformInfo() offers cvm inside an SEV-SNP or TDX guest with configfs-tsm, as root', async () => {
    for (const provider of ['sev_guest', 'tdx_guest']) {
      const h = host([P.tsmReport], { provider });
      assert.deepEqual(await status(h, 'cvm'), { name: 'cvm', available: true, provider });
      assert.equal(h.fs.dirs.size, 0, 'the probe directory is removed');
      assert.equal(h.fs.guestRequests, 0, 'the probe makes no guest request');
      assert.deepEqual(
        h.fs.log.map((o) => o.op),
        ['mkdir', 'read', 'rmdir'],
      );
    }
  });

  test('platformInfo() says why cvm is unavailable', async () => {
    const cases: [PlatformProbeOptions, RegExp][] = [
      [host([]), /no configfs-tsm: \/sys\/kernel\/config\/tsm\/report is missing \(not a confidential VM/],
      [host([P.sevGuest]), /this guest has \/dev\/sev-guest, but configfs-tsm needs Linux 6\.7/],
      [host([P.tdxGuest]), /this guest has \/dev\/tdx_guest/],
      [host([P.tsmReport], {}, 1000), /^not root/],
      [
        host([P.tsmReport], { privileged: false }),
        /^not root: cannot create a report directory .* \(EACCES\)/,
      ],
      [host([P.tsmReport], { provider: null }), /^no provider: configfs-tsm has no TSM provider/],
      [host([P.tsmReport], { provider: 'arm_cca_guest' }), /provider 'arm_cca_guest' is not supported/],
    ];
    for (const [options, reason] of cases) {
      const s = await status(options, 'cvm');
      assert.equal(s.available, false);
      assert.match(s.reason ?? '', reason);
    }
  });

  test('platformInfo() reports an unexpected probe failure and still removes the probe directory', async () => {
    const h = host([P.tsmReport]);
    h.fs.before = (op) => {
      if (op.op === 'read') throw sysError('EIO', 'provider');
    };
    const s = await status(h, 'cvm');
    assert.equal(s.reason, 'cannot probe configfs-tsm: EIO');
    assert.equal(h.fs.dirs.size, 0);
  });

  test('platformInfo() says why snp and sgx are unavailable', async () => {
    const reason = async (present: string[], name: string) => (await status(host(present), name)).reason;
    assert.equal(await reason([], 'snp'), 'no KVM with SEV: /dev/kvm and /dev/sev missing');
    assert.equal(await reason([P.kvm], 'snp'), 'no KVM with SEV: /dev/sev missing');
    assert.match((await reason([P.kvm, P.sev], 'snp')) ?? '', /not part of this version/);
    assert.match(
      (await reason([P.sevGuest, P.kvm, P.sev], 'snp')) ?? '',
      /itself an SEV-SNP guest .* use cvm/,
    );
    assert.equal(await reason([], 'sgx'), 'no SGX: /dev/sgx_enclave is missing');
    assert.match((await reason([P.sgxEnclave], 'sgx')) ?? '', /not part of this version/);
  });

  test('platformInfo() looks at the paths it is given', async () => {
    const paths = { tsmReport: '/fake/tsm/report', kvm: '/fake/kvm', sev: '/fake/sev' };
    const h = host(['/fake/tsm/report', '/fake/kvm'], { root: '/fake/tsm/report' });
    const info = await platformInfo({ ...h, paths });
    assert.equal(info.backends.find((b) => b.name === 'cvm')?.available, true);
    assert.equal(info.backends.find((b) => b.name === 'snp')?.reason, 'no KVM with SEV: /fake/sev missing');
  });

  test('platformInfo() runs on the real machine without throwing', async () => {
    const info = await platformInfo();
    assert.equal(info.backends.length, 6);
  });

  test('platformInfo() reports on every backend of the registry, in its order, and has a probe for those not offered by default', async () => {
    const info = await platformInfo(host([]));
    assert.deepEqual(
      info.backends.slice(0, BACKEND_REGISTRY.length).map((b) => b.name),
      BACKEND_REGISTRY.map((b) => b.name),
    );
    for (const b of BACKEND_REGISTRY) {
      assert.equal(b.offeredByDefault || BACKEND_PROBES[b.name] !== undefined, true, b.name);
    }
  });

  test('offeredBackends() is the registry’s backends the platform found available', async () => {
    assert.deepEqual(offeredBackends(await platformInfo(host([]))), ['sim', 'nil', 'sgx-sim']);
    assert.deepEqual(offeredBackends(await platformInfo(host([P.tsmReport], { provider: 'tdx_guest' }))), [
      'sim',
      'nil',
      'cvm',
      'sgx-sim',
    ]);
    // snp and sgx are reported on, never offered, even were they available.
    assert.deepEqual(
      offeredBackends({
        backends: [
          { name: 'sgx', available: true },
          { name: 'cvm', available: true },
        ],
      }),
      ['cvm'],
    );
  });
});
