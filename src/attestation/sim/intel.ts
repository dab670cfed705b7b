// The simulated Intel SGX platform: a PKI in exactly the shape of Intel's (ECDSA P-256 root, PCK Platform CA,
// PCK certificate with its SGX extension, TCB signing certificate, CRLs) and the key of a simulated quoting
// enclave, made once per host. Every subject says O=Donjon SIMULATED, and a verifier trusts the platform only
// when the policy names its root's SHA-256 fingerprint (`trustSimulatedRoots`, shared with the simulated AMD
// root). The root and PCK CA keys are discarded once the certificates and CRLs are signed, so the stored
// material can make quotes and collateral but cannot mint another PCK under the same root.
import { createPrivateKey, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { distinguishedName } from '../../lib/certificate.ts';
import { integer } from '../../lib/der.ts';
import { isRecord } from '../../lib/json.ts';
import { sha256Hex, toBase64, toHex, tryFromHex } from '../bytes.ts';
import { AttestationError } from '../errors.ts';
import { OID } from '../x509.ts';
import {
  authorityKeyIdentifier,
  basicConstraintsCa,
  keyIdentifier,
  keyUsageCertSign,
  subjectKeyIdentifier,
} from './cert.ts';
import { ecCert, ecCrl, KEY_USAGE_SIGNING, NOT_A_CA, type PlatformSpec, sgxExtension } from './dcap.ts';
import { SIM_ORGANIZATION } from './root.ts';
import { storedReader } from './stored.ts';

/** The simulated quoting enclave's identity: what its QE report says and its QE identity describes. */
export interface SimQeIdentity {
  /** 32 bytes, hex. */
  mrEnclave: string;
  /** 32 bytes, hex: not Intel's QE signer, so only the simulated QE identity vouches for it. */
  mrSigner: string;
  isvProdId: number;
  isvSvn: number;
}

/** Everything the simulated Intel platform needs, and what a verifier pins (`fingerprint`). */
export interface SimIntelPlatform {
  /** The simulated Intel SGX Root CA (self-signed, P-256). */
  rootDer: Uint8Array;
  /** The simulated PCK Platform CA, signed by the root. */
  pckCaDer: Uint8Array;
  /** The simulated PCK certificate, signed by the PCK CA, with the SGX extension for `platform`. */
  pckDer: Uint8Array;
  /** The simulated TCB signing certificate, signed by the root: it signs TCB info and QE identity. */
  tcbSignerDer: Uint8Array;
  /** The root's CRL and the PCK CA's CRL (DER), signed when the platform was made. */
  rootCrl: Uint8Array;
  pckCrl: Uint8Array;
  /** PKCS#8 DER private keys: the PCK's (signs QE reports), the TCB signer's, the QE attestation key. */
  pckKey: Uint8Array;
  tcbSignerKey: Uint8Array;
  attestationKey: Uint8Array;
  /** FMSPC, PCE-ID, TCB components and PCESVN the PCK certificate is issued for. */
  platform: PlatformSpec;
  /** The platform's PPID (16 bytes). */
  ppid: Uint8Array;
  qe: SimQeIdentity;
  /** SHA-256 of `rootDer`, lower-case hex: what a policy lists in `trustSimulatedRoots`. */
  fingerprint: string;
}

const SIM_UNIT = 'Simulated Intel SGX Platform';
const DAY_MS = 86_400_000;
/** The simulated platform's TCB: an Ice Lake server-like FMSPC and current-looking SVNs. */
const DEFAULT_PLATFORM: PlatformSpec = {
  fmspc: '00606a000000',
  pceId: '0000',
  components: [4, 4, 3, 3, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
  pceSvn: 13,
};
const DEFAULT_QE: SimQeIdentity = {
  mrEnclave: sha256Hex(new TextEncoder().encode('donjon/sim/sgx-qe')),
  mrSigner: sha256Hex(new TextEncoder().encode('donjon/sim/sgx-qe-signer')),
  isvProdId: 1,
  isvSvn: 8,
};

/** A name in Intel's layout with the simulated mark: CN, O=Donjon SIMULATED, OU, C. */
function simName(commonName: string): Uint8Array {
  return distinguishedName([
    [OID.commonName, commonName],
    [OID.organization, SIM_ORGANIZATION],
    [OID.organizationalUnit, SIM_UNIT],
    [OID.country, 'US'],
  ]);
}

function addYears(date: Date, years: number): Date {
  const d = new Date(date.getTime());
  d.setUTCFullYear(d.getUTCFullYear() + years);
  return d;
}

function positiveSerial(): bigint {
  const bytes = randomBytes(8);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return BigInt(`0x${bytes.toString('hex')}`);
}

function p256(): { privateKey: KeyObject; spki: Uint8Array } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privateKey, spki: new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })) };
}

