// The `cvm` backend: the host is itself an SEV-SNP or TDX confidential VM and each Keep is a process inside
// it. Evidence comes from the guest kernel's configfs-tsm interface: an SEV-SNP attestation report with the
// certificate table the hypervisor supplied, or a TDX DCAP quote carrying its PCK chain. Before handing it to
// the Keep, the backend checks that it is well formed and binds exactly the report_data the Keep asked for.
import {
  AttestationError,
  type DcapCollateral,
  parseDcapCollateral,
  parseSnpReport,
} from '../../attestation/index.ts';
import { reasonOf } from '../../lib/errors.ts';
import type { CollateralClient } from '../collateral/index.ts';
import type { BackendEvidence } from './index.ts';
import { parseSnpCertTable } from './tsm/certs.ts';
import { TsmError } from './tsm/errors.ts';
import { requestTsmReport, type TsmReport, type TsmRequestOptions } from './tsm/report.ts';
import { readTdxQuote } from './tsm/tdx.ts';

/**
 * TDX evidence: a DCAP quote (v4 or v5) as the kernel returned it, PCK certificate chain inside, and the
 * quote's collateral from the host's PCS cache when it could be had.
 */
export interface TdxBackendEvidence {
  kind: 'tdx';
  quote: Uint8Array;
  collateral?: DcapCollateral;
}

/** SEV-SNP evidence, as the other backends hand it over. */
export type SnpBackendEvidence = Extract<BackendEvidence, { kind: 'sev-snp' }>;

/** What the `cvm` backend hands a Keep. The Keep side must carry the `tdx` kind as well. */
export type CvmEvidence = SnpBackendEvidence | TdxBackendEvidence;

/** The `cvm` backend, shaped like the other backends. */
export interface CvmBackend {
  readonly name: 'cvm';
  evidence(reportData: Uint8Array): Promise<CvmEvidence>;
}

/** Where and how to reach configfs-tsm; see {@link TsmRequestOptions}. */
export type CvmBackendOptions = Pick<TsmRequestOptions, 'root' | 'fs' | 'privlevel'> & {
  /**
   * Where to get the VCEK chain when the hypervisor supplied no certificate table (the host's AMD KDS cache,
   * `CollateralClient.snpCertificates`). A VLEK cannot be fetched: without a table such a report goes without.
   */
  snpCertificates?: (report: Uint8Array) => Promise<Uint8Array[]>;
  /**
   * Where to get a TDX quote's collateral (TCB info, QE identity, CRLs: the host's Intel PCS cache,
   * `CollateralClient.dcapCollateral`). Without it, or when it fails, the quote goes alone and relying parties
   * that require collateral (the default) refuse the Keep.
   */
  dcapCollateral?: (quote: Uint8Array) => Promise<DcapCollateral>;
  /** Told why a TDX quote goes without its collateral. */
  onCollateralError?: (error: unknown) => void;
};

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((v, i) => v === b[i]);
}

function snpEvidence(
  report: TsmReport,
  reportData: Uint8Array,
  privlevel: number | undefined,
): SnpBackendEvidence {
  let parsed: ReturnType<typeof parseSnpReport>;
  try {
    parsed = parseSnpReport(report.outblob);
  } catch (error) {
    if (!(error instanceof AttestationError)) throw error;
    throw new TsmError('ERR_TSM_OUTBLOB_MALFORMED', `Cannot use the SEV-SNP report: ${error.message}`, {
      cause: error,
    });
  }
  if (!equal(parsed.reportData, reportData)) {
    throw new TsmError(
      'ERR_TSM_REPORT_DATA_MISMATCH',
      'Cannot use the SEV-SNP report: it binds other report_data',
    );
  }
  if (privlevel !== undefined && parsed.vmpl !== privlevel) {
    throw new TsmError(
      'ERR_TSM_REPORT_DATA_MISMATCH',
      `Cannot use the SEV-SNP report: it was made at VMPL ${parsed.vmpl}, not ${privlevel}`,
    );
  }
  const table = parseSnpCertTable(report.auxblob ?? new Uint8Array(0));
  // The report says which key signed it; only that key's certificate, and the AMD chain above it, go along.
  const signer = parsed.signingKey === 'none' ? undefined : parsed.signingKey;
  const certs = (['vcek', 'vlek', 'ask', 'ark'] as const)
    .filter((kind) => (kind === 'vcek' || kind === 'vlek' ? kind === signer : true))
    .flatMap((kind) => table.filter((e) => e.kind === kind).map((e) => e.data));
  return { kind: 'sev-snp', report: Uint8Array.from(report.outblob), certs };
}

