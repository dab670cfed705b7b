// AMD Key Distribution Service (KDS) request paths (AMD "VCEK Certificate and KDS Interface
// Specification", pub. 57230): the VCEK of one chip at one TCB, the ASK/ASVK + ARK chain, and the CRL.
// VLEKs are issued to cloud providers and are not published, so there is no path for them.
import type { AmdProduct, SnpReport, SnpTcbParts } from '../../attestation/index.ts';

/** AMD's public KDS. */
export const KDS_URL = 'https://kdsintf.amd.com';

/** CPUID family of Turin (Zen 5); 0x19 is Milan (models 0x00-0x0F) and Genoa (models 0x10 and up). */
const FAMILY_ZEN3_ZEN4 = 0x19;
const FAMILY_ZEN5 = 0x1a;

/**
 * The product line whose KDS tree holds the VCEK of this report, from its CPUID fields (versions 3 and
 * later). Version 2 reports carry no CPUID: then undefined, and the caller tries Milan and Genoa.
 */
export function snpProductOf(report: Pick<SnpReport, 'cpuid'>): AmdProduct | undefined {
  const cpuid = report.cpuid;
  if (cpuid === undefined) return undefined;
  if (cpuid.family === FAMILY_ZEN5) return 'Turin';
  if (cpuid.family === FAMILY_ZEN3_ZEN4) return cpuid.model < 0x10 ? 'Milan' : 'Genoa';
  return undefined;
}

function checkProduct(product: AmdProduct): void {
  if (product !== 'Milan' && product !== 'Genoa' && product !== 'Turin') {
    throw new RangeError(`Cannot build a KDS path: unknown product ${String(product)}`);
  }
}

function spl(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 255) {
    throw new RangeError(`Cannot build a KDS path: ${name} must be an integer in 0..255`);
  }
  return value;
}

/**
 * The KDS path of a VCEK: `/vcek/v1/{product}/{hwid}?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..`, with
 * `&fmcSPL=..` on Turin. `chipId` is the report's CHIP_ID (64 bytes; Turin uses the first 8) and `tcb`
 * its REPORTED_TCB, which must have `fmc` exactly on Turin.
 */
export function vcekPath(product: AmdProduct, chipId: Uint8Array, tcb: SnpTcbParts): string {
  checkProduct(product);
  if (!(chipId instanceof Uint8Array) || (chipId.byteLength !== 64 && chipId.byteLength !== 8)) {
    throw new RangeError('Cannot build a KDS path: the chip id must be 64 (or, on Turin, 8) bytes');
  }
  const turin = product === 'Turin';
  if (!turin && chipId.byteLength !== 64) {
    throw new RangeError(`Cannot build a KDS path: a ${product} chip id has 64 bytes`);
  }
  if (turin !== (tcb.fmc !== undefined)) {
    throw new RangeError(`Cannot build a KDS path: the TCB ${turin ? 'lacks' : 'has'} an fmc component`);
  }
  const hwid = Buffer.from(turin ? chipId.subarray(0, 8) : chipId).toString('hex');
  let query =
    `blSPL=${spl('bootloader', tcb.bootloader)}&teeSPL=${spl('tee', tcb.tee)}` +
    `&snpSPL=${spl('snp', tcb.snp)}&ucodeSPL=${spl('microcode', tcb.microcode)}`;
  if (turin) query += `&fmcSPL=${spl('fmc', tcb.fmc)}`;
  return `/vcek/v1/${product}/${hwid}?${query}`;
}

/** The KDS path of a product's chain: ASK + ARK (`vcek`) or ASVK + ARK (`vlek`), PEM, signer first. */
export function certChainPath(product: AmdProduct, key: 'vcek' | 'vlek' = 'vcek'): string {
  checkProduct(product);
  return `/${key}/v1/${product}/cert_chain`;
}

/** The KDS path of a product's CRL (DER, signed by the ARK): revoked ASKs/ASVKs. */
export function kdsCrlPath(product: AmdProduct, key: 'vcek' | 'vlek' = 'vcek'): string {
  checkProduct(product);
  return `/${key}/v1/${product}/crl`;
}
