// The backend registry: the one table of the backends this build knows. The Keep Loader builds a Keep's
// backend from it, the Keep Manager learns from it which backends a host offers by default, and
// `platformInfo` reports on each of its entries. The wire protocol names the same backends in its own enum
// (src/protocol/messages.ts, the schema of `create-keep` and `keep`); a test holds the two together.
import { readFileSync } from 'node:fs';
import type { DcapCollateral } from '../../attestation/index.ts';
import { signSimReport } from '../../attestation/sim/index.ts';
import { CollateralClient } from '../collateral/index.ts';
import { parseSimRootOnce } from '../simroot.ts';
import { type CvmBackendOptions, cvmBackend, cvmCollateralOptions } from './cvm.ts';
import { sgxSimBackend } from './sgx-sim.ts';

/**
 * Evidence as a backend hands it to a Keep: an SNP report and the certificates a verifier needs (DER), a TDX
 * quote (which carries its own PCK chain) with its DCAP collateral when the host could get it, or nothing.
 */
export type BackendEvidence =
  | { kind: 'sev-snp'; report: Uint8Array; certs: Uint8Array[] }
  | { kind: 'tdx'; quote: Uint8Array; collateral?: DcapCollateral }
  | { kind: 'sgx'; quote: Uint8Array; collateral?: DcapCollateral }
  | { kind: 'none' };

/** What the Keep Loader needs of a backend once the Keep runs: evidence for the report_data the Keep supplies. */
export interface Backend {
  readonly name: BackendName;
  evidence(reportData: Uint8Array): Promise<BackendEvidence>;
  /**
   * The DCAP collateral of a quote the Keep made itself (the `gramine` evidence source); absent where the
   * backend has none to give.
   */
  collateral?(quote: Uint8Array): Promise<DcapCollateral>;
}

/**
 * What a backend is built from: the public values of the Keep Loader's configuration it may use, and the
 * measurement the Keep Loader took of the runtime it starts.
 */
export interface BackendSetup {
  /** The Keep's id, for what the backend logs. */
  id: string;
  /** `sim`: the host's simulated root (its VCEK chain and chip key). */
  simRootPath?: string;
  /** `sgx-sim`: the host's simulated Intel platform (its PCK chain and quoting enclave key). */
  simSgxRootPath?: string;
  /** `cvm`: the host's collateral cache (AMD KDS, Intel PCS). */
  collateralCacheDir?: string;
  /** SHA-384 of the exact runtime bytes the Keep Loader starts. */
  measurement: Uint8Array;
  /** SHA-256 of the same bytes: the MRENCLAVE of an `sgx-sim` Keep. */
  mrEnclave: Uint8Array;
  /** Where the backend tells the operator something (a line, no trailing newline). */
  warn(message: string): void;
}

/** One backend of the registry. */
export interface BackendEntry {
  readonly name: BackendName;
  /**
   * Whether a host offers it without asking the platform: `sim`, `sgx-sim` and `nil` run anywhere; `cvm` is offered
   * only where `platformInfo` finds configfs-tsm.
   */
  readonly offeredByDefault: boolean;
  /** Builds the backend of one Keep. Throws when the setup lacks what the backend needs. */
  create(setup: BackendSetup): Backend;
}

/** `nil`: a separate process and the Wasm sandbox, with no evidence at all. */
export function nilBackend(): Backend {
  return { name: 'nil', evidence: async () => ({ kind: 'none' }) };
}

/**
 * `sim`: the simulated AMD secure processor. Like the PSP it lives outside the Keep: it knows the measurement it
 * took of the runtime it launched and signs reports whose report_data the Keep supplies, with this host's
 * simulated VCEK.
 */
export function simBackend(simRootPath: string, measurement: Uint8Array): Backend {
  const root = parseSimRootOnce(new Uint8Array(readFileSync(simRootPath)), simRootPath);
  const certs = [root.vcekDer, root.askDer, root.arkDer];
  return {
    name: 'sim',
    evidence: async (reportData) => ({
      kind: 'sev-snp',
      report: signSimReport(root, { reportData, measurement }),
      certs,
    }),
  };
}

export { cvmBackend, cvmCollateralOptions } from './cvm.ts';
export { type SgxBackendEvidence, type SgxSimBackend, sgxSimBackend } from './sgx-sim.ts';

/** The `cvm` backend's options for one Keep: the host's collateral cache, opened on first use. */
function cvmOptions(setup: BackendSetup): CvmBackendOptions {
  const cacheDir = setup.collateralCacheDir;
  if (cacheDir === undefined) return {};
  let client: CollateralClient | undefined;
  return cvmCollateralOptions(() => {
    client ??= new CollateralClient({ cacheDir });
    return client;
  }, setup.warn);
}

// The table itself, keyed by name in the order hosts list backends. `BackendName` comes from its keys.
const REGISTRY = {
  sim: {
    offeredByDefault: true,
    create: (setup: BackendSetup): Backend => {
      if (!setup.simRootPath) throw new Error('Cannot start a sim Keep: no simulated root was given');
      return simBackend(setup.simRootPath, setup.measurement);
    },
  },
  nil: { offeredByDefault: true, create: (): Backend => nilBackend() },
  cvm: { offeredByDefault: false, create: (setup: BackendSetup): Backend => cvmBackend(cvmOptions(setup)) },
  'sgx-sim': {
    offeredByDefault: true,
    create: (setup: BackendSetup): Backend => {
      if (!setup.simSgxRootPath)
        throw new Error('Cannot start an sgx-sim Keep: no simulated Intel platform was given');
      return sgxSimBackend(setup.simSgxRootPath, setup.mrEnclave);
    },
  },
} as const;

/** The name of a backend this build knows. */
export type BackendName = keyof typeof REGISTRY;

/** Every backend this build knows, in the order hosts list them. */
export const BACKEND_REGISTRY: readonly BackendEntry[] = Object.freeze(
  (Object.keys(REGISTRY) as BackendName[]).map((name) => Object.freeze({ name, ...REGISTRY[name] })),
);

/** Every backend this build knows. */
export const ALL_BACKENDS: readonly BackendName[] = Object.freeze(BACKEND_REGISTRY.map((b) => b.name));

/**
 * Backends a host offers by default. `cvm` is offered only where the platform has configfs-tsm (see
 * `platformInfo`); `sgx` (hardware) and `snp` are not part of this version.
 */
export const BACKENDS: readonly BackendName[] = Object.freeze(
  BACKEND_REGISTRY.filter((b) => b.offeredByDefault).map((b) => b.name),
);

/** Whether `name` is a backend this build knows. */
export function isBackendName(name: string): name is BackendName {
  return Object.hasOwn(REGISTRY, name);
}

/** The registry's entry for `name`. */
export function backendEntry(name: BackendName): BackendEntry {
  return BACKEND_REGISTRY.find((b) => b.name === name)!;
}

/** Builds the backend `name` for one Keep. Throws when `setup` lacks what that backend needs. */
export function createBackend(name: BackendName, setup: BackendSetup): Backend {
  return backendEntry(name).create(setup);
}
