// What this host can offer Keeps on, and for each backend it cannot, why: the answer to "why is my Keep
// simulated?" before anyone asks for one. Device nodes and configfs are looked at, never used: the cvm probe
// creates and removes one report directory (which makes no guest request) to learn the TSM provider.
import { randomBytes } from 'node:crypto';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { BACKEND_REGISTRY, type BackendName } from './backends/index.ts';
import { nodeTsmFs, TSM_REPORT_ROOT, type TsmFs } from './backends/tsm/fs.ts';
import { TSM_PROVIDERS } from './backends/tsm/report.ts';

/** The files a backend needs. Injectable so that tests can point at a fake tree. */
export interface PlatformPaths {
  /** configfs-tsm report directory (`cvm`). */
  tsmReport: string;
  /** The SEV guest device: present inside an SEV-SNP guest. */
  sevGuest: string;
  /** The TDX guest device: present inside a TD. */
  tdxGuest: string;
  /** KVM, and the SEV firmware device of a host that can launch SEV guests (`snp`). */
  kvm: string;
  sev: string;
  /** The SGX enclave device (`sgx`). */
  sgxEnclave: string;
}

/** Where Linux puts them. */
export const DEFAULT_PLATFORM_PATHS: Readonly<PlatformPaths> = Object.freeze({
  tsmReport: TSM_REPORT_ROOT,
  sevGuest: '/dev/sev-guest',
  tdxGuest: '/dev/tdx_guest',
  kvm: '/dev/kvm',
  sev: '/dev/sev',
  sgxEnclave: '/dev/sgx_enclave',
});

/** How to look at the host. Every part defaults to the real machine. */
export interface PlatformProbeOptions {
  paths?: Partial<PlatformPaths>;
  /** Filesystem access for the configfs-tsm probe. */
  fs?: TsmFs;
  /** Whether a path exists. */
  exists?: (path: string) => Promise<boolean>;
  /** The effective user id; configfs-tsm report directories can only be created by root. */
  uid?: number;
}

/**
 * Backend names `platform info` reports on: the registry's, in its order, then the backends of Enarx this
 * version does not have, whose devices it still looks for.
 */
export type PlatformBackendName = BackendName | 'snp' | 'sgx';

/** One backend's availability on this host. */
export interface BackendStatus {
  name: PlatformBackendName;
  available: boolean;
  /** Why it is not available (absent when it is). */
  reason?: string;
  /** `cvm` only: the TSM provider found (`sev_guest`, `tdx_guest`). */
  provider?: string;
}

/** What `donjon platform info` shows. */
export interface PlatformInfo {
  backends: BackendStatus[];
}

async function defaultExists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

function errno(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : String((error as Error | null)?.message ?? error);
}

