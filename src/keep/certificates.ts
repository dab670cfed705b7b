import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { SecureContext } from 'node:tls';
import { writePem } from '../lib/pem.ts';
import type { MessageOf } from '../protocol/messages.ts';
// Not the library's index, which carries the verifier too: the Keep makes certificates, it never verifies one.
import { makeKeepCertificate, makeServiceCertificate, reportDataFor, spkiOf } from '../ratls/certificate.ts';
import { BINDING_DOMAIN, type CarriedEvidence, SERVICE_BINDING_DOMAIN } from '../ratls/cmw.ts';
import type { EvidenceSource } from './gramine.ts';
import type { ServiceTls } from './sockets.ts';
import { nodeTls } from './tls.ts';

/** A service certificate is valid this long, and renewed (with fresh evidence) halfway through. */
const SERVICE_CERT_VALIDITY_MS = 24 * 3600_000;

/**
 * The certificate authorities of the Keep's TLS servers: none. Without a `ca` option Node loads its whole
 * bundled root store into every new TLS context's process on first use (about 40 ms, measured on a channel's
 * critical path); the Keep's servers never ask for a client certificate, so they need no authority at all.
 */
export const NO_ROOTS: string[] = [];

/** The Keep's key pair, made once inside the Keep; the private key never leaves the process. */
export interface KeepKey {
  readonly privateKey: KeyObject;
  readonly keyPem: string;
  readonly spki: Uint8Array;
}

/**
 * Makes the Keep's ECDSA P-256 key pair. P-256 rather than P-384: OpenSSL signs and verifies with it about 20
 * times faster (a channel's certificate and TLS handshake are signed by the Keep and verified by the client,
 * on the way to the first byte), and it is the curve every TLS client takes.
 */
export function makeKeepKey(): KeepKey {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  return { privateKey, keyPem, spki: spkiOf(privateKey) };
}

/**
 * What the certificate carries of the Keep Loader's evidence: the report or quote, the certificates, and for a
 * TDX or SGX quote its DCAP collateral. The Keep passes the host's bytes along unread; the relying party checks them.
 */
export function carried(evidence: MessageOf<'evidence'>): CarriedEvidence | undefined {
  if (evidence.kind === 'none') return undefined;
  const out: CarriedEvidence = { kind: evidence.kind, report: evidence.report, certs: evidence.certs };
  if (evidence.kind !== 'sev-snp' && evidence.collateral !== undefined) out.collateral = evidence.collateral;
  return out;
}

/**
 * The one-use certificate (PEM) of a channel: fresh evidence binding the Keep's key to the client's nonce.
 */
export async function channelCertificate(
  key: KeepKey,
  control: EvidenceSource,
  nonce: Uint8Array,
): Promise<string> {
  const evidence = carried(
    await control.evidence(reportDataFor({ domain: BINDING_DOMAIN, spki: key.spki, nonce })),
  );
  const der = makeKeepCertificate({
    privateKey: key.privateKey,
    nonce,
    now: new Date(),
    ...(evidence === undefined ? {} : { evidence }),
  });
  return writePem(der);
}

/** The certificate of a workload's `tls` files, kept fresh until {@link ServiceCertificate.stop}. */
export interface ServiceCertificate {
  readonly tls: ServiceTls;
  /** Stops renewing it. */
  stop(): void;
}

/**
 * The certificate of the workload's `tls` files: fresh evidence binding this Keep's key to the workload's
 * digest and its configuration's (and the registry manifest's it was deployed from, when `artifact` names
 * one: the Keep checked it itself; and who signed it, when `signers` names them), renewed before the
 * certificate expires.
 */
export async function serviceCertificate(
  key: KeepKey,
  control: EvidenceSource,
  workload: Uint8Array,
  config: Uint8Array,
  artifact?: Uint8Array,
  signers?: Uint8Array[],
): Promise<ServiceCertificate> {
  const named = {
    ...(artifact === undefined ? {} : { artifact }),
    ...(signers === undefined ? {} : { signers }),
  };
  const make = async (): Promise<{ context: SecureContext; cert: string }> => {
    const evidence = carried(
      await control.evidence(
        reportDataFor({ domain: SERVICE_BINDING_DOMAIN, spki: key.spki, workload, config, ...named }),
      ),
    );
    const der = makeServiceCertificate({
      privateKey: key.privateKey,
      workload,
      config,
      ...named,
      now: new Date(),
      validityMs: SERVICE_CERT_VALIDITY_MS,
      ...(evidence === undefined ? {} : { evidence }),
    });
    const cert = writePem(der);
    // `ca: []`: this server asks nobody for a certificate, so it needs no root store (see NO_ROOTS).
    return {
      context: nodeTls().createSecureContext({ key: key.keyPem, cert, ca: NO_ROOTS, minVersion: 'TLSv1.2' }),
      cert,
    };
  };
  let current = await make();
  const timer = setInterval(() => {
    make().then(
      (next) => {
        current = next;
      },
      () => {},
    );
  }, SERVICE_CERT_VALIDITY_MS / 2);
  timer.unref();
  return {
    tls: { context: () => current.context, key: key.keyPem, cert: () => current.cert },
    stop: () => clearInterval(timer),
  };
}

/**
 * Makes a throwaway certificate and TLS context with the Keep's key and discards them. The Keep does this while
 * it waits for its first channel, so that the channel's certificate and handshake do not wait for V8 and
 * OpenSSL to set up this code; nothing of it is ever served.
 */
export function warmCertificates(key: KeepKey): void {
  const der = makeKeepCertificate({ privateKey: key.privateKey, nonce: new Uint8Array(32), now: new Date() });
  nodeTls().createSecureContext({
    key: key.keyPem,
    cert: writePem(der),
    ca: NO_ROOTS,
    minVersion: 'TLSv1.3',
  });
}
