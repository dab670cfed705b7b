// A test-only Intel PKI and quote factory: a test "Intel SGX Root CA" (never pinned by default), PCK CA,
// PCK certificate with SGX extensions, TCB signing key, CRLs, quotes of every supported version signed
// end to end, and TCB info / QE identity JSON signed over their exact text. It lets tests reach every
// branch real samples cannot (revoked PCKs, statuses, module identities) with a root passed in `roots`.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { tryFromHex } from '../../../src/attestation/bytes.ts';
import type { DcapCollateral } from '../../../src/attestation/dcap/collateral.ts';
import type { TrustRoots } from '../../../src/attestation/roots.ts';
import {
  authorityKeyIdentifier,
  basicConstraintsCa,
  keyIdentifier,
  keyUsageCertSign,
  subjectKeyIdentifier,
} from '../../../src/attestation/sim/cert.ts';
import {
  assembleQuote,
  chainPem,
  ecCert,
  ecCrl,
  type PlatformSpec,
  rawSign,
  SGX_EXTENSION_OID,
  sgxBody,
  sgxExtension,
} from '../../../src/attestation/sim/dcap.ts';
import { OID } from '../../../src/attestation/x509.ts';
import { oid, sequence, set, TAG, tlv, utf8String } from '../../../src/lib/der.ts';
import { writePem } from '../../../src/lib/pem.ts';

// The building blocks of Intel's PKI and quotes are the simulator's; the forge re-exports them for the tests.
export {
  type CrlSpec,
  chainPem,
  ECDSA_SHA256,
  type EcCertSpec,
  ecCert,
  ecCrl,
  ecSign,
  INTEL_VENDOR,
  type PlatformSpec,
  rawSign,
  type SgxBodySpec,
  sgxBody,
  sgxExtension,
} from '../../../src/attestation/sim/dcap.ts';

const SGX = SGX_EXTENSION_OID;

/** A P-256 key pair with its SPKI DER and raw public point (x || y). */
export interface EcKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  spki: Uint8Array;
  raw: Uint8Array;
}

/** A fresh P-256 key pair. */
export function ecKey(): EcKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
  return { privateKey, publicKey, spki, raw: spki.subarray(spki.byteLength - 64) };
}

/** A name in Intel's layout: CN, O, L, ST, C. */
export function intelName(cn: string): Uint8Array {
  const attr = (type: string, value: string) => set(sequence(oid(type), utf8String(value)));
  return sequence(
    attr(OID.commonName, cn),
    attr(OID.organization, 'Intel Corporation'),
    attr(OID.locality, 'Santa Clara'),
    attr(OID.state, 'CA'),
    attr(OID.country, 'US'),
  );
}

/** An issued test certificate with its key. */
export interface Issued {
  der: Uint8Array;
  key: EcKey;
  serial: bigint;
}

/** A whole test Intel PKI. */
export interface TestPki {
  root: Issued;
  pckCa: Issued;
  pck: Issued;
  tcbSigner: Issued;
  /** Roots pinning the test root (and nothing else). */
  roots: TrustRoots;
  rootName: Uint8Array;
  caName: Uint8Array;
  platform: PlatformSpec;
}

/** Default validity of the test PKI: the whole of 2025. */
export const PKI_FROM = new Date('2025-01-01T00:00:00Z');
export const PKI_TO = new Date('2026-01-01T00:00:00Z');

/** The SGX platform of the default scenario (components and PCE SVN the PCK is issued for). */
export const PLATFORM: PlatformSpec = {
  fmspc: '00a067110000',
  pceId: '0000',
  components: [5, 5, 2, 2, 4, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0],
  pceSvn: 13,
};

/**
 * A test PKI: root -> PCK Platform CA -> PCK certificate, and root -> TCB signing certificate, all
 * ECDSA P-256 in Intel's name layout. `pckExtension` replaces the PCK's SGX extension value.
 */
