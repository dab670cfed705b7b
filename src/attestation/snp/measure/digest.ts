// The SEV-SNP launch digest of a guest booted from OVMF, computed the way the secure processor computes
// it as the VMM launches the guest: the firmware image page by page, then the pages the firmware's SEV
// metadata asks for (zeroed memory, the secrets page, the CPUID page, the kernel-hashes page), then one
// VMSA per vCPU. The result is the MEASUREMENT an honest launch of these inputs reports.
import { SnpMeasureError } from './errors.ts';
import { LaunchDigest } from './gctx.ts';
import { type DirectBoot, SEV_HASH_TABLE_SIZE, sevHashTable } from './hashes.ts';
import { type OvmfImage, type OvmfSection, parseOvmf } from './ovmf.ts';
import { vcpuSignature } from './vcpu.ts';
import { BSP_EIP, buildVmsa, VMM_TYPES, type VmmType } from './vmsa.ts';

/** What the launch digest depends on. */
export interface SnpLaunchInput {
  /** The OVMF firmware image (OVMF.fd), mapped to end at 4 GiB. */
  ovmf: Uint8Array;
  /** Number of vCPUs: each adds one VMSA. */
  vcpus: number;
  /** QEMU vCPU model, e.g. `EPYC-v4`; or give {@link vcpuSig}. Needed for `qemu`, ignored for `ec2` and `gce`. */
  vcpuType?: string;
  /** CPUID signature of the vCPU model, instead of {@link vcpuType}. */
  vcpuSig?: number;
  /** SEV_FEATURES of every VMSA (64 bits), e.g. 0x1 (SNP active) or 0x21 (SNP active, debug swap). */
  guestFeatures: bigint;
  /** Measured direct boot: the kernel, initrd and command line whose hashes the firmware will enforce. */
  kernel?: Uint8Array;
  initrd?: Uint8Array;
  cmdline?: string;
  /** Default `qemu`. */
  vmmType?: VmmType;
}

const PAGE = 0x1000;
const MAX_VCPUS = 4096;

function unsupported(state: string): never {
  throw new SnpMeasureError('ERR_OVMF_UNSUPPORTED', `Cannot measure OVMF image: ${state}`);
}

function malformed(state: string): never {
  throw new SnpMeasureError('ERR_OVMF_MALFORMED', `Cannot parse OVMF image: ${state}`);
}

/** The kernel-hashes page: the table at the offset inside the page that the firmware declares for it. */
function kernelHashesPage(image: OvmfImage, section: OvmfSection, boot: DirectBoot): Uint8Array {
  const table = image.hashTable;
  if (table === undefined) unsupported('a kernel was given but the image declares no SEV hash table');
  if (section.size !== PAGE) malformed('the SNP_KERNEL_HASHES section is not one page');
  const offset = table.gpa - section.gpa;
  if (offset < 0 || offset + SEV_HASH_TABLE_SIZE > PAGE) {
    malformed('the SEV hash table does not lie inside the SNP_KERNEL_HASHES page');
  }
  if (table.size < SEV_HASH_TABLE_SIZE)
    malformed(`the SEV hash table area of ${table.size} bytes is too small`);
  const page = new Uint8Array(PAGE);
  page.set(sevHashTable(boot), offset);
  return page;
}

