// The `sgx-sim` backend: the simulated Intel SGX platform's quoting enclave, living in the Keep Loader as the
// simulated PSP does for `sim`. It quotes an enclave whose MRENCLAVE is the SHA-256 of the runtime the Keep
// Loader launched, over the report_data the Keep supplies, and hands the quote over with the collateral the
// simulated PCS would serve for it (valid 30 days from now). A Keep that makes its own quote (the `gramine`
// evidence source) asks only for that collateral.
import { readFileSync } from 'node:fs';
import type { DcapCollateral } from '../../attestation/index.ts';
import { parseDcapQuote } from '../../attestation/index.ts';
import { makeSimSgxQuote, parseSimIntelPlatform, simSgxCollateral } from '../../attestation/sim/index.ts';

/** What the `sgx-sim` backend hands a Keep: an SGX v3 quote and its collateral. */
export interface SgxBackendEvidence {
  kind: 'sgx';
  quote: Uint8Array;
  collateral?: DcapCollateral;
}

/** The `sgx-sim` backend, shaped like the other backends. */
export interface SgxSimBackend {
  readonly name: 'sgx-sim';
  evidence(reportData: Uint8Array): Promise<SgxBackendEvidence>;
  /** The collateral of a quote made by this host's simulated platform (the `gramine` evidence source). */
  collateral(quote: Uint8Array): Promise<DcapCollateral>;
}

/**
 * `sgx-sim` for one Keep: `platformPath` is the host's stored simulated Intel platform, `mrEnclave` the
 * SHA-256 of the runtime bundle the Keep Loader starts. `now` gives the time collateral is issued at.
 */
export function sgxSimBackend(
  platformPath: string,
  mrEnclave: Uint8Array,
  now: () => Date = () => new Date(),
): SgxSimBackend {
  const platform = parseSimIntelPlatform(new Uint8Array(readFileSync(platformPath)));
  return {
    name: 'sgx-sim',
    evidence: async (reportData) => ({
      kind: 'sgx',
      quote: makeSimSgxQuote(platform, { reportData, mrEnclave }),
      collateral: simSgxCollateral(platform, now()),
    }),
    collateral: async (quote) => {
      // Only a readable SGX quote gets an answer; whether it is this platform's is the relying party's check.
      const parsed = parseDcapQuote(quote);
      if (parsed.kind !== 'sgx') throw new Error('Cannot give collateral: the quote is not an SGX quote');
      return simSgxCollateral(platform, now());
    },
  };
}
