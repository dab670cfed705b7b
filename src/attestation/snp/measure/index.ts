// Public API of the SEV-SNP launch-digest computation: what `donjon measure snp` prints and what a policy's
// `measurements` lists for a guest launched from OVMF.

export { type SnpLaunchInput, snpLaunchDigest } from './digest.ts';
export {
  isSnpMeasureError,
  SnpMeasureError,
  type SnpMeasureErrorCode,
  snpMeasureErrorCodes,
} from './errors.ts';
export { LaunchDigest, PAGE_TYPE, VMSA_GPA } from './gctx.ts';
export { efiGuidBytes, efiGuidText } from './guid.ts';
export {
  type DirectBoot,
  directBootHashes,
  SEV_HASH_GUID,
  SEV_HASH_TABLE_SIZE,
  sevHashTable,
} from './hashes.ts';
export {
  OVMF_GUID,
  type OvmfImage,
  type OvmfSection,
  parseOvmf,
  SECTION_TYPE,
  type SectionKind,
} from './ovmf.ts';
export { cpuSignature, VCPU_SIGNATURES, vcpuSignature } from './vcpu.ts';
export { BSP_EIP, buildVmsa, VMM_TYPES, type VmmType, type VmsaInput } from './vmsa.ts';
