// The secure processor's launch digest (SEV-SNP Firmware ABI, SNP_LAUNCH_UPDATE and the PAGE_INFO
// structure): starting from 48 zero bytes, every page the hypervisor hands over replaces the digest with
// SHA-384(PAGE_INFO), where PAGE_INFO is the current digest, the page's contents digest, its type and its
// guest-physical address. The final value is the MEASUREMENT a report carries.
import { createHash } from 'node:crypto';

/** Page types of PAGE_INFO. */
export const PAGE_TYPE = {
  NORMAL: 0x01,
  VMSA: 0x02,
  ZERO: 0x03,
  UNMEASURED: 0x04,
  SECRETS: 0x05,
  CPUID: 0x06,
} as const;

const PAGE = 0x1000;
const PAGE_INFO_SIZE = 0x70;
/** A VMSA page is recorded at GPA 2^64 - 1 masked to a page-aligned address below 2^52. */
export const VMSA_GPA = 0xfffffffff000n;

function sha384(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha384').update(bytes).digest());
}

/** The running launch digest of one guest, updated page by page in launch order. */
export class LaunchDigest {
  #digest: Uint8Array;

  /** Starts from `seed` (48 bytes; zeros for a fresh launch). */
  constructor(seed: Uint8Array = new Uint8Array(48)) {
    if (seed.byteLength !== 48) throw new RangeError('Cannot start launch digest: seed must be 48 bytes');
    this.#digest = Uint8Array.from(seed);
  }

  /** The current digest (a copy). */
  digest(): Uint8Array {
    return Uint8Array.from(this.#digest);
  }

  #update(type: number, gpa: bigint, contents: Uint8Array): void {
    const info = new Uint8Array(PAGE_INFO_SIZE);
    const view = new DataView(info.buffer);
    info.set(this.#digest, 0);
    info.set(contents, 48);
    view.setUint16(96, PAGE_INFO_SIZE, true);
    info[98] = type;
    // is_imi, vmpl3/2/1 permissions and the reserved byte stay zero: no IMI pages, no lower-VMPL access.
    view.setBigUint64(104, gpa, true);
    this.#digest = sha384(info);
  }

  /** Measured pages: each page's SHA-384 goes into the digest. `data` is a whole number of pages. */
  normalPages(gpa: number, data: Uint8Array): void {
    if (data.byteLength % PAGE !== 0) throw new RangeError('Cannot measure pages: data is not whole pages');
    for (let off = 0; off < data.byteLength; off += PAGE) {
      this.#update(PAGE_TYPE.NORMAL, BigInt(gpa + off), sha384(data.subarray(off, off + PAGE)));
    }
  }

  /** Pages the secure processor zeroes: recorded by address only. */
  zeroPages(gpa: number, size: number): void {
    this.#empty(PAGE_TYPE.ZERO, gpa, size);
  }

  /** Pages handed over unmeasured: recorded by address only. */
  unmeasuredPages(gpa: number, size: number): void {
    this.#empty(PAGE_TYPE.UNMEASURED, gpa, size);
  }

  /** The secrets page the secure processor fills. */
  secretsPage(gpa: number): void {
    this.#update(PAGE_TYPE.SECRETS, BigInt(gpa), new Uint8Array(48));
  }

  /** The CPUID page the secure processor checks. */
  cpuidPage(gpa: number): void {
    this.#update(PAGE_TYPE.CPUID, BigInt(gpa), new Uint8Array(48));
  }

  /** One vCPU's initial register state (a 4096-byte VMSA). */
  vmsaPage(vmsa: Uint8Array): void {
    if (vmsa.byteLength !== PAGE) throw new RangeError('Cannot measure VMSA: expected one page');
    this.#update(PAGE_TYPE.VMSA, VMSA_GPA, sha384(vmsa));
  }

  #empty(type: number, gpa: number, size: number): void {
    if (size % PAGE !== 0) throw new RangeError('Cannot measure pages: size is not whole pages');
    for (let off = 0; off < size; off += PAGE) this.#update(type, BigInt(gpa + off), new Uint8Array(48));
  }
}
