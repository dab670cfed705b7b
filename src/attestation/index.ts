// Public API of the attestation library: parse and verify SEV-SNP evidence, appraise it under a policy,
// and the simulated AMD secure processor used on machines without a TEE.

export {
  AttestationError,
  type AttestationErrorCode,
  attestationErrorCodes,
  isAttestationError,
} from './errors.ts';
export { checkSnpPolicy, type MinTcb, type Policy, parsePolicy } from './policy.ts';
export {
  type AmdCertificate,
  type AmdProduct,
  amdCertificates,
  defaultRoots,
  type TrustRoots,
} from './roots.ts';
export { type SimReportInput, signSimReport } from './sim/report.ts';
export {
  createSimRoot,
  parseSimRoot,
  SIM_ORGANIZATION,
  SIM_PRODUCT_NAME,
  type SimRootMaterial,
  serializeSimRoot,
} from './sim/root.ts';
export { assembleSnpReport, encodeSnpReportBody, type SnpReportFields } from './snp/encode.ts';
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
  type Evidence,
  type SnpClaims,
  type SnpEvidence,
  type VerifyOptions,
  verify,
} from './verify.ts';
