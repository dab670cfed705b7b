import type { DcapCollateral } from '../attestation/index.ts';
import { isRecord } from '../lib/json.ts';
import { decode, encode } from '../protocol/cbor.ts';
import { RatlsError } from './errors.ts';

/** id-pe-cmw: the IANA-assigned PKIX extension for RATS conceptual message wrappers. */
export const ID_PE_CMW = '1.3.6.1.5.5.7.1.35';

/** The domain string that opens every report_data preimage, so a report made for Donjon means nothing elsewhere. */
export const BINDING_DOMAIN = 'donjon/keep/v1';

/**
 * The domain of a service's evidence: a Keep serving its workload on a `tls` listen file binds its key to the
 * workload and its configuration rather than to one client's nonce. A distinct domain, so neither kind of
 * certificate can stand for the other.
 */
export const SERVICE_BINDING_DOMAIN = 'donjon/service/v1';

/**
 * The separator that opens the signers' part of a service's report_data preimage, after `artifact`: a service
 * binding without signers ends right after `artifact`, so no preimage of the old layout can be read as one
 * with signers (see {@link ServiceBinding.signers}).
 */
export const SIGNERS_DOMAIN = 'donjon/signers/v1';

/**
 * The most signers a binding may name: one per verifying key that verified a signature, and the Keep reads at
 * most 64 signatures of a manifest (the registry's MAX_SIGNATURES).
 */
export const MAX_SIGNERS = 64;

/** Media types of the records inside the collection (vendor tree until registered ones exist). */
export const MEDIA_TYPES = {
  'sev-snp': 'application/vnd.donjon.sev-snp-report',
  tdx: 'application/vnd.donjon.tdx-quote',
  sgx: 'application/vnd.donjon.sgx-quote',
  certs: 'application/vnd.donjon.cert-chain+cbor',
  binding: 'application/vnd.donjon.report-data-binding+cbor',
  collateral: 'application/vnd.donjon.dcap-collateral+cbor',
} as const;

/**
 * Evidence as carried by a Keep certificate: the raw SNP report or TDX or SGX quote, the certificates the host
 * supplied (DER; none for a quote, which carries its PCK chain), and for a quote the DCAP collateral the host
 * fetched from Intel's PCS (its encoding, {@link encodeDcapCollateral}). The Keep carries what the host gave
 * without reading it: everything in it is signed by Intel and checked by the relying party.
 */
export interface CarriedEvidence {
  kind: 'sev-snp' | 'tdx' | 'sgx';
  report: Uint8Array;
  certs: Uint8Array[];
  collateral?: Uint8Array;
}

/** The claims behind a channel's report_data: report_data = SHA-512(domain ‖ spki ‖ nonce). */
export interface Binding {
  domain: string;
  spki: Uint8Array;
  nonce: Uint8Array;
}

/**
 * The claims behind a service's report_data: report_data = SHA-512(domain ‖ spki ‖ workload ‖ config), where
 * `workload` is the SHA-256 of the Wasm module and `config` the SHA-256 of its configuration (32 bytes each).
 */
export interface ServiceBinding {
  domain: string;
  spki: Uint8Array;
  workload: Uint8Array;
  config: Uint8Array;
  /**
   * The registry manifest the workload was deployed from, when it was (the 32 bytes of its `sha256:` digest):
   * then report_data = SHA-512(domain ‖ spki ‖ workload ‖ config ‖ artifact).
   */
  artifact?: Uint8Array;
  /**
   * Who signed that artifact, when its signature verified in the Keep: the SHA-256 of the DER
   * SubjectPublicKeyInfo of each verifying key under which a signature of this manifest verified (32 bytes
   * each, sorted by their bytes, no duplicates, 1 to {@link MAX_SIGNERS}; only with `artifact`). Then
   * report_data = SHA-512(domain ‖ spki ‖ workload ‖ config ‖ artifact ‖ "donjon/signers/v1" ‖ n ‖ signer_1 ‖
   * … ‖ signer_n), n one byte: the old layout ends at `artifact`, so it cannot be read as this one.
   */
  signers?: Uint8Array[];
}

export interface CmwContents {
  evidence: CarriedEvidence;
  binding: Binding | ServiceBinding;
}

/** Whether a binding is a service's (workload and configuration) rather than a channel's (nonce). */
export function isServiceBinding(binding: Binding | ServiceBinding): binding is ServiceBinding {
  return 'workload' in binding;
}

/** The field sets of a service binding, sorted: without an artifact, with one, with its signers too. */
const SERVICE_FIELDS = [
  'config,domain,spki,workload',
  'artifact,config,domain,spki,workload',
  'artifact,config,domain,signers,spki,workload',
];

const COLLECTION_KEYS = ['binding', 'certs', 'evidence'];
const COLLECTION_KEYS_WITH_COLLATERAL = ['binding', 'certs', 'collateral', 'evidence'];

