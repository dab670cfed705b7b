// `donjon attest verify` (and the `attest` command): offline verification of attestation evidence a user holds
// in files (an SEV-SNP report or an Intel DCAP quote), with its certificates and collateral, under an optional
// policy. The files it reads are attest-files.ts, what it prints attest-report.ts, `attest inspect` attest-inspect.ts.
import { join } from 'node:path';
import {
  type AmdProduct,
  type Claims,
  type DcapCollateral,
  type Evidence,
  isAttestationError,
  type Policy,
  parseDcapCollateral,
  parsePolicy,
  tcbStatuses,
  verify,
} from '../attestation/index.ts';
import {
  type CertificateInfo,
  CollateralClient,
  certificateInfo,
  dcapFetchParameters,
} from '../host/index.ts';
import { categoryOf, isDonjonError, reasonOf } from '../lib/errors.ts';
import { type Invocation, parseCommand } from './args.ts';
import { readEvidence } from './attest-evidence.ts';
import {
  type CertFile,
  collateralFromFiles,
  type DcapFiles,
  parseTime,
  readCertificates,
  readCrl,
  readInput,
  readPolicy,
  readSigned,
  readText,
} from './attest-files.ts';
import { inspectCommand } from './attest-inspect.ts';
import {
  type AttestIo,
  type AttestResult,
  claimsTable,
  type EvidenceKind,
  jsonValue,
  summary,
  unverifiedSummary,
  warningsFor,
} from './attest-report.ts';
import { CommandError, EXIT, UsageError } from './errors.ts';
import { dataDir } from './paths.ts';

export { decodeEvidenceFile, parseTime } from './attest-files.ts';
export { type AttestIo, type AttestResult, claimsTable } from './attest-report.ts';

/**
 * Without --policy, "verified" means authentic and nothing more: every signature, chain and binding holds and
 * nothing is revoked. Debug mode, a migration agent or an out-of-date TCB are then reported in the claims (and
 * `tcbStatus`), not refused; a policy file refuses them.
 */
function authenticityOnly(kind: 'sev-snp' | 'sgx' | 'tdx'): Policy {
  return kind === 'sev-snp'
    ? parsePolicy({ allowDebug: true, allowMigrationAgent: true })
    : parsePolicy({ allowDebug: true, acceptedTcbStatuses: tcbStatuses.filter((s) => s !== 'Revoked') });
}

export const attestHelp = `Usage: donjon attest verify EVIDENCE [options]
       donjon attest inspect HOST:PORT [options]

'attest inspect' connects to a confidential service (a workload serving a tls listen file in a Keep), prints
what its certificate proves (the workload's and its configuration's digests, the registry manifest and its
signers, the runtime measurement, the evidence's claims) and whether that verifies, then closes the
connection without sending anything. Its options: --trust-sim-root SHA256, --expect-measurement HEX,
--workload FILE, --workload-digest HEX, --config-digest HEX, --signer-key FILE (each repeatable), --json.
Exit status 0 when it verifies, 3 when it does not, 4 when the service cannot be reached.

Verifies attestation evidence held in files: an AMD SEV-SNP report or an Intel DCAP quote (SGX or TDX),
raw or as hex text, against the vendor roots built into this version, and prints the claims it proves.
Nothing is fetched unless --fetch is given.

Options:
  --cert FILE            certificates, PEM (one or many) or DER (repeatable): the VCEK or VLEK, and
                         optionally ASK/ASVK and ARK, for SEV-SNP; Intel issuer chains for DCAP collateral
  --collateral FILE      DCAP collateral as JSON (dcap-qvl QuoteCollateralV3 layout)
  --tcb-info FILE        Intel PCS TCB info response ({"tcbInfo":{...},"signature":"..."})
  --qe-identity FILE     Intel PCS QE identity response ({"enclaveIdentity":{...},"signature":"..."})
  --crl FILE             Intel Root CA CRL or PCK CRL, DER or PEM (repeatable)
  --at TIME              verify as of this RFC 3339 time, e.g. 2025-07-01T00:00:00Z (default now)
  --policy FILE          appraisal policy, JSON or TOML (default: none: verified means authentic and not
                         revoked; debug mode and the TCB status are reported, not judged)
  --fetch                fetch what is missing: the VCEK chain from AMD KDS, DCAP collateral from Intel PCS
  --cache DIR            where fetched collateral is kept (default: the data directory's collateral/)
  --kds-url URL          AMD KDS to fetch from (a proxy or mirror)
  --pcs-url URL          Intel PCS or PCCS to fetch from
  --intel-crl-url URL    where to fetch the Intel SGX Root CA CRL
  --json                 print one JSON object instead of a table
  -h, --help             show this help

Exit status: 0 verified, 3 refused (signature, chain, collateral or policy), 2 unusable input (missing or
unreadable file, unknown evidence kind, bad option, malformed policy), 4 collateral that cannot be fetched.`;

