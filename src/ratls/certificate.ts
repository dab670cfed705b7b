import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';
import { AttestationError } from '../attestation/errors.ts';
import { type Certificate, parseCertificate } from '../attestation/x509.ts';
import {
  type CertificateExtension,
  makeSelfSignedCertificate,
  SIGNATURE_ALGORITHMS,
  spkiOf,
} from '../lib/certificate.ts';
import {
  BINDING_DOMAIN,
  type Binding,
  type CarriedEvidence,
  decodeCmw,
  encodeCmw,
  ID_PE_CMW,
  isServiceBinding,
  SERVICE_BINDING_DOMAIN,
  type ServiceBinding,
  SIGNERS_DOMAIN,
  signersProblem,
} from './cmw.ts';
import { RatlsError } from './errors.ts';

/**
 * How a Keep certificate may be signed, by its own key: ECDSA P-256 with SHA-256 (the Keep's key) or P-384 with
 * SHA-384, the curve always the one the algorithm goes with.
 */
const KEEP_SIGNATURES = [
  { algorithm: SIGNATURE_ALGORITHMS['ecdsa-sha256'], hash: 'sha256', curve: 'prime256v1' },
  { algorithm: SIGNATURE_ALGORITHMS['ecdsa-sha384'], hash: 'sha384', curve: 'secp384r1' },
] as const;
/** Certificates start a minute early, for a client whose clock is a little behind the Keep's. */
const SKEW_MS = 60_000;
const DAY_MS = 24 * 3600_000;

/**
 * report_data for a binding: SHA-512(domain ‖ SPKI DER ‖ nonce) for a channel, SHA-512(domain ‖ SPKI DER ‖
 * workload digest ‖ config digest [‖ artifact digest [‖ "donjon/signers/v1" ‖ n ‖ signer_1 ‖ … ‖ signer_n]])
 * for a service, n being the number of signers in one byte. The domains are UTF-8; the other parts are their
 * bytes. Every part but the self-delimiting DER has a fixed length or, for the signers, a separator and a
 * count, so each preimage has one reading: a binding without signers hashes exactly as it did before they
 * existed.
 */
export function reportDataFor(binding: Binding | ServiceBinding): Uint8Array {
  const h = createHash('sha512').update(binding.domain).update(binding.spki);
  if (isServiceBinding(binding)) {
    h.update(binding.workload).update(binding.config);
    if (binding.artifact !== undefined) h.update(binding.artifact);
    if (binding.signers !== undefined) {
      const why = signersProblem(binding.signers, binding.artifact !== undefined);
      if (why !== undefined) throw new RangeError(`Cannot bind the signers: they ${why}`);
      h.update(SIGNERS_DOMAIN).update(Uint8Array.of(binding.signers.length));
      for (const signer of binding.signers) h.update(signer);
    }
  } else h.update(binding.nonce);
  return new Uint8Array(h.digest());
}

/** The SubjectPublicKeyInfo (DER) of a public key, or of the public half of a private key. */
export { spkiOf };

/** The id-pe-cmw extension carrying `cmw`: non-critical, so generic TLS stacks can still complete the handshake. */
function cmwExtension(cmw: Uint8Array): CertificateExtension {
  return { oid: ID_PE_CMW, value: cmw };
}

export interface MakeKeepCertificateOptions {
  /** The Keep's ECDSA private key (P-256, or P-384); the certificate is self-signed with it. */
  privateKey: KeyObject;
  /** Evidence whose report_data binds this key; absent for a `nil` Keep, which has none. */
  evidence?: CarriedEvidence;
  /** The client's nonce the evidence was made for. */
  nonce: Uint8Array;
  now: Date;
}

/**
 * Makes the Keep's one-use self-signed certificate, carrying its evidence and the report_data preimage in an
 * id-pe-cmw extension (non-critical, so generic TLS stacks can still complete the handshake).
 */
export function makeKeepCertificate(options: MakeKeepCertificateOptions): Uint8Array {
  const spki = spkiOf(options.privateKey);
  const extensions: CertificateExtension[] = [];
  if (options.evidence) {
    const binding = { domain: BINDING_DOMAIN, spki, nonce: options.nonce };
    extensions.push(cmwExtension(encodeCmw({ evidence: options.evidence, binding })));
  }
  return makeSelfSignedCertificate({
    privateKey: options.privateKey,
    subject: options.evidence ? 'Donjon Keep' : 'Donjon Keep (nil, not attested)',
    notBefore: new Date(options.now.getTime() - SKEW_MS),
    notAfter: new Date(options.now.getTime() + DAY_MS),
    extensions,
  });
}