function tdxEvidence(report: TsmReport, reportData: Uint8Array): TdxBackendEvidence {
  const quote = readTdxQuote(report.outblob);
  if (!equal(quote.reportData, reportData)) {
    throw new TsmError(
      'ERR_TSM_REPORT_DATA_MISMATCH',
      'Cannot use the TDX quote: it binds other report_data',
    );
  }
  return { kind: 'tdx', quote: Uint8Array.from(report.outblob) };
}

/**
 * Turns one configfs-tsm report into evidence for a Keep, refusing anything that is not a well-formed report
 * of the provider's kind binding `reportData` (and, when one was requested, made at `privlevel`).
 *
 * Throws {@link TsmError}: `ERR_TSM_OUTBLOB_MALFORMED`, `ERR_TSM_REPORT_DATA_MISMATCH`,
 * `ERR_TSM_AUXBLOB_MALFORMED`, `ERR_TSM_PROVIDER_UNSUPPORTED`.
 */
export function cvmEvidence(report: TsmReport, reportData: Uint8Array, privlevel?: number): CvmEvidence {
  switch (report.provider) {
    case 'sev_guest':
      return snpEvidence(report, reportData, privlevel);
    case 'tdx_guest':
      return tdxEvidence(report, reportData);
    default:
      throw new TsmError(
        'ERR_TSM_PROVIDER_UNSUPPORTED',
        `Cannot use the report: provider '${report.provider.slice(0, 32)}' is not sev_guest or tdx_guest`,
      );
  }
}

/**
 * `cvm`: evidence from the confidential VM this host runs in, through configfs-tsm. Requests are made one at
 * a time (the kernel serialises guest requests anyway, and a queue keeps two Keeps' requests from meeting in
 * one report directory); each uses a fresh report directory.
 *
 * @example
 * const backend = cvmBackend();
 * const evidence = await backend.evidence(reportData); // { kind: 'sev-snp', report, certs } | { kind: 'tdx', quote, collateral? }
 */
export function cvmBackend(options: CvmBackendOptions = {}): CvmBackend {
  let queue: Promise<unknown> = Promise.resolve();
  return {
    name: 'cvm',
    evidence(reportData) {
      const run = async () => {
        const evidence = cvmEvidence(
          await requestTsmReport(reportData, options),
          reportData,
          options.privlevel,
        );
        if (evidence.kind === 'sev-snp' && evidence.certs.length === 0 && options.snpCertificates) {
          evidence.certs = await options.snpCertificates(evidence.report);
        }
        if (evidence.kind === 'tdx' && options.dcapCollateral) {
          // The collateral is public and Intel-signed: when PCS cannot be reached the quote still goes, and
          // the relying party decides whether a quote without it will do.
          try {
            evidence.collateral = await options.dcapCollateral(evidence.quote);
          } catch (error) {
            options.onCollateralError?.(error);
          }
        }
        return evidence;
      };
      const result = queue.then(run, run);
      queue = result.catch(() => {});
      return result;
    },
  };
}

/**
 * How the `cvm` backend completes evidence from the host's collateral cache: the VCEK chain of an SEV-SNP
 * report the hypervisor gave no certificates for, the DCAP collateral of a TDX quote. `warn` hears why a
 * quote goes without collateral.
 */
export function cvmCollateralOptions(
  client: () => Pick<CollateralClient, 'snpCertificates' | 'dcapCollateral'>,
  warn: (message: string) => void,
): Pick<CvmBackendOptions, 'snpCertificates' | 'dcapCollateral' | 'onCollateralError'> {
  return {
    snpCertificates: (report) => client().snpCertificates(report),
    dcapCollateral: async (quote) => parseDcapCollateral(await client().dcapCollateral(quote)),
    onCollateralError: (error) => warn(`the TDX quote goes without collateral: ${reasonOf(error)}`),
  };
}
