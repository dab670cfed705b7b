import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import {
  type Claims,
  isAttestationError,
  type Policy,
  parseSnpReport,
  type TrustRoots,
} from '../attestation/index.ts';
import {
  isServiceBinding,
  RatlsError,
  readKeepCertificate,
  type ServiceExpectations,
  type ServiceIdentity,
  verifyServiceCertificate,
} from '../ratls/index.ts';
import { ClientError } from './errors.ts';

/**
 * The signer digest of a public key (PEM text or KeyObject), for {@link ServicePolicy.signerKeys}: SHA-256 of
 * its DER SubjectPublicKeyInfo, hex. A private key is refused (TypeError).
 */
export { signerDigest } from '../ratls/index.ts';

/** What a relying party requires of a confidential service before it sends anything. */
export interface ServicePolicy {
  /** What the evidence must satisfy: runtime measurements, minimum TCB, debug, simulated roots opted into, ... */
  policy: Policy;
  /** Allowed SHA-256 digests of the Wasm module (hex); absent: any workload. */
  workloadDigests?: readonly string[];
  /** Allowed SHA-256 digests of the workload's configuration (hex); absent: any configuration. */
  configDigests?: readonly string[];
  /**
   * Allowed signers of the workload: hex SHA-256 of each trusted verifying key's DER SubjectPublicKeyInfo
   * ({@link signerDigest} of `cosign.pub`). The service must run a registry artifact whose cosign signature by
   * one of them verified inside the Keep (ERR_SERVICE_SIGNER_MISMATCH otherwise, also for a workload not
   * deployed from a signed artifact). Pin the signer rather than one digest, and a new version signed with the
   * same key verifies as the old one does. Digests and signers combine: each list given must hold.
   */
  signerKeys?: readonly string[];
  roots?: TrustRoots;
  /** Accept a service without evidence (a `nil` Keep) when no digest or signer is required. */
  insecure?: boolean;
}

/** Where a service is, and what it must prove. */
export interface ConnectServiceOptions extends ServicePolicy {
  host: string;
  port: number;
  /** A stream to run TLS over instead of a fresh TCP connection to host:port (a proxy, a test relay). */
  socket?: Duplex;
  /** How long connecting and the handshake may take; default 15 s. */
  timeoutMs?: number;
  /** The verification time; default now. */
  now?: () => Date;
}

/** The certificate checks a {@link ServicePolicy} asks for, at the connection's time. */
function expectationsOf(options: ConnectServiceOptions): ServiceExpectations {
  return {
    policy: options.policy,
    now: options.now?.() ?? new Date(),
    ...(options.roots ? { roots: options.roots } : {}),
    ...(options.workloadDigests ? { workloadDigests: options.workloadDigests } : {}),
    ...(options.configDigests ? { configDigests: options.configDigests } : {}),
    ...(options.signerKeys ? { signerKeys: options.signerKeys } : {}),
    ...(options.insecure ? { insecure: true } : {}),
  };
}

/** A verified connection to a service: TLS that ends in the Keep the identity describes. */
export interface ServiceConnection {
  socket: TLSSocket;
  identity: ServiceIdentity;
}

function describe(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Opens TLS to host:port (or over `socket`) and resolves with the server's certificate, unverified. */
function handshake(
  options: Pick<ConnectServiceOptions, 'host' | 'port' | 'socket' | 'timeoutMs'>,
): Promise<{ socket: TLSSocket; der: Uint8Array }> {
  return new Promise((resolve, reject) => {
    // Web PKI is not the trust decision: the evidence in the certificate is, checked by the caller.
    const socket = tlsConnect({
      host: options.host,
      port: options.port,
      ...(options.socket ? { socket: options.socket } : {}),
      rejectUnauthorized: false,
      // No root store is consulted, so none is loaded (about 40 ms the first time in a process).
      ca: [],
      minVersion: 'TLSv1.2',
      servername: '',
    });
    const where = describe(options.host, options.port);
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      options.socket?.destroy();
      reject(error);
    };
    const timer = setTimeout(
      () =>
        fail(
          new ClientError('ERR_CHANNEL_FAILED', `Cannot reach the service at ${where}: no answer in time`),
        ),
      options.timeoutMs ?? 15_000,
    );
    socket.once('secureConnect', () => {
      // The DER alone: the legacy certificate object would print every extension, the evidence included.
      const peer = socket.getPeerX509Certificate();
      if (!peer?.raw) {
        fail(
          new ClientError(
            'ERR_CHANNEL_FAILED',
            `Cannot verify the service at ${where}: it presented no certificate`,
          ),
        );
        return;
      }
      settled = true;
      clearTimeout(timer);
      resolve({ socket, der: new Uint8Array(peer.raw) });
    });
    socket.once('error', (cause) =>
      fail(
        new ClientError('ERR_CHANNEL_FAILED', `Cannot reach the service at ${where}: ${cause.message}`, {
          cause,
        }),
      ),
    );
    socket.once('close', () =>
      fail(
        new ClientError('ERR_CHANNEL_FAILED', `Cannot reach the service at ${where}: the connection closed`),
      ),
    );
  });
}

