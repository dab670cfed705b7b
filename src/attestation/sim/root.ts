// The simulated AMD secure processor's key material: an ARK -> ASK -> VCEK chain in exactly the shape of
// AMD's (RSA-4096 ARK and ASK, RSA-PSS SHA-384 signatures, a P-384 VCEK carrying the AMD TCB and hwID
// extensions), made once per host. Every name says SIMULATED, and a verifier trusts the chain only when
// the policy names its ARK's fingerprint.
import { createPrivateKey, generateKeyPair, randomBytes, sign, verify } from 'node:crypto';
import { promisify } from 'node:util';
import { distinguishedName } from '../../lib/certificate.ts';
import { ia5String, integer } from '../../lib/der.ts';
import { isRecord } from '../../lib/json.ts';
import { equalBytes, sha256Hex, toBase64, toHex, tryFromHex } from '../bytes.ts';
import { AttestationError } from '../errors.ts';
import type { SnpTcb } from '../snp/tcb.ts';
import { snpTcb } from '../snp/tcb.ts';
import { readVekExtensions, VEK_OID } from '../snp/vek.ts';
import { isSimulatedName } from '../snp/verify.ts';
import { isSelfIssued, OID, parseCertificate, publicKeyOf, verifyIssuedBy } from '../x509.ts';
import {
  authorityKeyIdentifier,
  basicConstraintsCa,
  buildCertificate,
  keyIdentifier,
  keyUsageCertSign,
  subjectKeyIdentifier,
} from './cert.ts';
import { storedReader } from './stored.ts';

const generate = promisify(generateKeyPair);

/** Everything the simulated secure processor needs, and what a verifier pins (`fingerprint`). */
export interface SimRootMaterial {
  /** The simulated ARK (self-signed, RSA-4096). */
  arkDer: Uint8Array;
  /** The simulated ASK, signed by the ARK. */
  askDer: Uint8Array;
  /** The simulated VCEK (P-384), signed by the ASK, with TCB and hwID extensions. */
  vcekDer: Uint8Array;
  /** The VCEK private key (PKCS#8 DER): the one secret of the simulated chip. */
  vcekPrivateKeyPkcs8: Uint8Array;
  /** SHA-256 of `arkDer`, lower-case hex: what a policy lists in `trustSimulatedRoots`. */
  fingerprint: string;
  /** The simulated chip id (64 bytes), equal to the VCEK's hwID. */
  chipId: Uint8Array;
  /** The simulated firmware TCB (Milan/Genoa layout), equal to the VCEK's SPL extensions. */
  tcb: SnpTcb;
}

/** The product name a simulated VCEK carries in its productName extension. */
export const SIM_PRODUCT_NAME = 'Simulated';
/** The organisation every simulated certificate names: the mark a verifier recognises. */
export const SIM_ORGANIZATION = 'Donjon SIMULATED';
const SIM_UNIT = 'Simulated AMD Secure Processor';

const DAY_MS = 86_400_000;
const DEFAULT_TCB = { bootloader: 10, tee: 0, snp: 23, microcode: 84 } as const;

