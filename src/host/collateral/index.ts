// Public API of collateral fetching: AMD KDS and Intel PCS clients with a cache directory, for the Keep
// Loader (which supplies the VCEK chain with a Keep's evidence) and for `donjon attest verify --fetch`.

export {
  type CacheEntry,
  CollateralCache,
  cacheFileName,
  decodeCacheEntry,
  encodeCacheEntry,
} from './cache.ts';
export {
  CollateralClient,
  type CollateralClientOptions,
  collateralChannel,
  type QuoteCollateralJson,
  type SignedCollateral,
} from './client.ts';
export {
  CollateralError,
  type CollateralErrorCode,
  collateralErrorCodes,
  isCollateralError,
} from './errors.ts';
export { type FetchLike, httpChannel, httpGet, MAX_RETRY_DELAY_MS, type RawResponse } from './http.ts';
export { certChainPath, KDS_URL, kdsCrlPath, snpProductOf, vcekPath } from './kds.ts';
export {
  INTEL_ROOT_CA_CRL_URL,
  ISSUER_CHAIN_HEADERS,
  PCS_URL,
  type PckCa,
  pckCrlPath,
  qeIdentityPath,
  type TeeKind,
  tcbInfoPath,
} from './pcs.ts';
export { decodeIssuerChainHeader, type PemBlock, pemBlocks, pemCertificates, toPem } from './pem.ts';
export { type DcapFetchParameters, dcapFetchParameters } from './quote.ts';
export { rawJsonMembers, type SignedJson, splitSignedJson } from './signed-json.ts';
export { type CertificateInfo, type CrlInfo, certificateInfo, crlInfo } from './x509-info.ts';
