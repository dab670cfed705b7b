// PEM for collateral: the strict reader and writer of src/lib/pem.ts with collateral's error code, and the
// Intel issuer-chain headers. Used for AMD certificate chains, Intel issuer-chain headers and the files a
// user hands to `donjon attest verify`.
import { type PemBlock, PemError, readPem, writePem } from '../../lib/pem.ts';
import { CollateralError } from './errors.ts';

function invalid(state: string, cause?: unknown): never {
  throw new CollateralError(
    'ERR_COLLATERAL_MALFORMED',
    `Cannot read PEM: ${state}`,
    cause === undefined ? undefined : { cause },
  );
}

/** One decoded PEM block: its label (e.g. `CERTIFICATE`, `X509 CRL`) and its DER. */
export type { PemBlock };

/**
 * Every PEM block of `text`, in order (the strict reader of src/lib/pem.ts). Text around the blocks is
 * ignored (PEM bundles often carry comments); a block whose END label differs from its BEGIN label or whose
 * body is not canonical base64 fails with ERR_COLLATERAL_MALFORMED.
 */
export function pemBlocks(text: string): PemBlock[] {
  try {
    return readPem(text);
  } catch (cause) {
    if (cause instanceof PemError) invalid(cause.detail, cause);
    throw cause;
  }
}

/** DER of every `CERTIFICATE` block of `text`, in order; other blocks are skipped. */
export function pemCertificates(text: string): Uint8Array[] {
  return pemBlocks(text)
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => b.der);
}

/** PEM text of one DER object (64-column base64, as OpenSSL writes it): the writer of src/lib/pem.ts. */
export { writePem as toPem };

/**
 * The certificates of an Intel PCS issuer-chain header (`SGX-PCK-CRL-Issuer-Chain`,
 * `TCB-Info-Issuer-Chain`, `SGX-Enclave-Identity-Issuer-Chain`): URL-encoded PEM, signer first, then the
 * root. Returns the decoded PEM text (what collateral files carry) after checking it holds at least one
 * certificate.
 */
export function decodeIssuerChainHeader(value: string): string {
  let text: string;
  try {
    text = decodeURIComponent(value);
  } catch (cause) {
    return invalid('the issuer chain header is not URL-encoded', cause);
  }
  if (pemCertificates(text).length === 0) invalid('the issuer chain header holds no certificate');
  return text;
}