/**
 * Opens an attested TLS connection to a confidential service (a workload serving a `tls` listen file in a
 * Keep) and hands the socket back only if its certificate proves, under `policy`, that a genuine Keep runs an
 * allowed runtime, and that it runs an allowed workload with an allowed configuration (and, with
 * `signerKeys`, one signed by an allowed key). Until then nothing but the TLS handshake has left this side;
 * on any failure the connection is closed and the error thrown:
 * {@link ClientError} for the network, RatlsError or AttestationError for the evidence.
 *
 * @example
 * const { socket, identity } = await connectService({ host: 'svc.example', port: 8443,
 *   policy: { measurements: [runtime] }, workloadDigests: [sha256OfApp] });
 * socket.write('GET / HTTP/1.1\r\nHost: svc\r\n\r\n');
 */
export async function connectService(options: ConnectServiceOptions): Promise<ServiceConnection> {
  const { socket, der } = await handshake(options);
  try {
    const identity = verifyServiceCertificate(der, expectationsOf(options));
    return { socket, identity };
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

/** What a service's certificate says, and whether it verified under the policy given. */
export interface ServiceReport {
  /** SHA-256 of the certificate (hex), as a browser shows it. */
  certificateSha256: string;
  /** SHA-256 of the server's public key (SPKI DER, hex). */
  keySha256: string;
  notBefore: string;
  notAfter: string;
  /** Whether the certificate carries evidence at all (a `nil` Keep's does not). */
  attested: boolean;
  /** 'service' for a service's evidence; 'channel' for a Keep's channel certificate. */
  binding?: 'service' | 'channel';
  workloadDigest?: string;
  configDigest?: string;
  /** The registry manifest digest (`sha256:…`) the workload was deployed from, when the evidence names one. */
  artifactDigest?: string;
  /** Who signed that artifact (hex SHA-256 of each verifying key's SPKI), when the evidence names signers. */
  signers?: string[];
  /** The evidence's kind and what it claims, read without trusting it. */
  evidence?: { kind: 'sev-snp' | 'tdx' | 'sgx'; version?: number; measurement?: string; debug?: boolean };
  verified: boolean;
  /** The verified claims, when `verified`. */
  claims?: Claims;
  /** Why it did not verify. */
  error?: { code: string; message: string };
}

/**
 * Connects to a service, reads what its certificate proves, checks it under the policy given (when one is
 * given) and closes the connection without sending anything. For `donjon attest inspect`.
 */
export async function inspectService(options: ConnectServiceOptions): Promise<ServiceReport> {
  const { socket, der } = await handshake(options);
  socket.destroy();
  const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
  let cert: ReturnType<typeof readKeepCertificate>;
  try {
    cert = readKeepCertificate(der);
  } catch (error) {
    if (!(error instanceof RatlsError)) throw error;
    return {
      certificateSha256: sha256(der),
      keySha256: '',
      notBefore: '',
      notAfter: '',
      attested: false,
      verified: false,
      error: { code: error.code, message: error.message },
    };
  }
  const report: ServiceReport = {
    certificateSha256: sha256(der),
    keySha256: sha256(cert.spki),
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    attested: cert.cmw !== undefined,
    verified: false,
  };
  if (cert.cmw) {
    const { binding, evidence } = cert.cmw;
    report.binding = isServiceBinding(binding) ? 'service' : 'channel';
    if (isServiceBinding(binding)) {
      report.workloadDigest = Buffer.from(binding.workload).toString('hex');
      report.configDigest = Buffer.from(binding.config).toString('hex');
      if (binding.artifact !== undefined)
        report.artifactDigest = `sha256:${Buffer.from(binding.artifact).toString('hex')}`;
      if (binding.signers !== undefined)
        report.signers = binding.signers.map((s) => Buffer.from(s).toString('hex'));
    }
    report.evidence = { kind: evidence.kind };
    if (evidence.kind === 'sev-snp') {
      try {
        const r = parseSnpReport(evidence.report);
        report.evidence = {
          kind: 'sev-snp',
          version: r.version,
          measurement: Buffer.from(r.measurement).toString('hex'),
          debug: (r.policy & (1n << 19n)) !== 0n,
        };
      } catch {
        // Unreadable: the verification below says why.
      }
    }
  }
  try {
    const identity = verifyServiceCertificate(der, expectationsOf(options));
    report.verified = true;
    if (identity.claims) report.claims = identity.claims;
  } catch (error) {
    if (!(error instanceof RatlsError) && !isAttestationError(error)) throw error;
    report.error = { code: (error as RatlsError).code, message: (error as Error).message };
  }
  return report;
}
