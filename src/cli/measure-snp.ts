import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import {
  directBootHashes,
  type SnpLaunchInput,
  snpLaunchDigest,
  VCPU_SIGNATURES,
  VMM_TYPES,
  type VmmType,
  vcpuSignature,
} from '../attestation/snp/measure/index.ts';
import { type Invocation, parseCommand } from './args.ts';
import { UsageError } from './errors.ts';

/** Help text of `donjon measure snp`. */
export const measureSnpHelp = `Usage: donjon measure snp --ovmf FILE --vcpus N --vcpu-type TYPE --guest-features HEX
                         [--kernel FILE] [--initrd FILE] [--append STRING] [--vmm-type qemu|ec2|gce] [--json]

Prints the SEV-SNP launch digest (96 hex digits) of a guest booted from this OVMF firmware: the MEASUREMENT
its attestation reports carry, and the value to list in a policy's "measurements" for a cvm host.

Options:
  --ovmf FILE            the OVMF image (OVMF.fd of an SEV-SNP-capable build)
  --vcpus N              number of vCPUs
  --vcpu-type TYPE       QEMU vCPU model, e.g. EPYC-v4, EPYC-Milan, EPYC-Genoa (not needed for ec2, gce)
  --guest-features HEX   SEV_FEATURES, e.g. 0x1 (SNP) or 0x21 (SNP and debug swap)
  --kernel FILE          measured direct boot: the kernel given to the VMM
  --initrd FILE          its initrd (needs --kernel)
  --append STRING        its command line (needs --kernel)
  --vmm-type TYPE        qemu (default), ec2 or gce: they set a few initial registers differently
  --json                 print the digest with its inputs and their SHA-256 digests`;

const MAX_VCPUS = 4096;

function readInput(option: string, path: string): Uint8Array {
  try {
    // /dev/null and other character devices are fine (an empty kernel); directories are not.
    if (statSync(path).isDirectory())
      throw new UsageError(`Cannot read --${option} ${path}: it is a directory`);
    return new Uint8Array(readFileSync(path));
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = (error as { code?: unknown }).code;
    throw new UsageError(
      `Cannot read --${option} ${path}: ${code === 'ENOENT' ? 'no such file' : String(code ?? error)}`,
    );
  }
}

function parseVcpus(text: string): number {
  if (!/^[1-9][0-9]{0,3}$/.test(text) || Number(text) > MAX_VCPUS) {
    throw new UsageError(`Cannot read --vcpus ${text}: expected a whole number from 1 to ${MAX_VCPUS}`);
  }
  return Number(text);
}

function parseFeatures(text: string): bigint {
  const m = /^(?:0[xX])?([0-9a-fA-F]{1,16})$/.exec(text);
  if (!m)
    throw new UsageError(`Cannot read --guest-features ${text}: expected up to 16 hex digits, e.g. 0x1`);
  return BigInt(`0x${m[1]}`);
}

const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');

/** Where the command writes; stdout unless a test says otherwise. */
export interface MeasureSnpCommandContext {
  write?: (text: string) => void;
  /** Told whether --json was given. */
  invocation?: Invocation | undefined;
}

/** `donjon measure snp ...`: prints the SEV-SNP launch digest of an OVMF guest. */
export async function measureSnpCommand(
  argv: string[],
  context: MeasureSnpCommandContext = {},
): Promise<number> {
  const write = context.write ?? ((text: string) => process.stdout.write(text));
  const { values } = parseCommand(argv, {
    command: 'measure',
    invocation: context.invocation,
    options: {
      ovmf: { type: 'string' },
      vcpus: { type: 'string' },
      'vcpu-type': { type: 'string' },
      'guest-features': { type: 'string' },
      kernel: { type: 'string' },
      initrd: { type: 'string' },
      append: { type: 'string' },
      'vmm-type': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  for (const required of ['ovmf', 'vcpus', 'guest-features'] as const) {
    if (values[required] === undefined) throw new UsageError(`Cannot measure: --${required} is required`);
  }
  const vmmType = (values['vmm-type'] ?? 'qemu') as VmmType;
  if (!VMM_TYPES.includes(vmmType)) {
    throw new UsageError(`Cannot read --vmm-type ${vmmType}: expected one of ${VMM_TYPES.join(', ')}`);
  }
  const vcpuType = values['vcpu-type'];
  if (vcpuType === undefined && vmmType === 'qemu') {
    throw new UsageError('Cannot measure: --vcpu-type is required for a qemu launch');
  }
  if (vcpuType !== undefined && !Object.hasOwn(VCPU_SIGNATURES, vcpuType)) {
    throw new UsageError(
      `Cannot read --vcpu-type ${vcpuType}: expected one of ${Object.keys(VCPU_SIGNATURES).join(', ')}`,
    );
  }
  if (values.kernel === undefined) {
    for (const needs of ['initrd', 'append'] as const) {
      if (values[needs] !== undefined) throw new UsageError(`Cannot measure: --${needs} needs --kernel`);
    }
  }
  const vcpus = parseVcpus(values.vcpus!);
  const guestFeatures = parseFeatures(values['guest-features']!);

  const ovmf = readInput('ovmf', values.ovmf!);
  const input: SnpLaunchInput = { ovmf, vcpus, guestFeatures, vmmType };
  if (vcpuType !== undefined) input.vcpuType = vcpuType;
  const inputs: Record<string, { path?: string; value?: string; sha256: string; size?: number }> = {
    ovmf: { path: values.ovmf!, sha256: sha256(ovmf), size: ovmf.byteLength },
  };
  if (values.kernel !== undefined) {
    input.kernel = readInput('kernel', values.kernel);
    inputs['kernel'] = { path: values.kernel, sha256: sha256(input.kernel), size: input.kernel.byteLength };
    if (values.initrd !== undefined) {
      input.initrd = readInput('initrd', values.initrd);
      inputs['initrd'] = { path: values.initrd, sha256: sha256(input.initrd), size: input.initrd.byteLength };
    }
    if (values.append !== undefined) input.cmdline = values.append;
  }

  const measurement = Buffer.from(snpLaunchDigest(input)).toString('hex');
  if (!values.json) {
    write(`${measurement}\n`);
    return 0;
  }
  if (input.kernel !== undefined) {
    // Hashed as the kernel-hashes table records it: with the terminating NUL.
    const { cmdline } = directBootHashes({ kernel: input.kernel, cmdline: values.append ?? '' });
    inputs['append'] = { value: values.append ?? '', sha256: Buffer.from(cmdline).toString('hex') };
  }
  const out = {
    measurement,
    vmmType,
    vcpus,
    ...(vcpuType === undefined ? {} : { vcpuType }),
    // EC2 and GCE put a fixed signature in RDX whatever the vCPU type.
    ...(vcpuType === undefined || vmmType !== 'qemu'
      ? {}
      : { vcpuSig: `0x${vcpuSignature(vcpuType).toString(16)}` }),
    guestFeatures: `0x${guestFeatures.toString(16)}`,
    inputs,
  };
  write(`${JSON.stringify(out)}\n`);
  return 0;
}
