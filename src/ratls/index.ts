export {
  type KeepCertificate,
  type MakeKeepCertificateOptions,
  makeKeepCertificate,
  readKeepCertificate,
  reportDataFor,
  spkiOf,
} from './certificate.ts';
export { BINDING_DOMAIN, type Binding, type CarriedEvidence, ID_PE_CMW, MEDIA_TYPES } from './cmw.ts';
export { RatlsError, type RatlsErrorCode, ratlsErrorCodes } from './errors.ts';
export { type KeepExpectations, type KeepIdentity, verifyKeepCertificate } from './verify.ts';
