// What `donjon kube manifest` accepts, checked once: a reference and an image by digest, an Enarx.toml a Pod
// can serve, public keys only, valid names. Everything here is a pure function of its arguments (the files
// are read by the command), so the same inputs give the same objects.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { parseSimRoot } from '../attestation/sim/index.ts';
import { checkSupportedFiles, parseEnarxToml, type WorkloadConfig } from '../client/enarx-toml.ts';
import { KDS_URL } from '../host/collateral/kds.ts';
import { INTEL_ROOT_CA_CRL_URL, PCS_URL } from '../host/collateral/pcs.ts';
import { reasonOf } from '../lib/errors.ts';
import { brokerAddress } from '../protocol/secrets.ts';
import { parseReference, publicKeyPem, type Reference, readPublicKey } from '../registry/index.ts';
import { KubeError } from './errors.ts';
import { checkName, checkNamespace, defaultName, isPortName } from './names.ts';

/** The backends a Pod can run: `sim` (development only) and `cvm` (the node is the TEE). */
export type KubeBackend = 'sim' | 'cvm';

/** The port `/healthz` and `/readyz` are served on, named `health` (the contract of `donjon keep-pod`). */
export const HEALTH_PORT = 8080;
/** The name of the health port. */
export const HEALTH_PORT_NAME = 'health';
/** `donjon keep-pod`'s default drain time on SIGTERM. */
export const DEFAULT_GRACE_SECONDS = 20;
/** Most replicas the command writes (a typo guard, not a Kubernetes limit). */
export const MAX_REPLICAS = 1000;

/** What the command read, before any check. */
export interface ManifestRequest {
  /** `host[:port]/repo[:tag]@sha256:…` */
  readonly reference: string;
  /** The container image `…@sha256:…` that holds Node.js and donjon. */
  readonly image: string;
  readonly replicas: number;
  readonly backend: KubeBackend;
  readonly name?: string | undefined;
  readonly namespace?: string | undefined;
  /** The Enarx.toml's text, and where it came from (for messages). */
  readonly enarxToml: { readonly text: string; readonly source: string };
  /** Each `--verify-key` file's text, and its path. */
  readonly verifyKeys: readonly { readonly text: string; readonly source: string }[];
  readonly allowUnsigned: boolean;
  readonly plainHttp: boolean;
  /** `sim` only: the simulated root (the `sim-root.cbor` file of a host's state dir) the replicas share. */
  readonly simRoot?: { readonly bytes: Uint8Array; readonly source: string } | undefined;
  readonly gracePeriodSeconds: number;
}

/** One destination the Pod may open connections to. */
export interface Egress {
  readonly host: string;
  readonly port: number;
  /** Why: `registry`, `connect NAME`, `broker URL`. */
  readonly why: string;
}

/** The request, checked and normalized: what the objects are made from. */
export interface ManifestPlan {
  readonly reference: string;
  readonly ref: Reference & { readonly digest: string };
  readonly image: string;
  readonly replicas: number;
  readonly backend: KubeBackend;
  readonly name: string;
  readonly namespace: string;
  readonly enarxToml: string;
  readonly config: WorkloadConfig;
  /** Listen files: name and port, in the order of the Enarx.toml. */
  readonly listen: readonly { readonly name: string; readonly port: number }[];
  readonly egress: readonly Egress[];
  /** Canonical PEM public keys (`key-1.pub`, `key-2.pub`, …), nothing else of the files. */
  readonly verifyKeys: readonly string[];
  readonly allowUnsigned: boolean;
  readonly plainHttp: boolean;
  readonly simRoot?: { readonly bytes: Uint8Array; readonly fingerprint: string };
  readonly gracePeriodSeconds: number;
}

