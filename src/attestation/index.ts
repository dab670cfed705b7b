// Public API of the attestation library: parse and verify SEV-SNP reports and Intel DCAP quotes (SGX,
// TDX) with their collateral, and appraise them under a policy. It verifies and never signs: the simulated
// AMD secure processor, which can make evidence, is its own entry (sim/index.ts, `donjon/attestation/sim`).

export { type Crl, parseCrl } from './crl.ts';
export {
  type DcapCollateral,
  type IsvSvnLevel,
  parseDcapCollateral,
  parseQeIdentity,
  parseTcbInfo,
  type QeIdentity,
  splitPcsResponse,
  type TcbInfo,
  type TcbLevel,
  type TcbStatus,
  type TdxModuleExpectation,
  type TdxModuleIdentity,
  tcbStatuses,
} from './dcap/collateral.ts';
export type { PckInfo } from './dcap/pck.ts';
export {
  type DcapHeader,
  type DcapQuote,
  detectEvidenceKind,
  INTEL_QE_VENDOR_ID,
  parseDcapQuote,
  type SgxQuote,
  type SgxReportBody,
  type TdReportBody,
  type TdxQuote,
} from './dcap/quote.ts';
export type { StatusPart, TcbEvaluation } from './dcap/tcb.ts';
export { type DcapVerified, type DcapVerifyOptions, verifyDcapQuote } from './dcap/verify.ts';
export {
  AttestationError,
  type AttestationErrorCode,
  attestationErrorCodes,
  isAttestationError,
} from './errors.ts';
export {
  checkDcapPolicy,
  checkSnpPolicy,
  type MinTcb,
  type Policy,
  parsePolicy,
  type RtmrPolicy,
} from './policy.ts';
export {
  type AmdCertificate,
  type AmdProduct,
  amdCertificates,
  defaultRoots,
  intelRootCertificate,
  type TrustRoots,
} from './roots.ts';
export {
  parseSnpReport,
  SNP_POLICY,
  SNP_REPORT_SIZE,
  SNP_SIGNED_SIZE,
  type SnpReport,
  type SnpTcb,
  type SnpTcbParts,
} from './snp/report.ts';
export { snpTcb } from './snp/tcb.ts';
export type { VekInfo } from './snp/vek.ts';
export {
  type SnpCertificates,
  type SnpProduct,
  type SnpVerified,
  type SnpVerifyOptions,
  verifySnpReport,
} from './snp/verify.ts';
export {
  type Claims,
  type ClaimsTcb,
  type DcapClaims,
  type DcapEvidence,
  type Evidence,
  type SgxClaims,
  type SnpClaims,
  type SnpEvidence,
  type TdxClaims,
  type VerifyOptions,
  verify,
} from './verify.ts';