const TEXT_FIELDS = [
  'pckCrlIssuerChain',
  'tcbInfoIssuerChain',
  'tcbInfo',
  'qeIdentityIssuerChain',
  'qeIdentity',
] as const;
const BYTE_FIELDS = ['rootCaCrl', 'pckCrl', 'tcbInfoSignature', 'qeIdentitySignature'] as const;
const COLLATERAL_FIELDS = [...TEXT_FIELDS, ...BYTE_FIELDS].sort();

function bytesOf(v: Uint8Array | string): Uint8Array {
  return typeof v === 'string' ? new Uint8Array(Buffer.from(v, 'hex')) : v;
}

/**
 * Encodes DCAP collateral for a Keep certificate's `collateral` record: a CBOR map with the nine fields of
 * {@link DcapCollateral}, texts as text (the signed JSON exactly as Intel served it), CRLs and signatures as
 * bytes.
 */
export function encodeDcapCollateral(collateral: DcapCollateral): Uint8Array {
  const out: Record<string, string | Uint8Array> = {};
  for (const k of TEXT_FIELDS) out[k] = collateral[k];
  for (const k of BYTE_FIELDS) out[k] = bytesOf(collateral[k]);
  return encode(out);
}

/**
 * Decodes a `collateral` record. Only the shape is checked here; the relying party's verifier checks every
 * signature, chain and validity window. Throws RatlsError ERR_KEEP_CERT_MALFORMED.
 */
export function decodeDcapCollateral(bytes: Uint8Array): DcapCollateral {
  let v: unknown;
  try {
    v = decode(bytes, { maxBytes: 1 << 20, maxDepth: 2 });
  } catch (cause) {
    throw malformed('the DCAP collateral is not canonical CBOR', cause);
  }
  if (!isRecord(v) || Object.keys(v).sort().join() !== COLLATERAL_FIELDS.join()) {
    throw malformed(`the DCAP collateral is not a map of ${COLLATERAL_FIELDS.join(', ')}`);
  }
  for (const k of TEXT_FIELDS) {
    if (typeof v[k] !== 'string') throw malformed(`the DCAP collateral's ${k} is not text`);
  }
  for (const k of BYTE_FIELDS) {
    if (!(v[k] instanceof Uint8Array)) throw malformed(`the DCAP collateral's ${k} is not bytes`);
  }
  const out: Record<string, unknown> = {};
  for (const k of COLLATERAL_FIELDS) out[k] = v[k];
  return out as unknown as DcapCollateral;
}

/** Encodes the CMW collection (CBOR form) that a Keep certificate carries in its id-pe-cmw extension. */
export function encodeCmw(contents: CmwContents): Uint8Array {
  const { collateral } = contents.evidence;
  const { binding } = contents;
  if (isServiceBinding(binding) && binding.signers !== undefined) {
    const why = signersProblem(binding.signers, binding.artifact !== undefined);
    if (why !== undefined) throw new RangeError(`Cannot encode the binding: its signers ${why}`);
  }
  if (collateral !== undefined && contents.evidence.kind === 'sev-snp') {
    throw new TypeError('Cannot encode the evidence: only a DCAP quote carries DCAP collateral');
  }
  return encode({
    ...(collateral === undefined ? {} : { collateral: [MEDIA_TYPES.collateral, collateral] }),
    evidence: [MEDIA_TYPES[contents.evidence.kind], contents.evidence.report],
    certs: [MEDIA_TYPES.certs, encode(contents.evidence.certs)],
    binding: [
      MEDIA_TYPES.binding,
      encode(
        isServiceBinding(contents.binding)
          ? {
              domain: contents.binding.domain,
              spki: contents.binding.spki,
              workload: contents.binding.workload,
              config: contents.binding.config,
              ...(contents.binding.artifact === undefined ? {} : { artifact: contents.binding.artifact }),
              ...(contents.binding.signers === undefined ? {} : { signers: contents.binding.signers }),
            }
          : { domain: contents.binding.domain, spki: contents.binding.spki, nonce: contents.binding.nonce },
      ),
    ],
  });
}

function malformed(what: string, cause?: unknown): RatlsError {
  return new RatlsError('ERR_KEEP_CERT_MALFORMED', `Cannot read the Keep certificate's evidence: ${what}`, {
    cause,
  });
}

function cmwRecord(collection: Record<string, unknown>, label: string): [string, Uint8Array] {
  const rec = collection[label];
  if (
    !Array.isArray(rec) ||
    rec.length !== 2 ||
    typeof rec[0] !== 'string' ||
    !(rec[1] instanceof Uint8Array)
  ) {
    throw malformed(`record "${label}" is not a [media-type, bytes] pair`);
  }
  return [rec[0], rec[1]];
}