function parseVerifyArgs(argv: string[], invocation: Invocation | undefined) {
  const parsed = parseCommand(argv, {
    command: 'attest',
    positionals: true,
    invocation,
    options: {
      cert: { type: 'string', multiple: true, default: [] },
      collateral: { type: 'string' },
      'tcb-info': { type: 'string' },
      'qe-identity': { type: 'string' },
      crl: { type: 'string', multiple: true, default: [] },
      at: { type: 'string' },
      policy: { type: 'string' },
      fetch: { type: 'boolean', default: false },
      cache: { type: 'string' },
      'kds-url': { type: 'string' },
      'pcs-url': { type: 'string' },
      'intel-crl-url': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const { values, positionals } = parsed;
  if (positionals.length === 0)
    throw new UsageError('Cannot verify: no evidence file given (donjon attest verify EVIDENCE)');
  if (positionals.length > 1)
    throw new UsageError(`Cannot verify: one evidence file at a time, got ${positionals.length}`);
  return { evidencePath: positionals[0]!, values };
}

type Parsed = ReturnType<typeof parseVerifyArgs>;

function collateralClient(values: Parsed['values'], env: NodeJS.ProcessEnv): CollateralClient {
  try {
    return new CollateralClient({
      cacheDir: values.cache ?? join(dataDir(env), 'collateral'),
      ...(values['kds-url'] === undefined ? {} : { kdsUrl: values['kds-url'] }),
      ...(values['pcs-url'] === undefined ? {} : { pcsUrl: values['pcs-url'] }),
      ...(values['intel-crl-url'] === undefined ? {} : { intelRootCaCrlUrl: values['intel-crl-url'] }),
    });
  } catch (error) {
    throw new UsageError((error as Error).message, { cause: error });
  }
}

/** The AMD product (and key kind) of a VCEK/VLEK chain, from the name of the VEK's issuer (SEV-Milan, SEV-VLEK-Genoa, ...). */
function amdProductOf(vek: CertificateInfo): { product: AmdProduct; key: 'vcek' | 'vlek' } | undefined {
  const m = /^SEV-(VLEK-)?(Milan|Genoa|Turin)$/.exec(vek.issuerCn ?? '');
  return m === null ? undefined : { product: m[2] as AmdProduct, key: m[1] === undefined ? 'vcek' : 'vlek' };
}

async function snpEvidence(
  report: Uint8Array,
  parsed: Parsed,
  warnings: string[],
  io: AttestIo,
): Promise<Evidence> {
  const { values } = parsed;
  for (const flag of ['collateral', 'tcb-info', 'qe-identity'] as const) {
    if (values[flag] !== undefined)
      warnings.push(`--${flag} was ignored: it applies to DCAP quotes, not SEV-SNP reports`);
  }
  const certs = values.cert.flatMap(readCertificates);
  const crls = values.crl.map((path) => readCrl(path).der);
  let client: CollateralClient | undefined;
  if (!certs.some((c) => c.info.snpEndorsementKey)) {
    if (!values.fetch) {
      throw new UsageError(
        'Cannot verify an SEV-SNP report without the VCEK (or VLEK) that signed it: pass it with --cert ' +
          '(AMD KDS serves VCEKs by chip id and TCB), or add --fetch to get it from AMD KDS',
      );
    }
    client = collateralClient(values, io.env);
    const fetched = await client.snpCertificates(report);
    certs.push(...fetched.map((der) => ({ der, info: certificateInfo(der) })));
  }
  if (values.fetch && crls.length === 0) {
    const vek = certs.find((c) => c.info.snpEndorsementKey)!;
    const chain = amdProductOf(vek.info);
    if (chain === undefined) {
      throw new UsageError(
        `Cannot fetch the CRL of a VCEK issued by ${vek.info.issuerCn ?? 'an unnamed issuer'}: not an AMD product`,
      );
    }
    client ??= collateralClient(values, io.env);
    crls.push(await client.amdCrl(chain.product, chain.key));
  }
  return { kind: 'sev-snp', report, certs: certs.map((c) => c.der), ...(crls.length > 0 ? { crls } : {}) };
}

async function dcapEvidence(
  kind: 'sgx' | 'tdx',
  quote: Uint8Array,
  parsed: Parsed,
  now: Date,
  warnings: string[],
  io: AttestIo,
): Promise<Evidence> {
  const { values } = parsed;
  const separate =
    values['tcb-info'] !== undefined || values['qe-identity'] !== undefined || values.crl.length > 0;
  if (values.collateral !== undefined && separate) {
    throw new UsageError(
      'Cannot use --collateral with --tcb-info, --qe-identity or --crl: give one or the other',
    );
  }
  if (values.cert.length > 0 && !separate) {
    warnings.push('--cert was ignored: a quote carries its PCK chain, and collateral JSON its issuer chains');
  }
  let json: unknown;
  if (values.collateral !== undefined) {
    const text = readText(values.collateral, 'collateral');
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new UsageError(
        `Cannot read collateral ${values.collateral}: not JSON (${(error as Error).message})`,
      );
    }
  } else if (separate || values.fetch) {
    const files: DcapFiles = {
      certs: values.cert.flatMap(readCertificates),
      crls: values.crl.map(readCrl),
      ...(values['tcb-info'] === undefined
        ? {}
        : { tcbInfo: readSigned(values['tcb-info'], 'TCB info', ['tcbInfo']) }),
      ...(values['qe-identity'] === undefined
        ? {}
        : {
            qeIdentity: readSigned(values['qe-identity'], 'QE identity', ['enclaveIdentity', 'qeIdentity']),
          }),
    };
    let quoteChain: CertFile[] = [];
    try {
      quoteChain = dcapFetchParameters(quote).pckChain.map((der) => ({ der, info: certificateInfo(der) }));
    } catch {
      // A quote without a readable PCK chain: the issuer chains must then come from --cert.
    }
    const fetched = values.fetch ? await collateralClient(values, io.env).dcapCollateral(quote) : undefined;
    json = separate ? collateralFromFiles(files, quoteChain, now, fetched) : fetched;
  }
  if (json === undefined) return { kind, quote };
  let collateral: DcapCollateral;
  try {
    collateral = parseDcapCollateral(json);
  } catch (error) {
    throw new UsageError(`Cannot use the DCAP collateral: ${reasonOf(error)}`, { cause: error });
  }
  return { kind, quote, collateral };
}

function print(result: AttestResult, json: boolean, io: AttestIo): void {
  if (json) io.stdout(`${JSON.stringify(result, jsonValue)}\n`);
  else for (const w of result.warnings) io.stderr(`donjon: warning: ${w}\n`);
}

async function verifyCommand(argv: string[], io: AttestIo, invocation: Invocation): Promise<number> {
  let printed = false;
  const warnings: string[] = [];
  let kind: EvidenceKind | undefined;
  let bytes: Uint8Array | undefined;
  let evidenceForm: string | undefined;
  try {
    const parsed = parseVerifyArgs(argv, invocation);
    const { values, evidencePath } = parsed;
    const read = readEvidence(readInput(evidencePath, 'evidence'), evidencePath);
    ({ bytes, kind } = read);
    evidenceForm = read.form;
    // Which form was read, so that a user who passed a wrapper or a padded buffer knows what was verified.
    if (!values.json) io.stderr(`donjon: read ${evidencePath} as ${read.form}: ${kind} evidence\n`);
    const now = values.at === undefined ? new Date() : parseTime(values.at);
    const policy = values.policy === undefined ? authenticityOnly(kind) : readPolicy(values.policy);
    const evidence =
      kind === 'sev-snp'
        ? await snpEvidence(bytes, parsed, warnings, io)
        : await dcapEvidence(kind, bytes, parsed, now, warnings, io);

    let claims: Claims;
    try {
      claims = verify(evidence, policy, { now });
    } catch (error) {
      if (!isAttestationError(error)) throw error;
      const result: AttestResult = {
        verified: false,
        ...unverifiedSummary(kind, bytes),
        evidenceForm,
        warnings,
        claims: null,
        error: { code: error.code, message: error.message },
      };
      print(result, values.json, io);
      printed = true;
      throw CommandError.rephrase(error, values.json ? error.message : `${error.message} (${error.code})`);
    }
    warnings.push(...warningsFor(claims));
    const result: AttestResult = { verified: true, ...summary(claims), evidenceForm, warnings, claims };
    print(result, values.json, io);
    if (!values.json) io.stdout(claimsTable(claims));
    return EXIT.ok;
  } catch (error) {
    // Nothing was decided about the evidence (unusable input, a failed fetch): --json still prints its object.
    if (!printed && invocation.json && isDonjonError(error) && categoryOf(error) !== 'internal') {
      const result: AttestResult = {
        verified: false,
        ...(kind === undefined ? {} : { kind }),
        warnings,
        claims: null,
        error: { code: error.code, message: error.message },
      };
      io.stdout(`${JSON.stringify(result)}\n`);
    }
    throw error;
  }
}

const processIo: AttestIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
};

/**
 * `donjon attest SUBCOMMAND`: `verify` (evidence in files) or `inspect` (a service's certificate). Returns
 * the exit status (0 verified; `inspect`: 3 for a service that does not verify, after printing its report);
 * `verify` throws {@link UsageError} (exit 2) for unusable input and, after printing the result, a
 * {@link CommandError} of category refused (exit 3) for evidence that was rejected. `io` defaults to the
 * process's streams and environment; `invocation` is told whether --json was given.
 */
export async function attestCommand(
  argv: string[],
  io: AttestIo = processIo,
  invocation: Invocation = { json: false },
): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined)
    throw new UsageError('Cannot run attest: no subcommand given (donjon attest verify EVIDENCE)');
  if (sub === 'inspect') return inspectCommand(rest, io, invocation);
  if (sub !== 'verify')
    throw new UsageError(`Cannot run attest ${sub}: no such subcommand (attest has verify and inspect)`);
  return verifyCommand(rest, io, invocation);
}
