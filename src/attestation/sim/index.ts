// The simulators, on their own entry point (`donjon/attestation/sim`): the simulated AMD secure processor
// (an ARK -> ASK -> VCEK chain signing SEV-SNP reports) and the simulated Intel SGX platform (a PCK chain and
// quoting enclave making SGX quotes, and the collateral for them). They produce evidence, which the verifier
// entry (`donjon/attestation`) must not hand to a program that only means to verify. A verifier trusts what
// they sign only under a policy that names the simulated root's fingerprint (`trustSimulatedRoots`).

export { assembleSnpReport, encodeSnpReportBody, type SnpReportFields } from '../snp/encode.ts';
export {
  assembleQuote,
  chainPem,
  ecCert,
  ecCrl,
  type PlatformSpec,
  type QuoteParts,
  rawSign,
  sgxBody,
  sgxExtension,
} from './dcap.ts';
export {
  createSimIntelPlatform,
  parseSimIntelPlatform,
  type SimIntelPlatform,
  type SimQeIdentity,
  serializeSimIntelPlatform,
} from './intel.ts';
export {
  makeSimSgxQuote,
  SIM_COLLATERAL_DAYS,
  SIM_ENCLAVE_MRSIGNER,
  type SimQuoteInput,
  simSgxCollateral,
} from './qe.ts';
export { type SimReportInput, signSimReport } from './report.ts';
export {
  createSimRoot,
  parseSimRoot,
  SIM_ORGANIZATION,
  SIM_PRODUCT_NAME,
  type SimRootMaterial,
  serializeSimRoot,
} from './root.ts';