/** The parts of a service certificate. */
export interface MakeServiceCertificateOptions {
  /** The Keep's ECDSA private key (P-256, or P-384). */
  privateKey: KeyObject;
  /** Evidence whose report_data binds this key, the workload and its configuration; absent for a `nil` Keep. */
  evidence?: CarriedEvidence;
  /** SHA-256 of the Wasm module. */
  workload: Uint8Array;
  /** SHA-256 of the workload's configuration (see the protocol's configDigest). */
  config: Uint8Array;
  /** The registry manifest digest's 32 bytes, when the workload was deployed from a registry artifact. */
  artifact?: Uint8Array;
  /**
   * SHA-256 of the SPKI of each key whose signature of that artifact verified in the Keep (sorted, no
   * repeats; see {@link ServiceBinding.signers}); only with `artifact`.
   */
  signers?: Uint8Array[];
  now: Date;
  /** How long the certificate is valid; default 24 hours. */
  validityMs?: number;
}

/**
 * Makes the certificate a Keep serves on its workload's `tls` listen files: self-signed with the Keep's key,
 * carrying evidence bound to that key, the workload's digest and its configuration's digest (a
 * {@link ServiceBinding} in the id-pe-cmw extension). Its common name names the workload digest too, for a
 * person reading a browser's certificate viewer.
 */
export function makeServiceCertificate(options: MakeServiceCertificateOptions): Uint8Array {
  if (options.workload.length !== 32 || options.config.length !== 32) {
    throw new RangeError('Cannot make a service certificate: the digests must be 32 bytes each');
  }
  const spki = spkiOf(options.privateKey);
  const short = Buffer.from(options.workload).toString('hex').slice(0, 16);
  const extensions: CertificateExtension[] = [];
  if (options.evidence) {
    const binding = {
      domain: SERVICE_BINDING_DOMAIN,
      spki,
      workload: options.workload,
      config: options.config,
      ...(options.artifact === undefined ? {} : { artifact: options.artifact }),
      ...(options.signers === undefined ? {} : { signers: options.signers }),
    };
    extensions.push(cmwExtension(encodeCmw({ evidence: options.evidence, binding })));
  }
  return makeSelfSignedCertificate({
    privateKey: options.privateKey,
    subject: options.evidence ? `Donjon service ${short}` : `Donjon service ${short} (nil, not attested)`,
    notBefore: new Date(options.now.getTime() - SKEW_MS),
    notAfter: new Date(options.now.getTime() + (options.validityMs ?? DAY_MS)),
    extensions,
  });
}

/** What a Keep certificate says about itself, before any of it is trusted. */
export interface KeepCertificate {
  der: Uint8Array;
  spki: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** Absent for a certificate without evidence (a `nil` Keep). */
  cmw?: { evidence: CarriedEvidence; binding: Binding | ServiceBinding };
}

function selfSigned(cert: Certificate): boolean {
  const algorithm = Buffer.from(cert.signatureAlgorithm);
  const kind = KEEP_SIGNATURES.find((k) => algorithm.equals(k.algorithm));
  if (kind === undefined) return false;
  try {
    const key = createPublicKey({ key: Buffer.from(cert.spki), format: 'der', type: 'spki' });
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== kind.curve) return false;
    return verify(kind.hash, cert.tbs, { key, dsaEncoding: 'der' }, cert.signatureValue);
  } catch {
    return false;
  }
}

/**
 * Parses a Keep certificate and checks what needs no trust anchor: it is signed by its own key (ECDSA P-256 with
 * SHA-256, or P-384 with SHA-384), and its id-pe-cmw extension, when present, is well formed and not critical.
 */
export function readKeepCertificate(der: Uint8Array): KeepCertificate {
  let cert: Certificate;
  try {
    cert = parseCertificate(der);
  } catch (cause) {
    if (!(cause instanceof AttestationError)) throw cause;
    throw new RatlsError('ERR_KEEP_CERT_MALFORMED', `Cannot read the Keep certificate: ${cause.message}`, {
      cause,
    });
  }
  if (!selfSigned(cert)) {
    throw new RatlsError(
      'ERR_KEEP_CERT_NOT_SELF_SIGNED',
      'Cannot trust the Keep certificate: it is not signed by its own key (ECDSA P-256 with SHA-256, or P-384 with SHA-384)',
    );
  }
  const result: KeepCertificate = {
    der,
    spki: cert.spki,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
  const ext = cert.extensions.get(ID_PE_CMW);
  if (ext) {
    if (ext.critical) {
      throw new RatlsError(
        'ERR_KEEP_CERT_MALFORMED',
        'Cannot read the Keep certificate: its evidence extension is critical',
      );
    }
    result.cmw = decodeCmw(ext.value);
  }
  return result;
}