const pkcs8 = (key: KeyObject) => new Uint8Array(key.export({ type: 'pkcs8', format: 'der' }));

/**
 * Makes a new simulated Intel platform. `revokePck` lists the PCK certificate in the PCK CA's CRL, for tests
 * of revocation; `platform` and `qe` replace the defaults.
 */
export function createSimIntelPlatform(
  options: { now?: Date; revokePck?: boolean; platform?: PlatformSpec; qe?: SimQeIdentity } = {},
): SimIntelPlatform {
  const now = options.now ?? new Date();
  if (!(now instanceof Date) || Number.isNaN(now.getTime()))
    throw new TypeError('Cannot create simulated Intel platform: now must be a valid Date');
  const platform = options.platform ?? DEFAULT_PLATFORM;
  const qe = options.qe ?? DEFAULT_QE;
  // Certificates state whole seconds; start a day early so clocks a little behind still accept them.
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - DAY_MS);
  const root = p256();
  const ca = p256();
  const pck = p256();
  const tcb = p256();
  const ak = p256();
  const rootName = simName('Intel SGX Root CA');
  const caName = simName('Intel SGX PCK Platform CA');
  const rootId = keyIdentifier(root.spki);
  const caId = keyIdentifier(ca.spki);
  const rootDer = ecCert({
    serial: positiveSerial(),
    issuer: rootName,
    subject: rootName,
    notBefore,
    notAfter: addYears(notBefore, 25),
    spki: root.spki,
    extensions: [
      authorityKeyIdentifier(rootId),
      subjectKeyIdentifier(rootId),
      keyUsageCertSign(true),
      basicConstraintsCa(1),
    ],
    issuerKey: root.privateKey,
  });
  const pckCaDer = ecCert({
    serial: positiveSerial(),
    issuer: rootName,
    subject: caName,
    notBefore,
    notAfter: addYears(notBefore, 25),
    spki: ca.spki,
    extensions: [
      authorityKeyIdentifier(rootId),
      subjectKeyIdentifier(caId),
      keyUsageCertSign(true),
      basicConstraintsCa(0),
    ],
    issuerKey: root.privateKey,
  });
  const ppid = new Uint8Array(randomBytes(16));
  const pckSerial = positiveSerial();
  const pckDer = ecCert({
    serial: pckSerial,
    issuer: caName,
    subject: simName('Intel SGX PCK Certificate'),
    notBefore,
    notAfter: addYears(notBefore, 7),
    spki: pck.spki,
    extensions: [
      authorityKeyIdentifier(caId),
      subjectKeyIdentifier(keyIdentifier(pck.spki)),
      KEY_USAGE_SIGNING,
      NOT_A_CA,
      { oid: '1.2.840.113741.1.13.1', value: sgxExtension(platform, { platformCa: true, ppid }) },
    ],
    issuerKey: ca.privateKey,
  });
  const tcbSignerDer = ecCert({
    serial: positiveSerial(),
    issuer: rootName,
    subject: simName('Intel SGX TCB Signing'),
    notBefore,
    notAfter: addYears(notBefore, 25),
    spki: tcb.spki,
    extensions: [
      authorityKeyIdentifier(rootId),
      subjectKeyIdentifier(keyIdentifier(tcb.spki)),
      KEY_USAGE_SIGNING,
      NOT_A_CA,
    ],
    issuerKey: root.privateKey,
  });
  // The CA keys are not kept, so the CRLs are signed now for the life of the platform.
  const rootCrl = ecCrl({
    issuer: rootName,
    issuerKey: root.privateKey,
    thisUpdate: notBefore,
    nextUpdate: addYears(notBefore, 25),
    extensions: [{ oid: OID.crlNumber, value: integer(1) }],
  });
  const pckCrl = ecCrl({
    issuer: caName,
    issuerKey: ca.privateKey,
    thisUpdate: notBefore,
    nextUpdate: addYears(notBefore, 7),
    revoked: options.revokePck === true ? [pckSerial] : [],
  });
  return {
    rootDer,
    pckCaDer,
    pckDer,
    tcbSignerDer,
    rootCrl,
    pckCrl,
    pckKey: pkcs8(pck.privateKey),
    tcbSignerKey: pkcs8(tcb.privateKey),
    attestationKey: pkcs8(ak.privateKey),
    platform: { ...platform, components: [...platform.components] },
    ppid,
    qe: { ...qe },
    fingerprint: sha256Hex(rootDer),
  };
}

const FORMAT = 'donjon-sim-sgx/v1';
const KEYS = [
  'format',
  'fingerprint',
  'root',
  'pckCa',
  'pck',
  'tcbSigner',
  'rootCrl',
  'pckCrl',
  'pckKey',
  'tcbSignerKey',
  'attestationKey',
  'platform',
  'ppid',
  'qe',
] as const;
const PLATFORM_KEYS = ['fmspc', 'pceId', 'components', 'pceSvn'] as const;
const QE_KEYS = ['mrEnclave', 'mrSigner', 'isvProdId', 'isvSvn'] as const;