async function probeCvm(paths: PlatformPaths, options: PlatformProbeOptions): Promise<BackendStatus> {
  const exists = options.exists ?? defaultExists;
  if (!(await exists(paths.tsmReport))) {
    const guest = (await exists(paths.sevGuest))
      ? paths.sevGuest
      : (await exists(paths.tdxGuest))
        ? paths.tdxGuest
        : undefined;
    const why =
      guest === undefined
        ? 'not a confidential VM, or configfs is not mounted'
        : `this guest has ${guest}, but configfs-tsm needs Linux 6.7 or later with TSM reports, and configfs mounted`;
    return {
      name: 'cvm',
      available: false,
      reason: `no configfs-tsm: ${paths.tsmReport} is missing (${why})`,
    };
  }
  const uid = options.uid ?? process.geteuid?.();
  if (uid !== 0) {
    return {
      name: 'cvm',
      available: false,
      reason: 'not root: configfs-tsm report directories can only be made by root',
    };
  }
  const fs = options.fs ?? nodeTsmFs();
  const dir = join(paths.tsmReport, `donjon-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await fs.mkdir(dir);
  } catch (error) {
    const code = errno(error);
    const reason =
      code === 'ENXIO'
        ? 'no provider: configfs-tsm has no TSM provider (the sev-guest or tdx-guest driver is not loaded)'
        : code === 'EACCES' || code === 'EPERM'
          ? `not root: cannot create a report directory in ${paths.tsmReport} (${code})`
          : `cannot probe configfs-tsm: ${code}`;
    return { name: 'cvm', available: false, reason };
  }
  let provider: string;
  try {
    provider = Buffer.from(await fs.read(join(dir, 'provider')))
      .toString('utf8')
      .replace(/\n$/, '');
  } catch (error) {
    const code = errno(error);
    return {
      name: 'cvm',
      available: false,
      reason:
        code === 'ENXIO'
          ? 'no provider: configfs-tsm has no TSM provider'
          : `cannot probe configfs-tsm: ${code}`,
    };
  } finally {
    await fs.rmdir(dir).catch(() => {});
  }
  if (!TSM_PROVIDERS.includes(provider)) {
    return {
      name: 'cvm',
      available: false,
      reason: `provider '${provider.slice(0, 32)}' is not supported (expected ${TSM_PROVIDERS.join(' or ')})`,
    };
  }
  return { name: 'cvm', available: true, provider };
}

async function probeSnp(
  paths: PlatformPaths,
  exists: (path: string) => Promise<boolean>,
): Promise<BackendStatus> {
  if (await exists(paths.sevGuest)) {
    return {
      name: 'snp',
      available: false,
      reason: `this host is itself an SEV-SNP guest (${paths.sevGuest}) and cannot launch SNP VMs; use cvm`,
    };
  }
  const missing = [];
  if (!(await exists(paths.kvm))) missing.push(paths.kvm);
  if (!(await exists(paths.sev))) missing.push(paths.sev);
  if (missing.length > 0)
    return { name: 'snp', available: false, reason: `no KVM with SEV: ${missing.join(' and ')} missing` };
  return {
    name: 'snp',
    available: false,
    reason: 'the snp backend is not part of this version (KVM and SEV are present)',
  };
}

async function probeSgx(
  paths: PlatformPaths,
  exists: (path: string) => Promise<boolean>,
): Promise<BackendStatus> {
  if (!(await exists(paths.sgxEnclave))) {
    return { name: 'sgx', available: false, reason: `no SGX: ${paths.sgxEnclave} is missing` };
  }
  return {
    name: 'sgx',
    available: false,
    reason: `the sgx backend is not part of this version (${paths.sgxEnclave} is present)`,
  };
}

/** How to learn whether this host can offer a backend the registry does not offer by default. */
type Probe = (paths: PlatformPaths, options: PlatformProbeOptions) => Promise<BackendStatus>;

/** A probe for every registered backend that is not offered by default; a test checks none is missing. */
export const BACKEND_PROBES: { readonly [N in BackendName]?: Probe } = { cvm: probeCvm };

async function probeRegistered(
  name: BackendName,
  offeredByDefault: boolean,
  paths: PlatformPaths,
  options: PlatformProbeOptions,
): Promise<BackendStatus> {
  if (offeredByDefault) return { name, available: true };
  const probe = BACKEND_PROBES[name];
  if (probe === undefined)
    return { name, available: false, reason: 'this build cannot tell whether it works here' };
  return probe(paths, options);
}

/**
 * Which backends this host can offer and, for each it cannot, why. The registry's backends offered by
 * default (`sim`, `nil`) are always available; `cvm` needs configfs-tsm with an sev_guest or tdx_guest
 * provider and root; `snp` and `sgx` are reported on (their devices) but not offered by this version.
 */
export async function platformInfo(options: PlatformProbeOptions = {}): Promise<PlatformInfo> {
  const paths: PlatformPaths = { ...DEFAULT_PLATFORM_PATHS, ...options.paths };
  const exists = options.exists ?? defaultExists;
  const backends: BackendStatus[] = [];
  for (const b of BACKEND_REGISTRY) {
    backends.push(await probeRegistered(b.name, b.offeredByDefault, paths, { ...options, exists }));
  }
  backends.push(await probeSnp(paths, exists), await probeSgx(paths, exists));
  return { backends };
}

/** The registry's backends this host can offer, as `platformInfo` found them: what `donjon host` serves. */
export function offeredBackends(info: PlatformInfo): BackendName[] {
  const available = new Set(info.backends.filter((b) => b.available).map((b) => b.name));
  return BACKEND_REGISTRY.filter((b) => available.has(b.name)).map((b) => b.name);
}
