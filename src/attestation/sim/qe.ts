// The simulated quoting enclave: SGX version 3 quotes with certification data type 5 (the PCK chain as PEM),
// byte for byte what Intel's QE makes, signed with the simulated platform's keys; and the collateral Intel's
// PCS would serve for them (CRLs, TCB info, QE identity signed over their exact text), valid for 30 days from
// the time it is asked for.
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { writePem } from '../../lib/pem.ts';
import { tryFromHex } from '../bytes.ts';
import type { DcapCollateral } from '../dcap/collateral.ts';
import { assembleQuote, chainPem, rawSign, sgxBody } from './dcap.ts';
import type { SimIntelPlatform } from './intel.ts';

/** What the enclave (REPORTDATA) and its launch (MRENCLAVE, MRSIGNER, ...) supply. */
export interface SimQuoteInput {
  /** 64 bytes chosen by the enclave; Donjon binds the Keep's key and the client's nonce here. */
  reportData: Uint8Array;
  /** 32 bytes: the enclave's measurement. */
  mrEnclave: Uint8Array;
  /** 32 bytes; default SHA-256 of "donjon/sim/enclave-signer". */
  mrSigner?: Uint8Array;
  isvProdId?: number;
  isvSvn?: number;
  /** Sets ATTRIBUTES.DEBUG. */
  debug?: boolean;
}

/** How long collateral served by the simulated platform stays valid. */
export const SIM_COLLATERAL_DAYS = 30;
const DAY_MS = 86_400_000;
/** SHA-256("donjon/sim/enclave-signer"): the MRSIGNER of a Keep under the simulated platform. */
export const SIM_ENCLAVE_MRSIGNER = '46586cda3735f88372cbabd52db7ba14fe376585d8ca2aae21b2e3d59f3c30f8';

function key(pkcs8: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' });
}

function bytes(name: string, value: unknown, length: number): Uint8Array {
  if (!(value instanceof Uint8Array) || value.byteLength !== length)
    throw new RangeError(`Cannot make simulated quote: ${name} must be ${length} bytes`);
  return value;
}

/**
 * A version 3 SGX quote of an enclave with these inputs, as the simulated platform's QE makes it: the QE report
 * (the simulated QE's identity, at the platform's CPUSVN) is signed by the simulated PCK key and binds the QE's
 * attestation key, which signs the quote. Throws RangeError/TypeError on malformed inputs.
 */
export function makeSimSgxQuote(p: SimIntelPlatform, input: SimQuoteInput): Uint8Array {
  if (typeof input !== 'object' || input === null)
    throw new TypeError('Cannot make simulated quote: input is required');
  const reportData = bytes('reportData', input.reportData, 64);
  const mrEnclave = bytes('mrEnclave', input.mrEnclave, 32);
  const mrSigner =
    input.mrSigner === undefined ? tryFromHex(SIM_ENCLAVE_MRSIGNER)! : bytes('mrSigner', input.mrSigner, 32);
  const cpuSvn = Uint8Array.from(p.platform.components);
  // FLAGS: INIT | MODE64BIT (| DEBUG); XFRM: x87, SSE, AVX, AVX-512.
  const attributes = tryFromHex(`0${input.debug === true ? 7 : 5}00000000000000e700000000000000`)!;
  const body = sgxBody({
    cpuSvn,
    attributes,
    mrEnclave,
    mrSigner,
    isvProdId: input.isvProdId ?? 0,
    isvSvn: input.isvSvn ?? 0,
    reportData,
  });
  const qeReport = sgxBody({
    cpuSvn,
    attributes: tryFromHex('1500000000000000e700000000000000')!,
    mrEnclave: tryFromHex(p.qe.mrEnclave)!,
    mrSigner: tryFromHex(p.qe.mrSigner)!,
    isvProdId: p.qe.isvProdId,
    isvSvn: p.qe.isvSvn,
  });
  const attestationKey = key(p.attestationKey);
  const spki = new Uint8Array(createPublicKey(attestationKey).export({ type: 'spki', format: 'der' }));
  return assembleQuote({
    version: 3,
    body,
    qeReport,
    pckKey: key(p.pckKey),
    chainPem: chainPem(p.pckDer, p.pckCaDer, p.rootDer),
    attestationKey,
    attestationKeyRaw: spki.subarray(spki.byteLength - 64),
    // Intel's QE sends 32 bytes of authentication data; they only need to be what the QE report binds.
    qeAuthData: Uint8Array.from({ length: 32 }, (_, i) => i),
    qeSvn: p.qe.isvSvn,
    pceSvn: p.platform.pceSvn,
    userData: new Uint8Array(20),
  });
}

/** An ISO 8601 time in whole seconds, as Intel's PCS writes them. */
function pcsTime(t: Date): string {
  return `${t.toISOString().slice(0, 19)}Z`;
}

/**
 * The collateral of the simulated platform's quotes at `now`: its CRLs, and a TCB info (the platform's TCB
 * UpToDate) and QE identity (the simulated QE) issued at `now` and due for renewal 30 days later, signed by
 * the simulated TCB signing key over their exact text.
 */
export function simSgxCollateral(p: SimIntelPlatform, now: Date = new Date()): DcapCollateral {
  if (!(now instanceof Date) || Number.isNaN(now.getTime()))
    throw new TypeError('Cannot make simulated collateral: now must be a valid Date');
  const issue = new Date(Math.floor(now.getTime() / 1000) * 1000);
  const next = new Date(issue.getTime() + SIM_COLLATERAL_DAYS * DAY_MS);
  const tcbInfo = JSON.stringify({
    id: 'SGX',
    version: 3,
    issueDate: pcsTime(issue),
    nextUpdate: pcsTime(next),
    fmspc: p.platform.fmspc.toUpperCase(),
    pceId: p.platform.pceId.toUpperCase(),
    tcbType: 0,
    tcbEvaluationDataNumber: 17,
    tcbLevels: [
      {
        tcb: {
          sgxtcbcomponents: p.platform.components.map((svn) => ({ svn })),
          pcesvn: p.platform.pceSvn,
        },
        tcbDate: '2024-03-13T00:00:00Z',
        tcbStatus: 'UpToDate',
      },
    ],
  });
  const qeIdentity = JSON.stringify({
    id: 'QE',
    version: 2,
    issueDate: pcsTime(issue),
    nextUpdate: pcsTime(next),
    tcbEvaluationDataNumber: 17,
    miscselect: '00000000',
    miscselectMask: 'FFFFFFFF',
    attributes: '11000000000000000000000000000000',
    attributesMask: 'FBFFFFFFFFFFFFFF0000000000000000',
    mrsigner: p.qe.mrSigner.toUpperCase(),
    isvprodid: p.qe.isvProdId,
    tcbLevels: [{ tcb: { isvsvn: p.qe.isvSvn }, tcbDate: '2024-03-13T00:00:00Z', tcbStatus: 'UpToDate' }],
  });
  const signer = key(p.tcbSignerKey);
  const signerChain = writePem(p.tcbSignerDer) + writePem(p.rootDer);
  return {
    pckCrlIssuerChain: writePem(p.pckCaDer) + writePem(p.rootDer),
    rootCaCrl: p.rootCrl,
    pckCrl: p.pckCrl,
    tcbInfoIssuerChain: signerChain,
    tcbInfo,
    tcbInfoSignature: rawSign(new TextEncoder().encode(tcbInfo), signer),
    qeIdentityIssuerChain: signerChain,
    qeIdentity,
    qeIdentitySignature: rawSign(new TextEncoder().encode(qeIdentity), signer),
  };
}
