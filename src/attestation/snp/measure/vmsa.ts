// The initial VMSA (VM save area, AMD APM vol. 2 table B-4, "SEV-ES save area") of each vCPU at launch:
// the register state KVM hands to the secure processor, which measures the page as it is. Only the fields
// a fresh vCPU sets are written; the rest of the page is zero. The values are those of a vCPU at reset
// (APM vol. 2 "Initial processor state") as KVM and the VMMs that differ from it (EC2, GCE) set them.

/** The VMM that launched the guest: they set a few reset values differently. */
export type VmmType = 'qemu' | 'ec2' | 'gce';

/** The VMM types this computation knows. */
export const VMM_TYPES: readonly VmmType[] = ['qemu', 'ec2', 'gce'];

/** Where the bootstrap processor starts: the x86 reset vector. */
export const BSP_EIP = 0xfffffff0;

/** Byte offsets of the VMSA fields set at launch. */
const OFF = {
  es: 0x000,
  cs: 0x010,
  ss: 0x020,
  ds: 0x030,
  fs: 0x040,
  gs: 0x050,
  gdtr: 0x060,
  ldtr: 0x070,
  idtr: 0x080,
  tr: 0x090,
  efer: 0x0d0,
  cr4: 0x148,
  cr0: 0x158,
  dr7: 0x160,
  dr6: 0x168,
  rflags: 0x170,
  rip: 0x178,
  gPat: 0x268,
  rdx: 0x310,
  sevFeatures: 0x3b0,
  xcr0: 0x3e8,
  mxcsr: 0x408,
  x87Fcw: 0x410,
} as const;

const VMSA_SIZE = 0x1000;
/** PAT MSR at reset (APM vol. 2, section A.3). */
const RESET_PAT = 0x0007040600070406n;
/** The CPUID signature EC2 and GCE put in RDX whatever the vCPU type. */
const FIXED_RDX = 0x600n;

/** What a vCPU's initial state depends on. */
export interface VmsaInput {
  /** Reset EIP: {@link BSP_EIP} for the bootstrap processor, the firmware's SEV-ES reset block for the others. */
  eip: number;
  /** SEV_FEATURES (the guest features chosen at launch), 64 bits. */
  sevFeatures: bigint;
  /** CPUID Fn0000_0001_EAX of the vCPU model, found in RDX at reset. Ignored for EC2 and GCE. */
  vcpuSig: number;
  vmmType: VmmType;
}

interface Segment {
  selector: number;
  attrib: number;
  limit: number;
  base: number;
}

function segment(view: DataView, at: number, s: Segment): void {
  view.setUint16(at, s.selector, true);
  view.setUint16(at + 2, s.attrib, true);
  view.setUint32(at + 4, s.limit, true);
  view.setBigUint64(at + 8, BigInt(s.base), true);
}

/** The 4096-byte initial VMSA of one vCPU, byte for byte as the secure processor measures it. */
export function buildVmsa(input: VmsaInput): Uint8Array {
  const { eip, sevFeatures, vcpuSig, vmmType } = input;
  let csAttrib = 0x9b;
  let ssAttrib = 0x93;
  let trAttrib = 0x8b;
  let rdx = BigInt(vcpuSig);
  let mxcsr = 0x1f80;
  let fcw = 0x37f;
  let gPat = RESET_PAT;
  if (vmmType === 'ec2') {
    // EC2 leaves the BSP's code segment not-yet-accessed, and its data/task attributes differ from KVM's.
    if (eip === BSP_EIP) csAttrib = 0x9a;
    ssAttrib = 0x92;
    trAttrib = 0x83;
    rdx = FIXED_RDX;
    mxcsr = 0;
    fcw = 0;
  } else if (vmmType === 'gce') {
    gPat = 0x70106n;
    rdx = FIXED_RDX;
    mxcsr = 0;
    fcw = 0;
  } else if (vmmType !== 'qemu') {
    throw new RangeError(`Cannot build VMSA: unknown VMM type '${String(vmmType)}'`);
  }

  const page = new Uint8Array(VMSA_SIZE);
  const view = new DataView(page.buffer);
  const data = { selector: 0, attrib: 0x93, limit: 0xffff, base: 0 };
  segment(view, OFF.es, data);
  // Real mode: CS selects the 64 KiB window holding EIP; RIP is the offset inside it.
  segment(view, OFF.cs, {
    selector: 0xf000,
    attrib: csAttrib,
    limit: 0xffff,
    base: (eip & 0xffff0000) >>> 0,
  });
  segment(view, OFF.ss, { ...data, attrib: ssAttrib });
  segment(view, OFF.ds, data);
  segment(view, OFF.fs, data);
  segment(view, OFF.gs, data);
  segment(view, OFF.gdtr, { selector: 0, attrib: 0, limit: 0xffff, base: 0 });
  segment(view, OFF.ldtr, { selector: 0, attrib: 0x82, limit: 0xffff, base: 0 });
  segment(view, OFF.idtr, { selector: 0, attrib: 0, limit: 0xffff, base: 0 });
  segment(view, OFF.tr, { selector: 0, attrib: trAttrib, limit: 0xffff, base: 0 });
  view.setBigUint64(OFF.efer, 0x1000n, true); // EFER.SVME, which KVM sets
  view.setBigUint64(OFF.cr4, 0x40n, true); // CR4.MCE, which KVM sets
  view.setBigUint64(OFF.cr0, 0x10n, true);
  view.setBigUint64(OFF.dr7, 0x400n, true);
  view.setBigUint64(OFF.dr6, 0xffff0ff0n, true);
  view.setBigUint64(OFF.rflags, 0x2n, true);
  view.setBigUint64(OFF.rip, BigInt(eip & 0xffff), true);
  view.setBigUint64(OFF.gPat, gPat, true);
  view.setBigUint64(OFF.rdx, rdx, true);
  view.setBigUint64(OFF.sevFeatures, sevFeatures, true);
  view.setBigUint64(OFF.xcr0, 0x1n, true);
  view.setUint32(OFF.mxcsr, mxcsr, true);
  view.setUint16(OFF.x87Fcw, fcw, true);
  return page;
}