export function makePki(
  options: {
    platform?: PlatformSpec;
    pckExtension?: Uint8Array;
    pckValidity?: [Date, Date];
    pckCn?: string;
    caCn?: string;
  } = {},
): TestPki {
  const platform = options.platform ?? PLATFORM;
  const rootKey = ecKey();
  const caKey = ecKey();
  const pckKey = ecKey();
  const tcbKey = ecKey();
  const rootName = intelName('Intel SGX Root CA');
  const caName = intelName(options.caCn ?? 'Intel SGX PCK Platform CA');
  const rootId = keyIdentifier(rootKey.spki);
  const root: Issued = {
    key: rootKey,
    serial: 0x1001n,
    der: ecCert({
      serial: 0x1001n,
      issuer: rootName,
      subject: rootName,
      notBefore: new Date('2018-01-01T00:00:00Z'),
      notAfter: new Date('2049-12-31T23:59:59Z'),
      spki: rootKey.spki,
      extensions: [
        authorityKeyIdentifier(rootId),
        subjectKeyIdentifier(rootId),
        keyUsageCertSign(true),
        basicConstraintsCa(1),
      ],
      issuerKey: rootKey.privateKey,
    }),
  };
  const pckCa: Issued = {
    key: caKey,
    serial: 0x2002n,
    der: ecCert({
      serial: 0x2002n,
      issuer: rootName,
      subject: caName,
      notBefore: new Date('2018-01-01T00:00:00Z'),
      notAfter: new Date('2033-01-01T00:00:00Z'),
      spki: caKey.spki,
      extensions: [
        authorityKeyIdentifier(rootId),
        subjectKeyIdentifier(keyIdentifier(caKey.spki)),
        keyUsageCertSign(true),
        basicConstraintsCa(0),
      ],
      issuerKey: rootKey.privateKey,
    }),
  };
  const [from, to] = options.pckValidity ?? [PKI_FROM, PKI_TO];
  const pck: Issued = {
    key: pckKey,
    serial: 0x3003n,
    der: ecCert({
      serial: 0x3003n,
      issuer: caName,
      subject: intelName(options.pckCn ?? 'Intel SGX PCK Certificate'),
      notBefore: from,
      notAfter: to,
      spki: pckKey.spki,
      extensions: [
        authorityKeyIdentifier(keyIdentifier(caKey.spki)),
        subjectKeyIdentifier(keyIdentifier(pckKey.spki)),
        { oid: OID.keyUsage, critical: true, value: tlv(TAG.BIT_STRING, Uint8Array.of(0x06, 0xc0)) },
        { oid: OID.basicConstraints, critical: true, value: sequence() },
        { oid: SGX, value: options.pckExtension ?? sgxExtension(platform, { platformCa: true }) },
      ],
      issuerKey: caKey.privateKey,
    }),
  };
  const tcbSigner: Issued = {
    key: tcbKey,
    serial: 0x4004n,
    der: ecCert({
      serial: 0x4004n,
      issuer: rootName,
      subject: intelName('Intel SGX TCB Signing'),
      notBefore: new Date('2018-01-01T00:00:00Z'),
      notAfter: new Date('2032-01-01T00:00:00Z'),
      spki: tcbKey.spki,
      extensions: [
        authorityKeyIdentifier(rootId),
        subjectKeyIdentifier(keyIdentifier(tcbKey.spki)),
        { oid: OID.keyUsage, critical: true, value: tlv(TAG.BIT_STRING, Uint8Array.of(0x06, 0xc0)) },
        { oid: OID.basicConstraints, critical: true, value: sequence() },
      ],
      issuerKey: rootKey.privateKey,
    }),
  };
  return {
    root,
    pckCa,
    pck,
    tcbSigner,
    roots: { amdArks: [], simulatedArkFingerprints: [], intelRoots: [root.der] },
    rootName,
    caName,
    platform,
  };
}

