// The simulated AMD secure processor, on its own entry point (`donjon/attestation/sim`): it makes a simulated
// ARK -> ASK -> VCEK chain and signs SEV-SNP reports with it, so it can produce evidence, which the verifier
// entry (`donjon/attestation`) must not hand to a program that only means to verify. A verifier trusts what
// this signs only under a policy that names the simulated root's fingerprint (`trustSimulatedRoots`).

export { assembleSnpReport, encodeSnpReportBody, type SnpReportFields } from '../snp/encode.ts';
export { type SimReportInput, signSimReport } from './report.ts';
export {
  createSimRoot,
  parseSimRoot,
  SIM_ORGANIZATION,
  SIM_PRODUCT_NAME,
  type SimRootMaterial,
  serializeSimRoot,
} from './root.ts';
