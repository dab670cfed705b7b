// Access to the real-hardware samples in shared/evidence (read in place, never copied), and the map from
// each SNP report to the VCEK/VLEK and AMD chain that verify it (PROVENANCE.md section 1).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readPem } from '../../src/lib/pem.ts';

/** The evidence folder, relative to the project root. */
export const EVIDENCE = new URL('../../../shared/evidence/', import.meta.url);

/** Whether the evidence folder is there. */
export const HAVE_EVIDENCE = existsSync(fileURLToPath(new URL('RESULTS.json', EVIDENCE)));

/** The `skip` option for tests that need the evidence folder: a plain message when it is missing. */
export const NEEDS_EVIDENCE: string | false = HAVE_EVIDENCE
  ? false
  : 'shared/evidence not found: real-hardware vectors skipped';

/** Bytes of an evidence file. */
export function evidenceBytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(path, EVIDENCE)));
}

/** An SNP report from the evidence folder (`.hex` files hold hex text). */
export function reportBytes(path: string): Uint8Array {
  if (path.endsWith('.hex')) {
    return new Uint8Array(Buffer.from(readFileSync(new URL(path, EVIDENCE), 'utf8').trim(), 'hex'));
  }
  return evidenceBytes(path);
}

/** DER of every certificate in an evidence file (PEM or one DER certificate). */
export function certDers(path: string): Uint8Array[] {
  const bytes = evidenceBytes(path);
  const text = Buffer.from(bytes).toString('latin1');
  return text.includes('-----BEGIN CERTIFICATE-----') ? pemCertificates(text) : [bytes];
}

/** One SNP sample: its report, the certificate that signed it and the AMD chain (ASK/ASVK, ARK). */
export interface SnpSample {
  report: string;
  vek: string;
  chain: string;
  product: 'Milan' | 'Genoa' | 'Turin';
}

const MILAN_VCEK = 'roots/AMD_KDS_vcek_cert_chain_Milan.pem';
const GENOA_VCEK = 'roots/AMD_KDS_vcek_cert_chain_Genoa.pem';

/** The SNP samples of shared/evidence with their certificates (PROVENANCE.md section 1). */
export const SNP_SAMPLES: readonly SnpSample[] = [
  {
    report: 'virtee-sev/report_milan.hex',
    vek: 'virtee-sev/vcek_milan.der',
    chain: MILAN_VCEK,
    product: 'Milan',
  },
  {
    report: 'go-sev-guest/attestation.bin',
    vek: 'go-sev-guest/vcek.testcer',
    chain: MILAN_VCEK,
    product: 'Milan',
  },
  {
    report: 'trustee/snp__test-report.bin',
    vek: 'trustee/snp__test-vcek.der',
    chain: MILAN_VCEK,
    product: 'Milan',
  },
  {
    report: 'trustee/snp__test-vlek-report.bin',
    vek: 'trustee/snp__test-vlek.der',
    chain: 'roots/AMD_KDS_vlek_cert_chain_Milan.pem',
    product: 'Milan',
  },
  {
    report: 'trustee/az-snp-vtpm__milan_snp_report.bin',
    vek: 'trustee/az-snp-vtpm__vcek_leaf.pem',
    chain: MILAN_VCEK,
    product: 'Milan',
  },
  {
    report: 'trustee/az-snp-vtpm__genoa_snp_report.bin',
    vek: 'trustee/az-snp-vtpm__vcek-genoa.pem',
    chain: GENOA_VCEK,
    product: 'Genoa',
  },
  {
    report: 'enarx-steward/milan.signed.crl.report.bin',
    vek: 'enarx-steward/milan.signed.crl.vcek.der',
    chain: MILAN_VCEK,
    product: 'Milan',
  },
  {
    report: 'routex-client-lua/report-milan.bin',
    vek: 'routex-client-lua/vcek-milan.pem',
    chain: MILAN_VCEK,
    product: 'Milan',
  },
  {
    report: 'routex-client-lua/report-genoa-v3.bin',
    vek: 'routex-client-lua/vcek-genoa.pem',
    chain: GENOA_VCEK,
    product: 'Genoa',
  },
  {
    report: 'routex-client-lua/report-genoa-v5.bin',
    vek: 'routex-client-lua/vcek-genoa-v5.pem',
    chain: GENOA_VCEK,
    product: 'Genoa',
  },
  {
    report: 'routex-client-lua/report-turin.bin',
    vek: 'routex-client-lua/vcek-turin.pem',
    chain: 'roots/AMD_KDS_vcek_cert_chain_Turin.pem',
    product: 'Turin',
  },
];