/** TD report body fields a test sets; the rest are zero. */
export interface TdBodySpec {
  teeTcbSvn?: Uint8Array;
  mrSignerSeam?: Uint8Array;
  seamAttributes?: Uint8Array;
  tdAttributes?: Uint8Array;
  mrTd?: Uint8Array;
  rtmrs?: Uint8Array[];
  reportData?: Uint8Array;
  teeTcbSvn2?: Uint8Array;
}

/** A TD report body of 584 (TDX 1.0) or 648 (TDX 1.5) bytes. */
export function tdBody(spec: TdBodySpec, size: 584 | 648 = 584): Uint8Array {
  const b = new Uint8Array(size);
  b.set(spec.teeTcbSvn ?? Uint8Array.of(6, 1, 3), 0);
  b.set(new Uint8Array(48).fill(0x5e), 16);
  if (spec.mrSignerSeam) b.set(spec.mrSignerSeam, 64);
  if (spec.seamAttributes) b.set(spec.seamAttributes, 112);
  b.set(spec.tdAttributes ?? tryFromHex('0000001000000000')!, 120);
  b.set(tryFromHex('e718060000000000')!, 128);
  b.set(spec.mrTd ?? new Uint8Array(48).fill(0x7d), 136);
  for (const [i, r] of (spec.rtmrs ?? []).entries()) b.set(r, 328 + 48 * i);
  if (spec.reportData) b.set(spec.reportData, 520);
  if (size === 648) b.set(spec.teeTcbSvn2 ?? Uint8Array.of(6, 1, 3), 584);
  return b;
}

/** MRSIGNER of Intel's quoting enclaves (SGX QE, TD QE). */
export const QE_MRSIGNER = {
  sgx: '8c4f5775d796503e96137f77c68a829a0056ac8ded70140b081b094490c57bff',
  tdx: 'dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5',
} as const;

/** The QE of the default scenario: Intel's QE/TD_QE shape (ISVPRODID 1 SGX, 2 TDX). */
export function qeBody(kind: 'sgx' | 'tdx', isvSvn = 8): Uint8Array {
  return sgxBody({
    attributes: tryFromHex('1500000000000000e700000000000000')!,
    mrEnclave: new Uint8Array(32).fill(0x9e),
    mrSigner: tryFromHex(QE_MRSIGNER[kind])!,
    isvProdId: kind === 'sgx' ? 1 : 2,
    isvSvn,
  });
}

/** What goes into a test quote. */
export interface QuoteSpec {
  version: 3 | 4 | 5;
  body: Uint8Array;
  qeReport: Uint8Array;
  pck: Issued;
  /** PEM text of the certification data (default: PCK, CA, root of `pki`). */
  chainPem: string;
  attestationKey?: EcKey;
  qeAuthData?: Uint8Array;
  /** Bytes appended after the quote. */
  trailer?: Uint8Array;
}

/** A quote signed end to end: QE report by the PCK key, binding the attestation key, which signs the quote. */
export function buildQuote(spec: QuoteSpec): Uint8Array {
  const ak = spec.attestationKey ?? ecKey();
  return assembleQuote({
    version: spec.version,
    body: spec.body,
    qeReport: spec.qeReport,
    pckKey: spec.pck.key.privateKey,
    chainPem: spec.chainPem,
    attestationKey: ak.privateKey,
    attestationKeyRaw: ak.raw,
    qeAuthData: spec.qeAuthData ?? new Uint8Array(32).fill(0xa7),
    ...(spec.trailer === undefined ? {} : { trailer: spec.trailer }),
  });
}

/** One TCB level of a test TCB info. */
export interface LevelSpec {
  sgx: readonly number[];
  pcesvn: number;
  tdx?: readonly number[];
  status: string;
  advisoryIDs?: string[];
  date?: string;
}

