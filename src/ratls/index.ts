export {
  type KeepCertificate,
  type MakeKeepCertificateOptions,
  type MakeServiceCertificateOptions,
  makeKeepCertificate,
  makeServiceCertificate,
  readKeepCertificate,
  reportDataFor,
  spkiOf,
} from './certificate.ts';
export {
  BINDING_DOMAIN,
  type Binding,
  type CarriedEvidence,
  decodeDcapCollateral,
  encodeDcapCollateral,
  ID_PE_CMW,
  isServiceBinding,
  MAX_SIGNERS,
  MEDIA_TYPES,
  SERVICE_BINDING_DOMAIN,
  type ServiceBinding,
  SIGNERS_DOMAIN,
} from './cmw.ts';
export { RatlsError, type RatlsErrorCode, ratlsErrorCodes } from './errors.ts';
export { signerDigest } from './signer.ts';
export {
  type KeepExpectations,
  type KeepIdentity,
  type ServiceExpectations,
  type ServiceIdentity,
  verifyKeepCertificate,
  verifyServiceCertificate,
} from './verify.ts';