/**
 * The platform as UTF-8 JSON for storing on the host. It holds the PCK, TCB signing and attestation private
 * keys: store it readable by the host's Keep Loader only.
 */
export function serializeSimIntelPlatform(p: SimIntelPlatform): Uint8Array {
  const doc = {
    format: FORMAT,
    fingerprint: p.fingerprint,
    root: toBase64(p.rootDer),
    pckCa: toBase64(p.pckCaDer),
    pck: toBase64(p.pckDer),
    tcbSigner: toBase64(p.tcbSignerDer),
    rootCrl: toBase64(p.rootCrl),
    pckCrl: toBase64(p.pckCrl),
    pckKey: toBase64(p.pckKey),
    tcbSignerKey: toBase64(p.tcbSignerKey),
    attestationKey: toBase64(p.attestationKey),
    platform: p.platform,
    ppid: toHex(p.ppid),
    qe: p.qe,
  };
  return new TextEncoder().encode(`${JSON.stringify(doc, null, 2)}\n`);
}

const stored = storedReader('simulated Intel platform');
const { exactKeys, base64Field, document } = stored;
// Annotated, so that the checker knows a call to it ends the path.
const invalid: (state: string, cause?: unknown) => never = stored.invalid;

function hexField(v: unknown, bytes: number, what: string): string {
  const b = typeof v === 'string' ? tryFromHex(v) : undefined;
  if (b === undefined || b.byteLength !== bytes || v !== toHex(b))
    invalid(`${what} is not ${bytes} bytes of lower-case hex`);
  return v as string;
}

function intField(v: unknown, max: number, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max)
    invalid(`${what} is not an integer in 0..${max}`);
  return v;
}

/**
 * Loads a platform written by {@link serializeSimIntelPlatform}, checking its shape and that its keys load.
 * The chain itself is checked by the verifier whenever a quote made with it is appraised.
 * Fails with ERR_SIM_ROOT_INVALID.
 */
export function parseSimIntelPlatform(bytes: Uint8Array): SimIntelPlatform {
  const doc = document(bytes, KEYS, FORMAT);
  const rootDer = base64Field(doc, 'root');
  if (doc.fingerprint !== sha256Hex(rootDer)) invalid('fingerprint is not the SHA-256 of the root');
  const p = doc.platform;
  if (!isRecord(p)) return invalid('platform is not an object');
  exactKeys(p, PLATFORM_KEYS, 'platform.');
  const components = p.components;
  if (!Array.isArray(components) || components.length !== 16)
    invalid('platform.components is not 16 integers');
  const q = doc.qe;
  if (!isRecord(q)) return invalid('qe is not an object');
  exactKeys(q, QE_KEYS, 'qe.');
  const out: SimIntelPlatform = {
    rootDer,
    pckCaDer: base64Field(doc, 'pckCa'),
    pckDer: base64Field(doc, 'pck'),
    tcbSignerDer: base64Field(doc, 'tcbSigner'),
    rootCrl: base64Field(doc, 'rootCrl'),
    pckCrl: base64Field(doc, 'pckCrl'),
    pckKey: base64Field(doc, 'pckKey'),
    tcbSignerKey: base64Field(doc, 'tcbSignerKey'),
    attestationKey: base64Field(doc, 'attestationKey'),
    platform: {
      fmspc: hexField(p.fmspc, 6, 'platform.fmspc'),
      pceId: hexField(p.pceId, 2, 'platform.pceId'),
      components: (components as unknown[]).map((c, i) => intField(c, 255, `platform.components[${i}]`)),
      pceSvn: intField(p.pceSvn, 0xffff, 'platform.pceSvn'),
    },
    ppid: tryFromHex(hexField(doc.ppid, 16, 'ppid'))!,
    qe: {
      mrEnclave: hexField(q.mrEnclave, 32, 'qe.mrEnclave'),
      mrSigner: hexField(q.mrSigner, 32, 'qe.mrSigner'),
      isvProdId: intField(q.isvProdId, 0xffff, 'qe.isvProdId'),
      isvSvn: intField(q.isvSvn, 0xffff, 'qe.isvSvn'),
    },
    fingerprint: doc.fingerprint as string,
  };
  for (const k of ['pckKey', 'tcbSignerKey', 'attestationKey'] as const) {
    try {
      const key = createPrivateKey({ key: Buffer.from(out[k]), format: 'der', type: 'pkcs8' });
      if (key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') invalid(`${k} is not a P-256 key`);
    } catch (cause) {
      if (cause instanceof AttestationError) throw cause;
      invalid(`${k} is not a PKCS#8 private key`, cause);
    }
  }
  return out;
}