/** A TCB info object (to be signed as JSON text). */
export function tcbInfo(options: {
  id: 'SGX' | 'TDX';
  fmspc?: string;
  pceId?: string;
  issueDate?: string;
  nextUpdate?: string;
  levels: readonly LevelSpec[];
  tdxModule?: object;
  tdxModuleIdentities?: object[];
}): Record<string, unknown> {
  const comps = (svns: readonly number[]) => svns.map((svn) => ({ svn }));
  const info: Record<string, unknown> = {
    id: options.id,
    version: 3,
    issueDate: options.issueDate ?? '2025-06-01T00:00:00Z',
    nextUpdate: options.nextUpdate ?? '2025-07-01T00:00:00Z',
    fmspc: (options.fmspc ?? PLATFORM.fmspc).toUpperCase(),
    pceId: options.pceId ?? PLATFORM.pceId,
    tcbType: 0,
    tcbEvaluationDataNumber: 17,
  };
  if (options.id === 'TDX') {
    info.tdxModule = options.tdxModule ?? {
      mrsigner: '00'.repeat(48),
      attributes: '00'.repeat(8),
      attributesMask: 'FF'.repeat(8),
    };
    if (options.tdxModuleIdentities !== undefined) info.tdxModuleIdentities = options.tdxModuleIdentities;
  }
  info.tcbLevels = options.levels.map((l) => ({
    tcb:
      l.tdx === undefined
        ? { sgxtcbcomponents: comps(l.sgx), pcesvn: l.pcesvn }
        : { sgxtcbcomponents: comps(l.sgx), pcesvn: l.pcesvn, tdxtcbcomponents: comps(l.tdx) },
    tcbDate: l.date ?? '2024-03-13T00:00:00Z',
    tcbStatus: l.status,
    ...(l.advisoryIDs === undefined ? {} : { advisoryIDs: l.advisoryIDs }),
  }));
  return info;
}

/** A QE identity object (to be signed as JSON text) for the default scenario's QE. */
export function qeIdentity(options: {
  id: 'QE' | 'TD_QE';
  issueDate?: string;
  nextUpdate?: string;
  levels?: { isvsvn: number; status: string; advisoryIDs?: string[] }[];
  mrsigner?: string;
}): Record<string, unknown> {
  return {
    id: options.id,
    version: 2,
    issueDate: options.issueDate ?? '2025-06-01T00:00:00Z',
    nextUpdate: options.nextUpdate ?? '2025-07-01T00:00:00Z',
    tcbEvaluationDataNumber: 17,
    miscselect: '00000000',
    miscselectMask: 'FFFFFFFF',
    attributes: '11000000000000000000000000000000',
    attributesMask: 'FBFFFFFFFFFFFFFF0000000000000000',
    mrsigner: options.mrsigner ?? QE_MRSIGNER[options.id === 'QE' ? 'sgx' : 'tdx'].toUpperCase(),
    isvprodid: options.id === 'QE' ? 1 : 2,
    tcbLevels: (options.levels ?? [{ isvsvn: 8, status: 'UpToDate' }]).map((l) => ({
      tcb: { isvsvn: l.isvsvn },
      tcbDate: '2024-03-13T00:00:00Z',
      tcbStatus: l.status,
      ...(l.advisoryIDs === undefined ? {} : { advisoryIDs: l.advisoryIDs }),
    })),
  };
}

/** Collateral for `pki`, signing `tcb` and `qe` as compact JSON with the TCB signing key. */
export function collateral(
  pki: TestPki,
  tcb: Record<string, unknown>,
  qe: Record<string, unknown>,
  crls: { rootCrl?: Uint8Array; pckCrl?: Uint8Array } = {},
): DcapCollateral {
  const tcbText = JSON.stringify(tcb);
  const qeText = JSON.stringify(qe);
  const signerChain = writePem(pki.tcbSigner.der) + writePem(pki.root.der);
  return {
    pckCrlIssuerChain: writePem(pki.pckCa.der) + writePem(pki.root.der),
    rootCaCrl:
      crls.rootCrl ??
      ecCrl({
        issuer: pki.rootName,
        issuerKey: pki.root.key.privateKey,
        thisUpdate: new Date('2025-03-01T00:00:00Z'),
        nextUpdate: new Date('2026-03-01T00:00:00Z'),
      }),
    pckCrl:
      crls.pckCrl ??
      ecCrl({
        issuer: pki.caName,
        issuerKey: pki.pckCa.key.privateKey,
        thisUpdate: new Date('2025-06-01T00:00:00Z'),
        nextUpdate: new Date('2025-07-01T00:00:00Z'),
        revoked: [0x77n],
      }),
    tcbInfoIssuerChain: signerChain,
    tcbInfo: tcbText,
    tcbInfoSignature: rawSign(new TextEncoder().encode(tcbText), pki.tcbSigner.key.privateKey),
    qeIdentityIssuerChain: signerChain,
    qeIdentity: qeText,
    qeIdentitySignature: rawSign(new TextEncoder().encode(qeText), pki.tcbSigner.key.privateKey),
  };
}

