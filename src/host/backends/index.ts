import { readFileSync } from 'node:fs';
import { parseSimRoot, signSimReport } from '../../attestation/index.ts';

/** Evidence as a backend hands it to a Keep: the report and the certificates a verifier needs (DER). */
export type BackendEvidence = { kind: 'sev-snp'; report: Uint8Array; certs: Uint8Array[] } | { kind: 'none' };

/** What the Keep Loader needs of a backend once the Keep runs: evidence for the report_data the Keep supplies. */
export interface Backend {
  readonly name: BackendName;
  evidence(reportData: Uint8Array): Promise<BackendEvidence>;
}

export type BackendName = 'nil' | 'sim';

/** Backends this build offers. `cvm`, `sgx` and `snp` are not offered yet. */
export const BACKENDS: readonly BackendName[] = ['sim', 'nil'];

export function isBackendName(name: string): name is BackendName {
  return (BACKENDS as readonly string[]).includes(name);
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
