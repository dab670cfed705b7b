// The SGX extensions of a PCK certificate (Intel "SGX PCK Certificate and CRL Profile", OID
// 1.2.840.113741.1.13.1): which platform the key belongs to (FMSPC, PCE-ID, PPID) and the TCB it was
// issued for (16 CPU SVN components and the PCE SVN), the inputs of TCB level selection.
import { TAG } from '../../lib/der.ts';
import { reasonOf } from '../../lib/errors.ts';
import { children, type DerNode, readBoolean, readOid, readOne, readSmallInt } from '../der.ts';
import { AttestationError } from '../errors.ts';
import type { Certificate } from '../x509.ts';

/** OIDs of the SGX extension and its items. */
export const SGX_OID = {
  extension: '1.2.840.113741.1.13.1',
  ppid: '1.2.840.113741.1.13.1.1',
  tcb: '1.2.840.113741.1.13.1.2',
  pceId: '1.2.840.113741.1.13.1.3',
  fmspc: '1.2.840.113741.1.13.1.4',
  sgxType: '1.2.840.113741.1.13.1.5',
  platformInstanceId: '1.2.840.113741.1.13.1.6',
  configuration: '1.2.840.113741.1.13.1.7',
} as const;

/** What a PCK certificate says about its platform. */
export interface PckInfo {
  ppid: Uint8Array;
  /** The 16 CPU SVN components the certificate was issued for (TCB info `sgxtcbcomponents`). */
  cpuSvnComponents: readonly number[];
  pceSvn: number;
  /** The raw CPUSVN (16 bytes). */
  cpuSvn: Uint8Array;
  pceId: Uint8Array;
  fmspc: Uint8Array;
  /** 0 Standard, 1 Scalable, 2 Scalable with integrity. */
  sgxType: number;
  /** Platform CA certificates only. */
  platformInstanceId?: Uint8Array;
  /** Platform CA certificates only. */
  configuration?: { dynamicPlatform?: boolean; cachedKeys?: boolean; smtEnabled?: boolean };
}

function invalid(state: string, cause?: unknown): never {
  throw new AttestationError(
    'ERR_CHAIN_INVALID',
    `Cannot read the PCK certificate's SGX extension: ${state}`,
    cause === undefined ? undefined : { cause },
  );
}

function octets(node: DerNode, length: number, what: string): Uint8Array {
  if (node.tag !== TAG.OCTET_STRING || node.value.byteLength !== length)
    invalid(`${what} is not an OCTET STRING of ${length} bytes`);
  return node.value.slice();
}

/** The (OID, value) items of a SEQUENCE OF SEQUENCE { OID, value }, each OID once. */
function items(node: DerNode, what: string): Map<string, DerNode> {
  if (node.tag !== TAG.SEQUENCE) invalid(`${what} is not a SEQUENCE`);
  const map = new Map<string, DerNode>();
  const list = children(node);
  while (!list.done) {
    const item = children(list.next(TAG.SEQUENCE));
    const id = readOid(item.next(TAG.OID));
    const value = item.next();
    item.end();
    if (map.has(id)) invalid(`${what} has ${id} twice`);
    map.set(id, value);
  }
  return map;
}

function required(map: Map<string, DerNode>, id: string, what: string): DerNode {
  const node = map.get(id);
  if (node === undefined) invalid(`${what} is missing`);
  return node;
}

function readTcb(node: DerNode): { components: number[]; pceSvn: number; cpuSvn: Uint8Array } {
  const map = items(node, 'the TCB');
  const components: number[] = [];
  for (let i = 1; i <= 16; i++) {
    components.push(readSmallInt(required(map, `${SGX_OID.tcb}.${i}`, `TCB component ${i}`), 255));
  }
  const pceSvn = readSmallInt(required(map, `${SGX_OID.tcb}.17`, 'the PCE SVN'), 0xffff);
  const cpuSvn = octets(required(map, `${SGX_OID.tcb}.18`, 'the CPUSVN'), 16, 'the CPUSVN');
  if (map.size !== 18) invalid('the TCB has items other than 16 components, the PCE SVN and the CPUSVN');
  return { components, pceSvn, cpuSvn };
}

/**
 * Reads the SGX extension of a PCK certificate. Items Intel may add later are skipped; the ones read
 * must each appear once and be well formed. Fails with ERR_CHAIN_INVALID.
 */
export function readPckExtension(cert: Certificate): PckInfo {
  const ext = cert.extensions.get(SGX_OID.extension);
  if (ext === undefined) invalid('the certificate has none');
  if (ext.critical) invalid('it is marked critical');
  try {
    const map = items(readOne(ext.value, TAG.SEQUENCE), 'the extension');
    const tcb = readTcb(required(map, SGX_OID.tcb, 'the TCB'));
    const typeNode = required(map, SGX_OID.sgxType, 'the SGX type');
    if (typeNode.tag !== 0x0a) invalid('the SGX type is not ENUMERATED');
    const sgxType = readSmallInt({ ...typeNode, tag: TAG.INTEGER }, 2);
    const info: PckInfo = {
      ppid: octets(required(map, SGX_OID.ppid, 'the PPID'), 16, 'the PPID'),
      cpuSvnComponents: Object.freeze(tcb.components),
      pceSvn: tcb.pceSvn,
      cpuSvn: tcb.cpuSvn,
      pceId: octets(required(map, SGX_OID.pceId, 'the PCE-ID'), 2, 'the PCE-ID'),
      fmspc: octets(required(map, SGX_OID.fmspc, 'the FMSPC'), 6, 'the FMSPC'),
      sgxType,
    };
    const instance = map.get(SGX_OID.platformInstanceId);
    if (instance !== undefined) info.platformInstanceId = octets(instance, 16, 'the platform instance id');
    const config = map.get(SGX_OID.configuration);
    if (config !== undefined) {
      const flags = items(config, 'the configuration');
      const names = [
        ['dynamicPlatform', 1],
        ['cachedKeys', 2],
        ['smtEnabled', 3],
      ] as const;
      const out: NonNullable<PckInfo['configuration']> = {};
      for (const [name, n] of names) {
        const node = flags.get(`${SGX_OID.configuration}.${n}`);
        if (node !== undefined) out[name] = readBoolean(node);
      }
      info.configuration = out;
    }
    return info;
  } catch (e) {
    if (e instanceof AttestationError && e.code === 'ERR_CHAIN_INVALID') throw e;
    const detail = e instanceof Error ? reasonOf(e) : 'unreadable';
    return invalid(`malformed DER (${detail})`, e);
  }
}