/** The SHA-256 of `bytes` in hex. */
export function sha256Hex(bytes: string | Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const IMAGE_NAME =
  /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*(?::\d{1,5})?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$/;

/** Checks the container image: a name as Docker writes it, then `@sha256:` and 64 hex digits. */
export function checkImage(image: string): string {
  const at = image.lastIndexOf('@');
  if (at === -1 || !/^sha256:[0-9a-f]{64}$/.test(image.slice(at + 1))) {
    throw new KubeError(
      'ERR_KUBE_DIGEST_REQUIRED',
      `Cannot use --image ${image}: it has no @sha256: digest (a tag can move; push the image and give IMAGE@sha256:…)`,
    );
  }
  if (!IMAGE_NAME.test(image.slice(0, at))) {
    throw new KubeError('ERR_KUBE_NAME_INVALID', `Cannot use --image ${image}: not an image name`);
  }
  return image;
}

/** Parses REF and requires its digest: the Pods pull exactly that manifest, whatever its tag says later. */
export function checkReference(reference: string): Reference & { readonly digest: string } {
  const ref = parseReference(reference);
  if (ref.digest === undefined) {
    throw new KubeError(
      'ERR_KUBE_DIGEST_REQUIRED',
      `Cannot use ${reference}: it has no @sha256: digest (donjon push prints it; a tag can move)`,
    );
  }
  return { ...ref, digest: ref.digest };
}

/**
 * A `--verify-key` file as a canonical PEM public key. A file holding any private key (PEM `PRIVATE KEY`,
 * `ENCRYPTED PRIVATE KEY`, cosign's `ENCRYPTED SIGSTORE PRIVATE KEY`, ...) is refused, even beside a public
 * one: a manifest is public, and a key the user mixed up must not be published in it.
 */
export function publicVerifyKey(text: string, source: string): string {
  if (holdsPrivateKey(text)) {
    throw new KubeError(
      'ERR_KUBE_SECRET_INPUT',
      `Cannot use --verify-key ${source}: it holds a private key, which must never go into a manifest; give the public key (cosign.pub)`,
    );
  }
  return publicKeyPem(readPublicKey(text, `--verify-key ${source}`));
}

/** Checks that the Enarx.toml is one a Pod can serve, and returns its listen files. */
function listenFiles(config: WorkloadConfig, source: string): { name: string; port: number }[] {
  const unsupported = (what: string): KubeError =>
    new KubeError('ERR_KUBE_CONFIG_UNSUPPORTED', `Cannot run ${source} in a Pod: ${what}`);
  const listen: { name: string; port: number }[] = [];
  const ports = new Set<number>();
  for (const [i, f] of config.files.entries()) {
    if (f.kind !== 'listen') continue;
    if (f.port === 0) {
      throw unsupported(`files[${i}] (${f.name}) listens on port 0; a Service needs the port it forwards to`);
    }
    if (!isPortName(f.name) || f.name === HEALTH_PORT_NAME) {
      throw unsupported(
        `files[${i}] is named ${JSON.stringify(f.name)}, which cannot name a Kubernetes port (at most 15 lower-case letters, digits and '-', with a letter, not '${HEALTH_PORT_NAME}')`,
      );
    }
    if (f.port === HEALTH_PORT) {
      throw unsupported(`files[${i}] (${f.name}) listens on ${HEALTH_PORT}, the Pod's health port`);
    }
    if (ports.has(f.port)) throw unsupported(`two listen files are on port ${f.port}`);
    ports.add(f.port);
    listen.push({ name: f.name, port: f.port });
  }
  if (listen.length === 0) {
    throw unsupported('it has no listen file; a Pod serves a service, and its Service needs a port');
  }
  return listen;
}

/**
 * Where the Pod connects: the registry, each connect file, each broker the `[[secrets]]` name, and for `cvm`
 * the vendors' collateral services the Keep Loader completes evidence from (AMD KDS, Intel PCS).
 */
function egressOf(
  ref: Reference,
  plainHttp: boolean,
  config: WorkloadConfig,
  backend: KubeBackend,
): Egress[] {
  const out: Egress[] = [];
  const registry = ref.registry;
  const bracket = registry.startsWith('[') ? registry.indexOf(']') : -1;
  const colon = bracket === -1 ? registry.lastIndexOf(':') : registry.indexOf(':', bracket);
  const host =
    bracket !== -1 ? registry.slice(1, bracket) : colon === -1 ? registry : registry.slice(0, colon);
  const port = colon === -1 ? (plainHttp ? 80 : 443) : Number(registry.slice(colon + 1));
  out.push({ host, port, why: 'registry' });
  for (const f of config.files) {
    if (f.kind === 'connect') out.push({ host: f.host, port: f.port, why: `connect ${f.name}` });
  }
  for (const [i, s] of (config.secrets ?? []).entries()) {
    const b = brokerAddress(s.broker, i);
    out.push({ host: b.host, port: b.port, why: 'broker' });
  }
  if (backend === 'cvm') {
    for (const url of [KDS_URL, PCS_URL, INTEL_ROOT_CA_CRL_URL]) {
      out.push({ host: new URL(url).hostname, port: 443, why: 'collateral' });
    }
  }
  return out;
}

/** Whether `host` is an IP address, which a NetworkPolicy can name (it cannot name a host name). */
export function isIpLiteral(host: string): boolean {
  return isIP(host) !== 0;
}

function checkInteger(value: number, what: string, low: number, high: number): number {
  if (!Number.isInteger(value) || value < low || value > high) {
    throw new KubeError(
      'ERR_KUBE_CONFIG_UNSUPPORTED',
      `Cannot use ${what} ${value}: expected ${low} to ${high}`,
    );
  }
  return value;
}

/**
 * Checks every input and turns the request into a plan. Throws a {@link KubeError} (or the registry's or
 * client's own error for a malformed reference, key or Enarx.toml) for any input the objects cannot be
 * made from, before anything is printed.
 */
export function planManifest(request: ManifestRequest): ManifestPlan {
  const ref = checkReference(request.reference);
  const image = checkImage(request.image);
  const name = request.name === undefined ? defaultName(ref.repository) : checkName(request.name);
  const namespace = checkNamespace(request.namespace ?? name);
  const replicas = checkInteger(request.replicas, '--replicas', 1, MAX_REPLICAS);
  const gracePeriodSeconds = checkInteger(request.gracePeriodSeconds, '--grace-period', 1, 3600);
  // The Enarx.toml carries no secret value: its [[secrets]] table names secrets (broker, fingerprint,
  // where they go), and the parser refuses any other key, so a `value = ...` cannot slip in.
  const config = parseEnarxToml(request.enarxToml.text);
  checkSupportedFiles(config.files);
  const listen = listenFiles(config, request.enarxToml.source);
  if (request.verifyKeys.length === 0 && !request.allowUnsigned) {
    throw new KubeError(
      'ERR_KUBE_SECRET_INPUT',
      'Cannot make the manifest: no --verify-key for the Pods to check the signature with; give one, or --allow-unsigned',
      { detail: 'no --verify-key; give one, or --allow-unsigned' },
    );
  }
  const verifyKeys = request.verifyKeys.map((k) => publicVerifyKey(k.text, k.source));
  let simRoot: ManifestPlan['simRoot'];
  if (request.backend === 'sim') {
    if (request.simRoot === undefined)
      throw new TypeError('Cannot plan a sim manifest without a simulated root');
    let fingerprint: string;
    try {
      fingerprint = parseSimRoot(request.simRoot.bytes).fingerprint;
    } catch (cause) {
      throw new KubeError(
        'ERR_KUBE_CONFIG_UNSUPPORTED',
        `Cannot use the simulated root ${request.simRoot.source}: ${reasonOf(cause)}`,
        { cause },
      );
    }
    simRoot = { bytes: request.simRoot.bytes, fingerprint };
  }
  return {
    reference: request.reference,
    ref,
    image,
    replicas,
    backend: request.backend,
    name,
    namespace,
    enarxToml: request.enarxToml.text,
    config,
    listen,
    egress: egressOf(ref, request.plainHttp, config, request.backend),
    verifyKeys,
    allowUnsigned: request.allowUnsigned,
    plainHttp: request.plainHttp,
    ...(simRoot === undefined ? {} : { simRoot }),
    gracePeriodSeconds,
  };
}

/**
 * Whether `text` holds the BEGIN line of a PEM private key of any kind (`PRIVATE KEY`, `EC PRIVATE KEY`,
 * `ENCRYPTED PRIVATE KEY`, `ENCRYPTED SIGSTORE PRIVATE KEY`, `OPENSSH PRIVATE KEY`, ...), well formed or not.
 */
export function holdsPrivateKey(text: string): boolean {
  return /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(text);
}
