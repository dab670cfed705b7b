import { readFileSync } from 'node:fs';
import type { DcapCollateral } from '../../attestation/index.ts';
import { parseSimRoot, signSimReport } from '../../attestation/sim/index.ts';

/**
 * Evidence as a backend hands it to a Keep: an SNP report and the certificates a verifier needs (DER), a TDX
 * quote (which carries its own PCK chain) with its DCAP collateral when the host could get it, or nothing.
 */
export type BackendEvidence =
  | { kind: 'sev-snp'; report: Uint8Array; certs: Uint8Array[] }
  | { kind: 'tdx'; quote: Uint8Array; collateral?: DcapCollateral }
  | { kind: 'none' };

/** What the Keep Loader needs of a backend once the Keep runs: evidence for the report_data the Keep supplies. */
export interface Backend {
  readonly name: BackendName;
  evidence(reportData: Uint8Array): Promise<BackendEvidence>;
}

export type BackendName = 'nil' | 'sim' | 'cvm';

/**
 * Backends a host offers by default. `cvm` is offered only where the platform has configfs-tsm (see
 * `platformInfo`); `sgx` and `snp` are not part of this version.
 */
export const BACKENDS: readonly BackendName[] = ['sim', 'nil'];

/** Every backend this build knows. */
export const ALL_BACKENDS: readonly BackendName[] = ['sim', 'nil', 'cvm'];

export function isBackendName(name: string): name is BackendName {
  return (ALL_BACKENDS as readonly string[]).includes(name);
}

export { cvmBackend } from './cvm.ts';

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
  const root = parseSimRoot(new Uint8Array(readFileSync(simRootPath)));
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
