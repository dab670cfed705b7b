// Intel Provisioning Certification Service (PCS) API v4 request paths and response headers: the PCK CRL,
// TCB info by FMSPC and the QE identity, each in an SGX and a TDX flavour, plus the Root CA CRL.

/** Intel's public PCS. */
export const PCS_URL = 'https://api.trustedservices.intel.com';

/** Where Intel publishes the CRL of the Intel SGX Root CA (DER). */
export const INTEL_ROOT_CA_CRL_URL = 'https://certificates.trustedservices.intel.com/IntelSGXRootCA.der';

/** Which PCK CA issued a PCK certificate: its CRL is fetched by this name. */
export type PckCa = 'platform' | 'processor';

/** SGX enclaves and TDX trust domains have their own TCB info and QE identity. */
export type TeeKind = 'sgx' | 'tdx';

/**
 * Response headers that carry issuer chains (URL-encoded PEM). TCB info moved from the `SGX-` name (API
 * v3) to the plain one (v4); both are read, v4 first.
 */
export const ISSUER_CHAIN_HEADERS = {
  pckCrl: ['sgx-pck-crl-issuer-chain'],
  tcbInfo: ['tcb-info-issuer-chain', 'sgx-tcb-info-issuer-chain'],
  qeIdentity: ['sgx-enclave-identity-issuer-chain'],
} as const;

function checkKind(kind: TeeKind): void {
  if (kind !== 'sgx' && kind !== 'tdx')
    throw new RangeError(`Cannot build a PCS path: unknown kind ${String(kind)}`);
}

/** `/sgx/certification/v4/pckcrl?ca=platform&encoding=der`: the CRL of one PCK CA, as DER. */
export function pckCrlPath(ca: PckCa): string {
  if (ca !== 'platform' && ca !== 'processor') {
    throw new RangeError(`Cannot build a PCS path: unknown PCK CA ${String(ca)}`);
  }
  return `/sgx/certification/v4/pckcrl?ca=${ca}&encoding=der`;
}

/** `/{sgx|tdx}/certification/v4/tcb?fmspc=...`: the signed TCB info of one platform family. */
export function tcbInfoPath(kind: TeeKind, fmspc: string): string {
  checkKind(kind);
  if (typeof fmspc !== 'string' || !/^[0-9a-fA-F]{12}$/.test(fmspc)) {
    throw new RangeError('Cannot build a PCS path: the FMSPC must be 12 hex digits');
  }
  return `/${kind}/certification/v4/tcb?fmspc=${fmspc.toLowerCase()}`;
}

/** `/{sgx|tdx}/certification/v4/qe/identity`: the signed identity of the quoting enclave (QE or TD_QE). */
export function qeIdentityPath(kind: TeeKind): string {
  checkKind(kind);
  return `/${kind}/certification/v4/qe/identity`;
}