function simName(commonName: string): Uint8Array {
  return distinguishedName([
    [OID.organizationalUnit, SIM_UNIT],
    [OID.organization, SIM_ORGANIZATION],
    [OID.commonName, commonName],
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

/**
 * Makes a new simulated ARK -> ASK -> VCEK chain and chip identity. RSA-4096 key generation makes
 * this take seconds: create one per host and store it with {@link serializeSimRoot}.
 * The ARK and ASK private keys are discarded, so the stored material can sign reports but cannot mint
 * another VCEK under the same root.
 */
export async function createSimRoot(options?: {
  now?: Date;
  tcb?: { bootloader: number; tee: number; snp: number; microcode: number };
}): Promise<SimRootMaterial> {
  const now = options?.now ?? new Date();
  if (!(now instanceof Date) || Number.isNaN(now.getTime()))
    throw new TypeError('Cannot create simulated root: now must be a valid Date');
  const tcb = snpTcb({ ...(options?.tcb ?? DEFAULT_TCB) });
  // Certificates state whole seconds; start a day early so clocks a little behind still accept them.
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - DAY_MS);

  const [ark, ask, vcek] = await Promise.all([
    generate('rsa', { modulusLength: 4096, publicExponent: 0x10001 }),
    generate('rsa', { modulusLength: 4096, publicExponent: 0x10001 }),
    generate('ec', { namedCurve: 'secp384r1' }),
  ]);
  const spki = (k: typeof ark.publicKey) => new Uint8Array(k.export({ type: 'spki', format: 'der' }));
  const arkSpki = spki(ark.publicKey);
  const askSpki = spki(ask.publicKey);
  const vcekSpki = spki(vcek.publicKey);
  const arkName = simName('ARK-Simulated');
  const askName = simName('SEV-Simulated');
  const arkKeyId = keyIdentifier(arkSpki);
  const askKeyId = keyIdentifier(askSpki);

  const arkDer = buildCertificate({
    serial: positiveSerial(),
    issuer: arkName,
    subject: arkName,
    notBefore,
    notAfter: addYears(notBefore, 25),
    spki: arkSpki,
    extensions: [keyUsageCertSign(true), subjectKeyIdentifier(arkKeyId), basicConstraintsCa()],
    issuerKey: ark.privateKey,
  });
  const askDer = buildCertificate({
    serial: positiveSerial(),
    issuer: arkName,
    subject: askName,
    notBefore,
    notAfter: addYears(notBefore, 25),
    spki: askSpki,
    extensions: [
      subjectKeyIdentifier(askKeyId),
      authorityKeyIdentifier(arkKeyId),
      basicConstraintsCa(0),
      keyUsageCertSign(false),
    ],
    issuerKey: ark.privateKey,
  });
  const chipId = new Uint8Array(randomBytes(64));
  const spl = (id: string, value: number) => ({ oid: id, value: integer(value) });
  const vcekDer = buildCertificate({
    // AMD's KDS issues every VCEK with serial 0; the simulation keeps that shape.
    serial: 0n,
    issuer: askName,
    subject: simName('SEV-VCEK'),
    notBefore,
    notAfter: addYears(notBefore, 7),
    spki: vcekSpki,
    extensions: [
      spl(VEK_OID.structVersion, 0),
      { oid: VEK_OID.productName, value: ia5String(SIM_PRODUCT_NAME) },
      spl(VEK_OID.blSpl, tcb.bootloader),
      spl(VEK_OID.teeSpl, tcb.tee),
      spl(VEK_OID.snpSpl, tcb.snp),
      spl(VEK_OID.spl4, 0),
      spl(VEK_OID.spl5, 0),
      spl(VEK_OID.spl6, 0),
      spl(VEK_OID.spl7, 0),
      spl(VEK_OID.ucodeSpl, tcb.microcode),
      // hwID is raw bytes in AMD's certificates, not an OCTET STRING.
      { oid: VEK_OID.hwId, value: chipId },
    ],
    issuerKey: ask.privateKey,
  });
  return {
    arkDer,
    askDer,
    vcekDer,
    vcekPrivateKeyPkcs8: new Uint8Array(vcek.privateKey.export({ type: 'pkcs8', format: 'der' })),
    fingerprint: sha256Hex(arkDer),
    chipId,
    tcb,
  };
}

const FORMAT = 'donjon-sim-root/v1';
const KEYS = ['format', 'fingerprint', 'ark', 'ask', 'vcek', 'vcekPrivateKey', 'chipId', 'tcb'] as const;
const TCB_KEYS = ['bootloader', 'tee', 'snp', 'microcode'] as const;

/**
 * The material as UTF-8 JSON for storing on the host (certificates and key in base64, chip id in hex).
 * It contains the VCEK private key: store it readable by the host's Keep Loader only.
 */
export function serializeSimRoot(m: SimRootMaterial): Uint8Array {
  const doc = {
    format: FORMAT,
    fingerprint: m.fingerprint,
    ark: toBase64(m.arkDer),
    ask: toBase64(m.askDer),
    vcek: toBase64(m.vcekDer),
    vcekPrivateKey: toBase64(m.vcekPrivateKeyPkcs8),
    chipId: toHex(m.chipId),
    tcb: { bootloader: m.tcb.bootloader, tee: m.tcb.tee, snp: m.tcb.snp, microcode: m.tcb.microcode },
  };
  return new TextEncoder().encode(`${JSON.stringify(doc, null, 2)}\n`);
}

const stored = storedReader('simulated root');
const { exactKeys, base64Field, document } = stored;
// Annotated, so that the checker knows a call to it ends the path.
const invalid: (state: string, cause?: unknown) => never = stored.invalid;

/**
 * Loads material written by {@link serializeSimRoot} and checks it is whole and consistent: the chain
 * verifies ARK -> ASK -> VCEK, the ARK is marked simulated and matches the fingerprint, the VCEK's
 * extensions equal the chip id and TCB, and the private key belongs to the VCEK.
 * Fails with ERR_SIM_ROOT_INVALID.
 *
 * `checkedBefore`: these exact bytes passed those checks before (the caller knows them by their digest), so
 * only their form is read again; the signatures and the key derivation (a few milliseconds) are skipped.
 */
export function parseSimRoot(bytes: Uint8Array, { checkedBefore = false } = {}): SimRootMaterial {
  const doc = document(bytes, KEYS, FORMAT);
  const arkDer = base64Field(doc, 'ark');
  const askDer = base64Field(doc, 'ask');
  const vcekDer = base64Field(doc, 'vcek');
  const vcekPrivateKeyPkcs8 = base64Field(doc, 'vcekPrivateKey');
  const chipId = typeof doc.chipId === 'string' ? tryFromHex(doc.chipId) : undefined;
  if (chipId === undefined || chipId.byteLength !== 64 || doc.chipId !== toHex(chipId)) {
    invalid('chipId is not 64 bytes of lower-case hex');
  }
  const t = doc.tcb;
  if (!isRecord(t)) return invalid('tcb is not an object');
  exactKeys(t, TCB_KEYS, 'tcb.');
  for (const k of TCB_KEYS) {
    const n = t[k];
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 255)
      invalid(`tcb.${k} is not an integer in 0..255`);
  }
  const tcb = snpTcb({
    bootloader: t.bootloader as number,
    tee: t.tee as number,
    snp: t.snp as number,
    microcode: t.microcode as number,
  });

  if (checkedBefore) {
    if (typeof doc.fingerprint !== 'string') invalid('fingerprint is not the SHA-256 of the ARK');
    return { arkDer, askDer, vcekDer, vcekPrivateKeyPkcs8, fingerprint: doc.fingerprint, chipId, tcb };
  }
  try {
    const ark = parseCertificate(arkDer);
    const ask = parseCertificate(askDer);
    const vcek = parseCertificate(vcekDer);
    if (doc.fingerprint !== ark.fingerprint) invalid('fingerprint is not the SHA-256 of the ARK');
    if (!isSelfIssued(ark) || !isSimulatedName(ark.subject))
      invalid('the ARK is not a self-issued simulated root');
    verifyIssuedBy(ark, ark, 'the simulated ARK');
    verifyIssuedBy(ask, ark, 'the simulated ASK');
    verifyIssuedBy(vcek, ask, 'the simulated VCEK');
    const info = readVekExtensions(vcek);
    if (info.kind !== 'vcek' || info.hwId === undefined || !equalBytes(info.hwId, chipId)) {
      invalid('the VCEK hwID is not the chip id');
    }
    if (
      info.tcb.fmc !== undefined ||
      info.tcb.bootloader !== tcb.bootloader ||
      info.tcb.tee !== tcb.tee ||
      info.tcb.snp !== tcb.snp ||
      info.tcb.microcode !== tcb.microcode
    ) {
      invalid('the VCEK TCB extensions are not the stored TCB');
    }
    const key = createPrivateKey({ key: Buffer.from(vcekPrivateKeyPkcs8), format: 'der', type: 'pkcs8' });
    // Only the canonical encoding is accepted: OpenSSL reads some altered encodings (other optional fields, a
    // different stored public key) as the same key, and stored material must be exactly what was written.
    // (The export of an imported key repeats its input, so the canonical form is rebuilt from the key's values.)
    const canonical = createPrivateKey({ key: key.export({ format: 'jwk' }), format: 'jwk' }).export({
      type: 'pkcs8',
      format: 'der',
    });
    if (!canonical.equals(Buffer.from(vcekPrivateKeyPkcs8)))
      invalid('the private key is not in canonical PKCS#8');
    // PKCS#8 may carry the public key next to the scalar, and the public key derived from it is that
    // copy: only a signature made with the scalar proves the pair matches.
    const probe = new TextEncoder().encode('donjon/sim/key-check');
    const signature = sign('sha384', probe, { key, dsaEncoding: 'ieee-p1363' });
    if (!verify('sha384', probe, { key: publicKeyOf(vcek), dsaEncoding: 'ieee-p1363' }, signature)) {
      invalid('the private key does not belong to the VCEK');
    }
  } catch (cause) {
    if (cause instanceof AttestationError && cause.code === 'ERR_SIM_ROOT_INVALID') throw cause;
    const detail = cause instanceof Error ? cause.message : 'inconsistent material';
    return invalid(`its chain is not valid (${detail})`, cause);
  }
  return {
    arkDer,
    askDer,
    vcekDer,
    vcekPrivateKeyPkcs8,
    fingerprint: doc.fingerprint as string,
    chipId,
    tcb,
  };
}