/** RESULTS.json's decoding of one SNP report and of its checks (the oracle). */
export interface SnpResult {
  report: Record<string, unknown> & {
    version: number;
    reported_tcb: Record<string, number | string>;
    chip_id: string;
    report_data: string;
    measurement: string;
  };
  checks: {
    vek_validity: [string, string];
    vek_extensions: Record<string, number | string>;
    ark_sha256: string;
  };
}

/** RESULTS.json's "snp" section. */
export function snpResults(): Record<string, SnpResult> {
  return JSON.parse(readFileSync(new URL('RESULTS.json', EVIDENCE), 'utf8')).snp;
}

/** A time inside the sample's VEK validity: one day after it starts (every chain certificate is older). */
export function timeInside(result: SnpResult): Date {
  const start = new Date(`${result.checks.vek_validity[0].replace(' ', 'T')}`);
  return new Date(start.getTime() + 86_400_000);
}

/** The VEK DER and the chain (ASK/ASVK, ARK) DERs of a sample. */
export function sampleCerts(sample: SnpSample): { vek: Uint8Array; ask: Uint8Array; ark: Uint8Array } {
  const [ask, ark] = certDers(sample.chain);
  return { vek: certDers(sample.vek)[0]!, ask: ask!, ark: ark! };
}

/** A DCAP quote from the evidence folder (`.hex` and `.txt` files hold hex text, maybe 0x-prefixed). */
export function quoteBytes(path: string): Uint8Array {
  if (path.endsWith('.hex') || path.endsWith('.txt')) {
    const text = readFileSync(new URL(path, EVIDENCE), 'utf8').trim().replace(/^0x/, '');
    return new Uint8Array(Buffer.from(text, 'hex'));
  }
  return evidenceBytes(path);
}

/** Text of an evidence file. */
export function evidenceText(path: string): string {
  return readFileSync(new URL(path, EVIDENCE), 'utf8');
}

/** The real DCAP quotes of shared/evidence (PROVENANCE.md section 2; the holdout set is never read). */
export const DCAP_SAMPLES: readonly string[] = [
  'dcap-qvl/sgx_quote',
  'dcap-qvl/tdx_quote',
  'dcap-qvl/tdx_quote_outdated',
  'dcap-qvl/near_quote_hex.txt',
  'dcap-qvl/tdx-quote.hex',
  'dcap-qvl/quote-from-tappd.hex',
  'go-tdx-guest/tdx_prod_quote_SPR_E4.dat',
  'go-tdx-guest/quote_v5_sample.dat',
  'go-tdx-guest/cos-113-tdx-quote.dat',
  'trustee/occlum_quote.dat',
  'trustee/tdx_quote_4.dat',
  'trustee/tdx_quote_5.dat',
  'trustee/tdx_quote_6.dat',
  'trustee/az-tdx-vtpm__td-quote.bin',
  'enarx-steward/icelake.signed.tcb.crl.multi.xeon.quote.bin',
  'enarx-steward/icelake.signed.tcb.crl.single.i5.quote.bin',
];

/** RESULTS.json's decoding of one DCAP quote and of its checks (the oracle). */
export interface DcapResult {
  kind: 'SGX' | 'TDX1.0' | 'TDX1.5';
  header: Record<string, string | number>;
  body: Record<string, string | number>;
  quote_len: number;
  sig_data_len: number;
  trailing_bytes: number;
  cert_data_type: number;
  qe_report: Record<string, string | number>;
  qe_auth_len: number;
  checks: Record<string, unknown> & {
    pck_validity: [string, string];
    pck_extensions: {
      ppid: string;
      tcb_comp_svns: number[];
      pcesvn: number;
      cpusvn: string;
      pceid: string;
      fmspc: string;
      sgx_type: number;
    };
    pck_chain_subjects: string[];
  };
}

/** RESULTS.json's "dcap" section, without the holdout entries. */
export function dcapResults(): Record<string, DcapResult> {
  const all = JSON.parse(readFileSync(new URL('RESULTS.json', EVIDENCE), 'utf8')).dcap as Record<
    string,
    DcapResult
  >;
  return Object.fromEntries(Object.entries(all).filter(([k]) => DCAP_SAMPLES.includes(k)));
}

/** A time inside a DCAP sample's PCK validity (and its CA's): one day after the PCK was issued. */
export function quoteTime(result: DcapResult): Date {
  return new Date(new Date(`${result.checks.pck_validity[0].replace(' ', 'T')}`).getTime() + 86_400_000);
}

/** The dcap-qvl collateral JSON of a sample, parsed (not yet checked). */
export function collateralJson(path: string): Record<string, string> {
  return JSON.parse(evidenceText(path));
}

/** DER of every CERTIFICATE block of a PEM text. */
function pemCertificates(text: string): Uint8Array[] {
  return readPem(text, { label: 'CERTIFICATE' }).map((b) => b.der);
}
