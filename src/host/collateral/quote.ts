// What must be fetched for an Intel DCAP quote: the TEE kind (which TCB info and QE identity), the FMSPC
// (which platform family) and the PCK CA (which CRL). Read from the quote header and the PCK certificate
// chain the quote carries. Only fetch parameters come from here: the verifier checks the quote itself.
import { CollateralError } from './errors.ts';
import type { PckCa, TeeKind } from './pcs.ts';
import { pemCertificates } from './pem.ts';
import { certificateInfo } from './x509-info.ts';

/** What to fetch for one quote. */
export interface DcapFetchParameters {
  readonly kind: TeeKind;
  /** Lower-case hex, 12 digits. */
  readonly fmspc: string;
  readonly ca: PckCa;
  /** The PCK chain carried by the quote (DER): PCK certificate, PCK CA, root. */
  readonly pckChain: readonly Uint8Array[];
}

const HEADER_SIZE = 48;
const TEE_SGX = 0x00000000;
const TEE_TDX = 0x00000081;

function unsupported(state: string): never {
  throw new CollateralError('ERR_COLLATERAL_UNSUPPORTED', `Cannot fetch collateral for this quote: ${state}`);
}

/**
 * The fetch parameters of a DCAP quote (v3 SGX, v4/v5 SGX or TDX). Fails with
 * ERR_COLLATERAL_UNSUPPORTED when the quote is of another version or carries no PCK chain (certification
 * data other than type 5), and ERR_COLLATERAL_MALFORMED when its PCK certificate cannot be read.
 */
export function dcapFetchParameters(quote: Uint8Array): DcapFetchParameters {
  if (!(quote instanceof Uint8Array)) throw new TypeError('Cannot read quote: expected a Uint8Array');
  if (quote.byteLength < HEADER_SIZE) unsupported('it is shorter than a quote header');
  const view = new DataView(quote.buffer, quote.byteOffset, quote.byteLength);
  const version = view.getUint16(0, true);
  const teeType = view.getUint32(4, true);
  let kind: TeeKind;
  if (version === 3) kind = 'sgx';
  else if ((version === 4 || version === 5) && teeType === TEE_SGX) kind = 'sgx';
  else if ((version === 4 || version === 5) && teeType === TEE_TDX) kind = 'tdx';
  else return unsupported(`version ${version} with TEE type 0x${teeType.toString(16)} is not a DCAP quote`);

  const text = Buffer.from(
    quote.buffer,
    quote.byteOffset + HEADER_SIZE,
    quote.byteLength - HEADER_SIZE,
  ).toString('latin1');
  const chain = pemCertificates(text);
  const leaf = chain[0];
  if (leaf === undefined) unsupported('it carries no PCK certificate chain');
  const info = certificateInfo(leaf);
  if (info.fmspc === undefined) {
    throw new CollateralError(
      'ERR_COLLATERAL_MALFORMED',
      'Cannot fetch collateral for this quote: its first certificate has no FMSPC',
    );
  }
  const issuer = info.issuerCn ?? '';
  const ca: PckCa | undefined = /Platform CA/.test(issuer)
    ? 'platform'
    : /Processor CA/.test(issuer)
      ? 'processor'
      : undefined;
  if (ca === undefined) unsupported(`its PCK certificate is issued by ${JSON.stringify(issuer)}`);
  return { kind, fmspc: info.fmspc, ca, pckChain: chain };
}