/** A time inside every default validity window of the test collateral. */
export const SCENARIO_NOW = new Date('2025-06-15T00:00:00Z');

/** A complete, valid test scenario: a quote of `kind`, its collateral, the roots pinning its test root. */
export function scenario(
  kind: 'sgx' | 'tdx',
  options: {
    version?: 3 | 4 | 5;
    pki?: TestPki;
    tdBodySize?: 584 | 648;
    body?: Uint8Array;
    qeIsvSvn?: number;
  } = {},
): { pki: TestPki; quote: Uint8Array; collateral: DcapCollateral; now: Date } {
  const pki = options.pki ?? makePki();
  const version = options.version ?? (kind === 'sgx' ? 3 : 4);
  const body =
    options.body ??
    (kind === 'sgx'
      ? sgxBody({ isvSvn: 3, reportData: new Uint8Array(64).fill(0x42) })
      : tdBody({ reportData: new Uint8Array(64).fill(0x42) }, options.tdBodySize));
  const quote = buildQuote({
    version,
    body,
    qeReport: qeBody(kind, options.qeIsvSvn),
    pck: pki.pck,
    chainPem: chainPem(pki.pck.der, pki.pckCa.der, pki.root.der),
  });
  const tdx = kind === 'tdx' ? [6, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] : undefined;
  const levels: LevelSpec[] = [
    {
      sgx: pki.platform.components,
      pcesvn: pki.platform.pceSvn,
      ...(tdx ? { tdx } : {}),
      status: 'UpToDate',
    },
    {
      sgx: pki.platform.components.map((c) => Math.max(0, c - 1)),
      pcesvn: 5,
      ...(tdx ? { tdx: tdx.map((c) => Math.max(0, c - 1)) } : {}),
      status: 'OutOfDate',
      advisoryIDs: ['INTEL-SA-00001'],
    },
  ];
  const info = tcbInfo({
    id: kind === 'sgx' ? 'SGX' : 'TDX',
    levels,
    ...(kind === 'tdx'
      ? {
          tdxModuleIdentities: [
            {
              id: 'TDX_01',
              mrsigner: '00'.repeat(48),
              attributes: '00'.repeat(8),
              attributesMask: 'FF'.repeat(8),
              tcbLevels: [
                { tcb: { isvsvn: 6 }, tcbDate: '2024-03-13T00:00:00Z', tcbStatus: 'UpToDate' },
                {
                  tcb: { isvsvn: 2 },
                  tcbDate: '2023-08-09T00:00:00Z',
                  tcbStatus: 'OutOfDate',
                  advisoryIDs: ['INTEL-SA-01036'],
                },
              ],
            },
          ],
        }
      : {}),
  });
  const qe = qeIdentity({
    id: kind === 'sgx' ? 'QE' : 'TD_QE',
    levels: [
      { isvsvn: 8, status: 'UpToDate' },
      { isvsvn: 6, status: 'OutOfDate', advisoryIDs: ['INTEL-SA-00615'] },
    ],
  });
  return { pki, quote, collateral: collateral(pki, info, qe), now: SCENARIO_NOW };
}
