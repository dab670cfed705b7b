import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isSnpMeasureError } from '../../src/attestation/snp/measure/errors.ts';
import { UsageError } from '../../src/cli/errors.ts';
import { measureSnpCommand, measureSnpHelp } from '../../src/cli/measure-snp.ts';
import { fakeOvmf } from '../attestation/snp/measure/firmware.ts';

const dir = mkdtempSync(join(tmpdir(), 'donjon-measure-snp-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const OVMF = join(dir, 'OVMF.fd');
const OVMF_NO_HASHES = join(dir, 'OVMF-plain.fd');
const KERNEL = join(dir, 'vmlinuz');
const INITRD = join(dir, 'initrd.img');
writeFileSync(OVMF, fakeOvmf());
writeFileSync(
  OVMF_NO_HASHES,
  fakeOvmf({ hashTable: null, sections: [{ gpa: 0x800000, size: 0x1000, type: 1 }] }),
);
writeFileSync(KERNEL, 'donjon test kernel\n');
writeFileSync(INITRD, 'donjon test initrd\n');
mkdirSync(join(dir, 'folder'));

async function run(argv: string[]): Promise<string> {
  let out = '';
  assert.equal(await measureSnpCommand(argv, { write: (t) => (out += t) }), 0);
  return out;
}

async function usage(argv: string[], pattern: RegExp): Promise<void> {
  await assert.rejects(run(argv), (e: unknown) => e instanceof UsageError && pattern.test(e.message));
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const BASE = ['--ovmf', OVMF, '--vcpus', '1', '--vcpu-type', 'EPYC-v4', '--guest-features', '0x1'];

describe('measureSnpCommand()', () => {
  // Known answers: the same synthetic image and inputs through virtee/sev-snp-measure.
  test('measureSnpCommand() prints the launch digest as 96 hex digits', async () => {
    assert.equal(
      await run(BASE),
      'be067737d7cb282906bd6d07c96fbba73fff111dcf8681ebe7f3fa6ed269388f083f718c07d01d89942ccdcd8c88274e\n',
    );
  });

  test('measureSnpCommand() measures direct boot with kernel, initrd and command line', async () => {
    const argv = [
      '--ovmf',
      OVMF,
      '--vcpus',
      '4',
      '--vcpu-type',
      'EPYC-Milan',
      '--guest-features',
      '21',
      '--kernel',
      KERNEL,
      '--initrd',
      INITRD,
      '--append',
      'console=ttyS0 root=/dev/vda',
    ];
    assert.equal(
      await run(argv),
      'e17158ca23d63f1248fdec77ebab1de1fd14b59d4d2506ae9d3f70a319c63258c9d8eb88da798e5c5a726f4b97770634\n',
    );
  });

  test('measureSnpCommand() measures EC2 and GCE launches, where the vCPU type is optional', async () => {
    const out = await run([
      '--ovmf',
      OVMF,
      '--vcpus',
      '2',
      '--vcpu-type',
      'EPYC-Turin',
      '--guest-features',
      '0x1',
      '--vmm-type',
      'ec2',
    ]);
    assert.equal(
      out,
      '8aef124f4c0da6225a59afa088c8b6dfec8e4b4b487989a869b360e72b7962f0d5ed1f73e5656e691a9384a0e8c0f888\n',
    );
    assert.equal(
      await run(['--ovmf', OVMF, '--vcpus', '2', '--guest-features', '0x1', '--vmm-type', 'ec2']),
      out,
      'EC2 ignores the vCPU type',
    );
    assert.match(
      await run(['--ovmf', OVMF, '--vcpus', '3', '--guest-features', '0x1', '--vmm-type', 'gce']),
      /^[0-9a-f]{96}\n$/,
    );
  });

  test('measureSnpCommand() --json prints the digest with the inputs and their SHA-256 digests', async () => {
    const out = JSON.parse(await run([...BASE, '--kernel', KERNEL, '--append', 'quiet', '--json'])) as Record<
      string,
      unknown
    > & { inputs: Record<string, Record<string, unknown>> };
    assert.match(out['measurement'] as string, /^[0-9a-f]{96}$/);
    assert.equal(out['vmmType'], 'qemu');
    assert.equal(out['vcpus'], 1);
    assert.equal(out['vcpuType'], 'EPYC-v4');
    assert.equal(out['vcpuSig'], '0x800f12');
    assert.equal(out['guestFeatures'], '0x1');
    assert.deepEqual(out.inputs['ovmf'], {
      path: OVMF,
      sha256: createHash('sha256').update(fakeOvmf()).digest('hex'),
      size: 0x4000,
    });
    assert.deepEqual(out.inputs['kernel'], {
      path: KERNEL,
      sha256: sha256('donjon test kernel\n'),
      size: 19,
    });
    assert.deepEqual(out.inputs['append'], { value: 'quiet', sha256: sha256('quiet\0') });
    assert.equal(out.inputs['initrd'], undefined);
    assert.equal(out['measurement'], (await run([...BASE, '--kernel', KERNEL, '--append', 'quiet'])).trim());
  });

  test('measureSnpCommand() accepts /dev/null as an empty kernel and initrd', async () => {
    const a = await run([...BASE, '--kernel', '/dev/null', '--initrd', '/dev/null', '--append', '']);
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    assert.equal(a, await run([...BASE, '--kernel', empty]));
  });

  test('measureSnpCommand() refuses missing, malformed and inconsistent options', async () => {
    await usage(['--vcpus', '1', '--vcpu-type', 'EPYC-v4', '--guest-features', '1'], /--ovmf is required/);
    await usage(['--ovmf', OVMF, '--vcpu-type', 'EPYC-v4', '--guest-features', '1'], /--vcpus is required/);
    await usage(['--ovmf', OVMF, '--vcpus', '1', '--vcpu-type', 'EPYC-v4'], /--guest-features is required/);
    await usage(
      ['--ovmf', OVMF, '--vcpus', '1', '--guest-features', '1'],
      /--vcpu-type is required for a qemu launch/,
    );
    for (const vcpus of ['0', '-1', '1.5', '01', '4097', 'two']) {
      await usage(
        ['--ovmf', OVMF, `--vcpus=${vcpus}`, '--vcpu-type', 'EPYC-v4', '--guest-features', '1'],
        /--vcpus/,
      );
    }
    for (const features of ['', '0x', 'zz', '0x10000000000000000', '-1']) {
      await usage([...BASE.slice(0, 6), `--guest-features=${features}`], /--guest-features/);
    }
    await usage([...BASE, '--vcpu-type', 'Skylake'], /--vcpu-type Skylake: expected one of EPYC/);
    await usage([...BASE, '--vmm-type', 'xen'], /--vmm-type xen/);
    await usage([...BASE, '--initrd', INITRD], /--initrd needs --kernel/);
    await usage([...BASE, '--append', 'quiet'], /--append needs --kernel/);
    await usage(
      [...BASE.slice(2), '--ovmf', join(dir, 'missing.fd')],
      /Cannot read --ovmf .*missing\.fd: no such file/,
    );
    await usage([...BASE, '--kernel', join(dir, 'folder')], /it is a directory/);
    await usage(
      [...BASE, '--bogus'],
      /^Cannot read the command line: unknown option --bogus \(see donjon help measure\)$/,
    );
  });

  test('measureSnpCommand() fails with the firmware error for an image it cannot measure', async () => {
    await assert.rejects(
      run([...BASE, '--kernel', KERNEL].map((a) => (a === OVMF ? OVMF_NO_HASHES : a))),
      (e: unknown) => isSnpMeasureError(e, 'ERR_OVMF_UNSUPPORTED'),
    );
    await assert.rejects(run(BASE.map((a) => (a === OVMF ? KERNEL : a))), (e: unknown) =>
      isSnpMeasureError(e, 'ERR_OVMF_MALFORMED'),
    );
  });

  test('measureSnpHelp shows the full synopsis', () => {
    for (const option of [
      '--ovmf',
      '--vcpus',
      '--vcpu-type',
      '--guest-features',
      '--kernel',
      '--initrd',
      '--append',
      '--vmm-type',
      '--json',
    ]) {
      assert.ok(measureSnpHelp.includes(option), option);
    }
    assert.match(measureSnpHelp, /^Usage: donjon measure snp/);
  });
});
