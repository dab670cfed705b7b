import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsageError } from '../../src/cli/errors.ts';
import { platformCommand, platformHelp } from '../../src/cli/platform.ts';
import { DEFAULT_PLATFORM_PATHS, type PlatformProbeOptions } from '../../src/host/platform.ts';
import { FakeTsm } from '../host/backends/tsm/fake-tsm.ts';

/** An SEV-SNP guest with configfs-tsm, seen as root. */
const SNP_GUEST: PlatformProbeOptions = {
  exists: async (p) => p === DEFAULT_PLATFORM_PATHS.tsmReport || p === DEFAULT_PLATFORM_PATHS.sevGuest,
  fs: new FakeTsm({ provider: 'sev_guest' }),
  uid: 0,
};
const PLAIN_HOST: PlatformProbeOptions = { exists: async () => false, uid: 1000 };

async function run(argv: string[], probe: PlatformProbeOptions): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await platformCommand(argv, { probe, write: (t) => (out += t) });
  return { code, out };
}

describe('platformCommand()', () => {
  test('platformCommand() prints the backends as JSON with --json', async () => {
    const { code, out } = await run(['info', '--json'], SNP_GUEST);
    assert.equal(code, 0);
    assert.ok(out.endsWith('\n'));
    const info = JSON.parse(out) as {
      backends: { name: string; available: boolean; reason?: string; provider?: string }[];
    };
    assert.deepEqual(info.backends.slice(0, 3), [
      { name: 'sim', available: true },
      { name: 'nil', available: true },
      { name: 'cvm', available: true, provider: 'sev_guest' },
    ]);
    const snp = info.backends.find((b) => b.name === 'snp');
    assert.equal(snp?.available, false);
    assert.match(snp?.reason ?? '', /itself an SEV-SNP guest/);
  });

  test('platformCommand() prints one line per backend with the reason it is unavailable', async () => {
    const { code, out } = await run(['info'], PLAIN_HOST);
    assert.equal(code, 0);
    const lines = out.trimEnd().split('\n');
    assert.equal(lines.length, 6);
    assert.equal(lines[0], 'sim      available');
    assert.equal(lines[1], 'nil      available');
    assert.match(
      lines[2]!,
      /^cvm {6}unavailable: no configfs-tsm: \/sys\/kernel\/config\/tsm\/report is missing/,
    );
    assert.equal(lines[3], 'sgx-sim  available');
    assert.match(lines[4]!, /^snp {6}unavailable: no KVM with SEV/);
    assert.match(lines[5]!, /^sgx {6}unavailable: no SGX/);
    assert.match((await run(['info'], SNP_GUEST)).out, /^cvm {6}available \(sev_guest\)$/m);
  });

  test('platformCommand() refuses a missing or unknown subcommand and extra arguments', async () => {
    await assert.rejects(
      run([], PLAIN_HOST),
      (e: unknown) => e instanceof UsageError && /name a subcommand/.test(e.message),
    );
    await assert.rejects(
      run(['list'], PLAIN_HOST),
      (e: unknown) => e instanceof UsageError && /platform list/.test(e.message),
    );
    await assert.rejects(run(['info', 'x'], PLAIN_HOST), UsageError);
    await assert.rejects(run(['info', '--yaml'], PLAIN_HOST), {
      code: 'ERR_USAGE',
      message: 'Cannot read the command line: unknown option --yaml (see donjon help platform)',
    });
  });

  test('platformHelp names the subcommand and its option', () => {
    assert.match(platformHelp, /^Usage: donjon platform info \[--json\]/);
    assert.match(platformHelp, /configfs-tsm/);
  });
});