/** Decodes and checks the shape of a CMW collection; it says nothing yet about whether the evidence is genuine. */
export function decodeCmw(bytes: Uint8Array): CmwContents {
  let collection: unknown;
  try {
    collection = decode(bytes, { maxBytes: 1 << 20, maxDepth: 4 });
  } catch (cause) {
    throw malformed('the extension is not canonical CBOR', cause);
  }
  if (!isRecord(collection)) throw malformed('the collection is not a map');
  const keys = Object.keys(collection).sort().join();
  if (keys !== COLLECTION_KEYS.join() && keys !== COLLECTION_KEYS_WITH_COLLATERAL.join()) {
    throw malformed(`unexpected labels ${keys}`);
  }

  const [evidenceType, report] = cmwRecord(collection, 'evidence');
  const kind =
    evidenceType === MEDIA_TYPES['sev-snp']
      ? 'sev-snp'
      : evidenceType === MEDIA_TYPES.tdx
        ? 'tdx'
        : evidenceType === MEDIA_TYPES.sgx
          ? 'sgx'
          : undefined;
  if (kind === undefined) throw malformed(`unsupported evidence type ${evidenceType}`);

  const [certsType, certsBytes] = cmwRecord(collection, 'certs');
  if (certsType !== MEDIA_TYPES.certs) throw malformed(`unexpected certificate chain type ${certsType}`);
  let certs: unknown;
  try {
    certs = decode(certsBytes, { maxDepth: 2 });
  } catch (cause) {
    throw malformed('the certificate chain is not canonical CBOR', cause);
  }
  if (!Array.isArray(certs) || certs.length > 8 || !certs.every((c) => c instanceof Uint8Array)) {
    throw malformed('the certificate chain is not an array of DER certificates');
  }

  const [bindingType, bindingBytes] = cmwRecord(collection, 'binding');
  if (bindingType !== MEDIA_TYPES.binding) throw malformed(`unexpected binding type ${bindingType}`);
  let binding: unknown;
  try {
    binding = decode(bindingBytes, { maxDepth: 2 });
  } catch (cause) {
    throw malformed('the binding is not canonical CBOR', cause);
  }
  if (
    !isRecord(binding) ||
    typeof binding['domain'] !== 'string' ||
    !(binding['spki'] instanceof Uint8Array)
  ) {
    throw malformed('the binding is not { domain, spki, nonce } or { domain, spki, workload, config }');
  }
  const fields = Object.keys(binding).sort().join();
  const evidence: CarriedEvidence = { kind, report, certs: certs as Uint8Array[] };
  if (collection['collateral'] !== undefined) {
    const [collateralType, collateral] = cmwRecord(collection, 'collateral');
    if (collateralType !== MEDIA_TYPES.collateral)
      throw malformed(`unexpected collateral type ${collateralType}`);
    if (kind === 'sev-snp') throw malformed('DCAP collateral comes with evidence that is not a DCAP quote');
    decodeDcapCollateral(collateral);
    evidence.collateral = collateral;
  }
  if (fields === 'domain,nonce,spki' && binding['nonce'] instanceof Uint8Array) {
    return {
      evidence,
      binding: { domain: binding['domain'], spki: binding['spki'], nonce: binding['nonce'] },
    };
  }
  const workload = binding['workload'];
  const config = binding['config'];
  const artifact = binding['artifact'];
  const signers = binding['signers'];
  if (
    SERVICE_FIELDS.includes(fields) &&
    is32(workload) &&
    is32(config) &&
    (artifact === undefined || is32(artifact))
  ) {
    const service: ServiceBinding = { domain: binding['domain'], spki: binding['spki'], workload, config };
    if (artifact !== undefined) service.artifact = artifact;
    if (signers !== undefined) {
      const why = signersProblem(signers, artifact !== undefined);
      if (why !== undefined) throw malformed(`its signers ${why}`);
      service.signers = signers as Uint8Array[];
    }
    return { evidence, binding: service };
  }
  throw malformed('the binding is not { domain, spki, nonce } or { domain, spki, workload, config }');
}

function is32(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array && v.length === 32;
}

/**
 * Why `signers` is not a binding's list of signers, or undefined when it is: an array of 1 to
 * {@link MAX_SIGNERS} SHA-256 digests in ascending byte order without repeats, beside an artifact. One
 * encoding per set, so two certificates naming the same signers bind the same report_data.
 */
export function signersProblem(signers: unknown, withArtifact: boolean): string | undefined {
  if (!withArtifact) return 'come without the artifact they signed';
  if (!Array.isArray(signers) || signers.length === 0 || signers.length > MAX_SIGNERS)
    return `are not a list of 1 to ${MAX_SIGNERS} digests`;
  for (const [i, s] of signers.entries()) {
    if (!is32(s)) return `[${i}] is not a 32-byte SHA-256`;
    if (i > 0 && Buffer.compare(signers[i - 1] as Uint8Array, s) >= 0)
      return 'are not in ascending order without repeats';
  }
  return undefined;
}