function checkInput(input: SnpLaunchInput): { vmmType: VmmType; vcpuSig: number; boot?: DirectBoot } {
  if (typeof input !== 'object' || input === null)
    throw new TypeError('Cannot compute launch digest: input is required');
  if (!(input.ovmf instanceof Uint8Array))
    throw new TypeError('Cannot compute launch digest: ovmf must be bytes');
  if (!Number.isInteger(input.vcpus) || input.vcpus < 1 || input.vcpus > MAX_VCPUS) {
    throw new RangeError(`Cannot compute launch digest: vcpus must be an integer from 1 to ${MAX_VCPUS}`);
  }
  if (typeof input.guestFeatures !== 'bigint') {
    throw new TypeError('Cannot compute launch digest: guestFeatures must be a bigint');
  }
  if (input.guestFeatures < 0n || input.guestFeatures >= 1n << 64n) {
    throw new RangeError('Cannot compute launch digest: guestFeatures must fit in 64 bits');
  }
  const vmmType = input.vmmType ?? 'qemu';
  if (!VMM_TYPES.includes(vmmType)) {
    throw new RangeError(`Cannot compute launch digest: vmmType must be one of ${VMM_TYPES.join(', ')}`);
  }
  if (input.vcpuType !== undefined && input.vcpuSig !== undefined) {
    throw new TypeError('Cannot compute launch digest: give vcpuType or vcpuSig, not both');
  }
  let vcpuSig = 0;
  if (input.vcpuType !== undefined) vcpuSig = vcpuSignature(input.vcpuType);
  else if (input.vcpuSig !== undefined) {
    if (!Number.isInteger(input.vcpuSig) || input.vcpuSig < 0 || input.vcpuSig > 0xffffffff) {
      throw new RangeError('Cannot compute launch digest: vcpuSig must be a 32-bit unsigned integer');
    }
    vcpuSig = input.vcpuSig;
  } else if (vmmType === 'qemu') {
    throw new TypeError('Cannot compute launch digest: a qemu launch needs vcpuType or vcpuSig');
  }
  if (input.kernel === undefined) {
    if (input.initrd !== undefined || input.cmdline !== undefined) {
      throw new TypeError('Cannot compute launch digest: an initrd or command line needs a kernel');
    }
    return { vmmType, vcpuSig };
  }
  for (const [name, value] of [
    ['kernel', input.kernel],
    ['initrd', input.initrd],
  ] as const) {
    if (value !== undefined && !(value instanceof Uint8Array)) {
      throw new TypeError(`Cannot compute launch digest: ${name} must be bytes`);
    }
  }
  if (input.cmdline !== undefined && typeof input.cmdline !== 'string') {
    throw new TypeError('Cannot compute launch digest: cmdline must be a string');
  }
  const boot: DirectBoot = { kernel: input.kernel };
  if (input.initrd !== undefined) boot.initrd = input.initrd;
  if (input.cmdline !== undefined) boot.cmdline = input.cmdline;
  return { vmmType, vcpuSig, boot };
}

/**
 * The 48-byte SEV-SNP launch digest of an OVMF guest, as AMD's secure processor computes it and reports it
 * in MEASUREMENT. Pure: the inputs are bytes, nothing is read from disk.
 *
 * Throws TypeError/RangeError for inputs of the wrong shape, and {@link SnpMeasureError} when the firmware
 * cannot be measured (malformed, not SNP-capable, or a kernel given to a build without measured direct boot).
 *
 * @example
 * const digest = snpLaunchDigest({ ovmf, vcpus: 4, vcpuType: 'EPYC-v4', guestFeatures: 0x1n });
 */
export function snpLaunchDigest(input: SnpLaunchInput): Uint8Array {
  const { vmmType, vcpuSig, boot } = checkInput(input);
  const image = parseOvmf(input.ovmf);
  if (boot !== undefined && !image.sections.some((s) => s.kind === 'SNP_KERNEL_HASHES')) {
    unsupported('a kernel was given but the SEV metadata has no SNP_KERNEL_HASHES section');
  }
  if (input.vcpus > 1 && image.resetEip === 0) unsupported('the SEV-ES reset block gives no AP entry point');

  const ld = new LaunchDigest();
  ld.normalPages(image.gpa, image.bytes);
  for (const section of image.sections) {
    switch (section.kind) {
      case 'SNP_SEC_MEM':
        // GCE hands the firmware's scratch memory over unmeasured instead of zeroed.
        if (vmmType === 'gce') ld.unmeasuredPages(section.gpa, section.size);
        else ld.zeroPages(section.gpa, section.size);
        break;
      case 'SNP_SECRETS':
        ld.secretsPage(section.gpa);
        break;
      case 'CPUID':
        // EC2 prepares the CPUID page last, after every other section.
        if (vmmType !== 'ec2') ld.cpuidPage(section.gpa);
        break;
      case 'SNP_KERNEL_HASHES':
        if (boot === undefined) ld.zeroPages(section.gpa, section.size);
        else ld.normalPages(section.gpa, kernelHashesPage(image, section, boot));
        break;
      case 'SVSM_CAA':
        ld.zeroPages(section.gpa, section.size);
        break;
    }
  }
  if (vmmType === 'ec2') {
    for (const section of image.sections) if (section.kind === 'CPUID') ld.cpuidPage(section.gpa);
  }

  const sevFeatures = input.guestFeatures;
  const bsp = buildVmsa({ eip: BSP_EIP, sevFeatures, vcpuSig, vmmType });
  const ap = input.vcpus > 1 ? buildVmsa({ eip: image.resetEip, sevFeatures, vcpuSig, vmmType }) : bsp;
  for (let i = 0; i < input.vcpus; i++) ld.vmsaPage(i === 0 ? bsp : ap);
  return ld.digest();
}
