// The AMD extensions of a VCEK or VLEK certificate (AMD "VCEK Certificate and KDS Interface
// Specification", pub. 57230): the TCB the key was derived for, the chip it belongs to (VCEK) or the
// cloud provider it was issued to (VLEK). Looked up by OID, since their order differs between certs.
import { AttestationError } from '../errors.ts';
import type { Certificate } from '../x509.ts';
import { readIa5Extension, readIntegerExtension } from '../x509.ts';
import type { SnpTcbParts } from './tcb.ts';

/** OIDs of the AMD VCEK/VLEK extensions (arc 1.3.6.1.4.1.3704.1). */
export const VEK_OID = {
  structVersion: '1.3.6.1.4.1.3704.1.1',
  productName: '1.3.6.1.4.1.3704.1.2',
  blSpl: '1.3.6.1.4.1.3704.1.3.1',
  teeSpl: '1.3.6.1.4.1.3704.1.3.2',
  snpSpl: '1.3.6.1.4.1.3704.1.3.3',
  spl4: '1.3.6.1.4.1.3704.1.3.4',
  spl5: '1.3.6.1.4.1.3704.1.3.5',
  spl6: '1.3.6.1.4.1.3704.1.3.6',
  spl7: '1.3.6.1.4.1.3704.1.3.7',
  ucodeSpl: '1.3.6.1.4.1.3704.1.3.8',
  fmcSpl: '1.3.6.1.4.1.3704.1.3.9',
  hwId: '1.3.6.1.4.1.3704.1.4',
  cspId: '1.3.6.1.4.1.3704.1.5',
} as const;

/** What a VCEK or VLEK certificate says about its key. */
export interface VekInfo {
  kind: 'vcek' | 'vlek';
  structVersion: number;
  /** e.g. "Milan-B0", "Genoa", "Turin" (VCEK); "Milan" (VLEK); "Simulated". */
  productName: string;
  /** The TCB the key was derived for; `fmc` when the certificate has an fmcSPL. */
  tcb: SnpTcbParts;
  /** VCEK only: the chip id (64 bytes on Milan/Genoa, 8 on Turin). */
  hwId?: Uint8Array;
  /** VLEK only: the cloud service provider the key was issued to. */
  cspId?: string;
}

function invalid(state: string, cause?: unknown): never {
  throw new AttestationError(
    'ERR_CHAIN_INVALID',
    `Cannot read the VCEK/VLEK extensions: ${state}`,
    cause === undefined ? undefined : { cause },
  );
}

/** hwID is raw bytes in KDS certificates; some producers wrap it in an OCTET STRING. Accept both. */
function readHwId(value: Uint8Array): Uint8Array {
  if (value.byteLength === 64 || value.byteLength === 8) return value.slice();
  const inner = value.byteLength - 2;
  if ((inner === 64 || inner === 8) && value[0] === 0x04 && value[1] === inner) return value.slice(2);
  return invalid(`hwID has ${value.byteLength} bytes, expected 8 or 64`);
}

/**
 * Reads the AMD extensions of a VCEK or VLEK. A VCEK has a hwID and no cspID; a VLEK the reverse.
 * Fails with ERR_CHAIN_INVALID when a required extension is missing or malformed.
 */
export function readVekExtensions(cert: Certificate): VekInfo {
  const ext = (oid: string) => cert.extensions.get(oid)?.value;
  const int = (name: string, oid: string, max = 255): number => {
    const value = ext(oid);
    if (value === undefined) return invalid(`${name} is missing`);
    try {
      return readIntegerExtension(value, max);
    } catch (cause) {
      return invalid(`${name} is not a DER INTEGER in 0..${max}`, cause);
    }
  };
  const productValue = ext(VEK_OID.productName);
  if (productValue === undefined) invalid('productName is missing');
  let productName: string;
  try {
    productName = readIa5Extension(productValue);
  } catch (cause) {
    return invalid('productName is not a DER IA5String', cause);
  }
  const tcb: SnpTcbParts = {
    bootloader: int('blSPL', VEK_OID.blSpl),
    tee: int('teeSPL', VEK_OID.teeSpl),
    snp: int('snpSPL', VEK_OID.snpSpl),
    microcode: int('ucodeSPL', VEK_OID.ucodeSpl),
  };
  if (ext(VEK_OID.fmcSpl) !== undefined) tcb.fmc = int('fmcSPL', VEK_OID.fmcSpl);
  const info: VekInfo = {
    kind: 'vcek',
    structVersion: int('structVersion', VEK_OID.structVersion, 0xffff),
    productName,
    tcb,
  };
  const hw = ext(VEK_OID.hwId);
  const csp = ext(VEK_OID.cspId);
  if (hw !== undefined && csp !== undefined) invalid('both hwID (VCEK) and cspID (VLEK) are present');
  if (hw !== undefined) {
    info.hwId = readHwId(hw);
  } else if (csp !== undefined) {
    info.kind = 'vlek';
    try {
      info.cspId = readIa5Extension(csp);
    } catch (cause) {
      return invalid('cspID is not a DER IA5String', cause);
    }
  } else {
    invalid('neither hwID (VCEK) nor cspID (VLEK) is present');
  }
  return info;
}
