import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { type AttestIo, attestCommand, decodeEvidenceFile, parseTime } from '../../src/cli/attest.ts';
import { type CommandError, exitStatusOf, UsageError } from '../../src/cli/errors.ts';
import { isDonjonError } from '../../src/lib/errors.ts';
import { EVIDENCE, NEEDS_EVIDENCE } from '../attestation/evidence.ts';
import { runCli } from '../helpers.ts';
import {
  dcapQvlCollateral,
  dcapQvlPcsRoutes,
  FakeServices,
  file,
  kdsRoutes,
  text,
} from '../host/collateral/fake-services.ts';

/** An evidence file's path as a user would type it. */
const ev = (path: string): string => fileURLToPath(new URL(path, EVIDENCE));

const scratch = mkdtempSync(join(tmpdir(), 'donjon-attest-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let scratchCount = 0;
/** A temporary file outside the project (derived evidence is never written into the tree). */
function temp(content: string | Uint8Array, suffix = ''): string {
  const path = join(scratch, `f${++scratchCount}${suffix}`);
  writeFileSync(path, content);
  return path;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  error?: Error;
}

/** Runs `donjon attest verify ARGS` in process, ending the way the donjon command does. */
async function verify(...args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io: AttestIo = {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    env: { DONJON_HOME: join(scratch, 'home') },
  };
  try {
    const code = await attestCommand(['verify', ...args], io);
    return { code, stdout, stderr };
  } catch (error) {
    if (isDonjonError(error)) return { code: exitStatusOf(error), stdout, stderr, error };
    throw error;
  }
}

/** The one JSON object of a `--json` run. */
function result(run: Run): Record<string, unknown> & { claims: Record<string, unknown> | null } {
  const lines = run.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `one JSON line expected, got: ${run.stdout}`);
  return JSON.parse(lines[0]!);
}

interface SnpOracle {
  report: {
    version: number;
    policy: string;
    measurement: string;
    report_data: string;
    chip_id: string;
    reported_tcb: Record<string, number | string>;
  };
  checks: { vek_validity: [string, string] };
}

interface DcapOracle {
  kind: string;
  header: { version: number };
  body: Record<string, string>;
  checks: { tcb_level: { status: string; advisoryIDs: string[] | null } | null };
}

const oracle = NEEDS_EVIDENCE
  ? { snp: {}, dcap: {} }
  : (JSON.parse(text('RESULTS.json')) as {
      snp: Record<string, SnpOracle>;
      dcap: Record<string, DcapOracle>;
    });

/** RFC 3339 time one day into the sample's VCEK validity. */
function atFor(report: string): string {
  const start = new Date(`${oracle.snp[report]!.checks.vek_validity[0].replace(' ', 'T')}`);
  return new Date(start.getTime() + 86_400_000).toISOString();
}

const ALLOW_DEBUG_TOML = 'allowDebug = true\n';

const SNP_SAMPLES: readonly { report: string; certs: string[]; policy?: string }[] = [
  { report: 'virtee-sev/report_milan.hex', certs: ['virtee-sev/vcek_milan.der'] },
  { report: 'go-sev-guest/attestation.bin', certs: ['go-sev-guest/vcek.testcer'], policy: ALLOW_DEBUG_TOML },
  { report: 'routex-client-lua/report-genoa-v3.bin', certs: ['routex-client-lua/vcek-chain-genoa.pem'] },
  { report: 'routex-client-lua/report-genoa-v5.bin', certs: ['routex-client-lua/vcek-chain-genoa-v5.pem'] },
  { report: 'routex-client-lua/report-turin.bin', certs: ['routex-client-lua/vcek-chain-turin.pem'] },
  {
    report: 'trustee/snp__test-vlek-report.bin',
    certs: ['trustee/snp__test-vlek.der', 'roots/AMD_KDS_vlek_cert_chain_Milan.pem'],
  },
];

describe('donjon attest verify with real SEV-SNP reports', { skip: NEEDS_EVIDENCE }, () => {
  for (const sample of SNP_SAMPLES) {
    test(`attestCommand() verifies ${sample.report} and reports what RESULTS.json decoded`, async () => {
      const expected = oracle.snp[sample.report]!.report;
      const args = [ev(sample.report), ...sample.certs.flatMap((c) => ['--cert', ev(c)])];
      if (sample.policy !== undefined) args.push('--policy', temp(sample.policy, '.toml'));
      const run = await verify(...args, '--at', atFor(sample.report), '--json');
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const r = result(run);
      assert.equal(r['verified'], true);
      assert.equal(r['kind'], 'sev-snp');
      assert.equal(r['version'], expected.version);
      assert.equal(r['measurement'], expected.measurement);
      assert.equal(r['reportData'], expected.report_data);
      assert.equal(r['debug'], (BigInt(expected.policy) & (1n << 19n)) !== 0n);
      assert.equal(r['tcbStatus'], undefined);
      assert.ok(Array.isArray(r['warnings']));
      assert.equal(r['error'], undefined);
      const claims = r.claims!;
      assert.equal(claims['chipId'], expected.chip_id);
      const tcb = claims['tcb'] as Record<string, number>;
      for (const k of ['bootloader', 'tee', 'snp', 'microcode', 'fmc'] as const) {
        assert.equal(tcb[k], expected.reported_tcb[k], k);
      }
    });
  }

  test('attestCommand() reads a report given as hex text with line breaks like the raw report', async () => {
    const raw = file('go-sev-guest/attestation.bin');
    const hex = Buffer.from(raw)
      .toString('hex')
      .toUpperCase()
      .replace(/(.{64})/g, '$1\n');
    const policy = temp(ALLOW_DEBUG_TOML, '.toml');
    const at = atFor('go-sev-guest/attestation.bin');
    const cert = ev('go-sev-guest/vcek.testcer');
    const fromHex = await verify(temp(hex), '--cert', cert, '--policy', policy, '--at', at, '--json');
    const fromRaw = await verify(
      ev('go-sev-guest/attestation.bin'),
      '--cert',
      cert,
      '--policy',
      policy,
      '--at',
      at,
      '--json',
    );
    assert.equal(fromHex.code, 0, fromHex.stdout);
    const { evidenceForm: hexForm, ...hexResult } = result(fromHex);
    const { evidenceForm: rawForm, ...rawResult } = result(fromRaw);
    assert.deepEqual(hexResult, rawResult);
    assert.deepEqual([hexForm, rawForm], ['hex text', 'raw bytes']);
  });

  test('attestCommand() takes the VCEK, ASK and ARK from one PEM bundle or from separate files', async () => {
    const at = atFor('routex-client-lua/report-turin.bin');
    const report = ev('routex-client-lua/report-turin.bin');
    const bundle = await verify(
      report,
      '--cert',
      ev('routex-client-lua/vcek-chain-turin.pem'),
      '--at',
      at,
      '--json',
    );
    const separate = await verify(
      report,
      '--cert',
      ev('routex-client-lua/vcek-turin.pem'),
      '--cert',
      ev('roots/AMD_KDS_vcek_cert_chain_Turin.pem'),
      '--at',
      at,
      '--json',
    );
    assert.equal(bundle.code, 0, bundle.stdout);
    assert.deepEqual(result(bundle), result(separate));
  });

  test('attestCommand() prints a table of the claims, and warnings on stderr, without --json', async () => {
    const run = await verify(ev('virtee-sev/report_milan.hex'), '--cert', ev('virtee-sev/vcek_milan.der'));
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^Verified sev-snp evidence \(version 2, Milan\)\n/);
    assert.match(
      run.stdout,
      /\n {2}measurement +7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f\n/,
    );
    assert.match(run.stdout, /\n {2}tcb +bootloader=3 tee=0 snp=8 microcode=115\n/);
    assert.doesNotMatch(run.stdout, /warning/);
    // First which form the file was read in, then the warnings.
    const [form, ...warnings] = run.stderr.trim().split('\n');
    assert.match(form!, /^donjon: read .*report_milan\.hex as hex text: sev-snp evidence$/);
    for (const line of warnings) assert.match(line, /^donjon: warning: /);
  });

  test('attestCommand() rejects a report with one flipped measurement byte (exit 3)', async () => {
    const report = file('virtee-sev/report_milan.hex');
    const bytes = decodeEvidenceFile(report, 'report_milan.hex');
    bytes[0x90] = bytes[0x90]! ^ 0x01;
    const run = await verify(temp(bytes), '--cert', ev('virtee-sev/vcek_milan.der'), '--json');
    assert.equal(run.code, 3);
    const r = result(run);
    assert.equal(r['verified'], false);
    assert.equal(r['kind'], 'sev-snp');
    assert.equal(r.claims, null);
    assert.deepEqual(r['error'], {
      code: 'ERR_SIGNATURE_INVALID',
      message: (r['error'] as { message: string }).message,
    });
    assert.match((r['error'] as { message: string }).message, /^Cannot /);
    // The rejected report's own (unverified) fields are shown for diagnosis.
    assert.equal(r['measurement'], Buffer.from(bytes.subarray(0x90, 0xc0)).toString('hex'));
  });

  test('attestCommand() verifies an authentic debuggable guest without a policy and reports debug', async () => {
    const run = await verify(
      ev('go-sev-guest/attestation.bin'),
      '--cert',
      ev('go-sev-guest/vcek.testcer'),
      '--json',
    );
    assert.equal(run.code, 0);
    assert.equal(result(run)['verified'], true);
    assert.equal(result(run)['debug'], true);
  });

  test('attestCommand() refuses a debuggable guest under a policy that does not allow debug (exit 3)', async () => {
    const policy = temp(JSON.stringify({}), '.json');
    const run = await verify(
      ev('go-sev-guest/attestation.bin'),
      '--cert',
      ev('go-sev-guest/vcek.testcer'),
      '--policy',
      policy,
      '--json',
    );
    assert.equal(run.code, 3);
    assert.equal((result(run)['error'] as { code: string }).code, 'ERR_POLICY_VIOLATION');
    assert.equal(result(run)['debug'], true);
  });

  test('attestCommand() reports the TCB status and advisories of an authentic quote without a policy', async () => {
    const run = await verify(
      ev('dcap-qvl/sgx_quote'),
      '--collateral',
      ev('dcap-qvl/sgx_quote_collateral.json'),
      '--at',
      '2025-07-01T00:00:00Z',
      '--json',
    );
    assert.equal(run.code, 0);
    assert.equal(result(run)['verified'], true);
    assert.equal(result(run)['tcbStatus'], 'ConfigurationAndSWHardeningNeeded');
    assert.deepEqual(result(run)['advisoryIds'], ['INTEL-SA-00289', 'INTEL-SA-00615']);
  });

  test('attestCommand() enforces a JSON policy file: another measurement is refused (exit 3)', async () => {
    const policy = temp(JSON.stringify({ measurements: ['00'.repeat(48)] }), '.json');
    const run = await verify(
      ev('virtee-sev/report_milan.hex'),
      '--cert',
      ev('virtee-sev/vcek_milan.der'),
      '--policy',
      policy,
    );
    assert.equal(run.code, 3);
    assert.equal((run.error as CommandError).code, 'ERR_POLICY_VIOLATION');
    assert.match(run.error!.message, /ERR_POLICY_VIOLATION/);
  });

  test('attestCommand() rejects a report outside its VCEK validity (exit 3)', async () => {
    const run = await verify(
      ev('virtee-sev/report_milan.hex'),
      '--cert',
      ev('virtee-sev/vcek_milan.der'),
      '--at',
      '2031-01-01T00:00:00Z',
      '--json',
    );
    assert.equal(run.code, 3);
    assert.equal((result(run)['error'] as { code: string }).code, 'ERR_CERT_EXPIRED');
  });

  test('attestCommand() checks an SEV-SNP chain against an AMD CRL given with --crl', async () => {
    const args = [
      ev('go-sev-guest/attestation.bin'),
      '--cert',
      ev('go-sev-guest/vcek.testcer'),
      '--policy',
      temp(ALLOW_DEBUG_TOML, '.toml'),
      '--at',
      atFor('go-sev-guest/attestation.bin'),
      '--json',
    ];
    const milan = result(await verify(...args, '--crl', ev('enarx-steward/milan.signed.crl.crl1.der')));
    assert.equal(milan.claims!['collateralChecked'], true);
    assert.ok(!(milan['warnings'] as string[]).some((w) => /revocation/.test(w)));
    // Genoa's CRL says nothing about a Milan chain: revocation stays unchecked, and the user is told.
    const genoa = result(await verify(...args, '--crl', ev('enarx-steward/milan.signed.crl.crl0.der')));
    assert.equal(genoa['verified'], true);
    assert.equal(genoa.claims!['collateralChecked'], false);
    assert.ok((genoa['warnings'] as string[]).some((w) => /revocation was not checked/.test(w)));
    // Past the CRL's nextUpdate the chain is refused rather than checked against stale data.
    const late = await verify(
      ...args.slice(0, -3),
      '--at',
      '2024-01-01T00:00:00Z',
      '--json',
      '--crl',
      ev('enarx-steward/milan.signed.crl.crl1.der'),
    );
    assert.equal(late.code, 3);
    assert.equal((result(late)['error'] as { code: string }).code, 'ERR_COLLATERAL_EXPIRED');
  });

  test('attestCommand() says the VCEK is needed when an SEV-SNP report comes without it (exit 2)', async () => {
    const run = await verify(ev('virtee-sev/report_milan.hex'), '--json');
    assert.equal(run.code, 2);
    assert.ok(run.error instanceof UsageError);
    assert.match(run.error.message, /VCEK/);
    const r = result(run);
    assert.equal(r['verified'], false);
    assert.equal(r['kind'], 'sev-snp');
    assert.equal((r['error'] as { code: string }).code, 'ERR_USAGE');
    // An ASK/ARK chain alone is still no VCEK.
    const chainOnly = await verify(
      ev('virtee-sev/report_milan.hex'),
      '--cert',
      ev('roots/AMD_KDS_vcek_cert_chain_Milan.pem'),
    );
    assert.equal(chainOnly.code, 2);
  });
});

describe('donjon attest verify refuses unusable input with exit 2', () => {
  const cases: readonly [string, () => string[]][] = [
    ['a missing evidence file', () => [join(scratch, 'nope.bin')]],
    ['a directory', () => [scratch]],
    ['an empty file', () => [temp('')]],
    ['an odd number of hex digits', () => [temp('abc')]],
    ['bytes of no known kind', () => [temp(new Uint8Array(100).fill(7))]],
    ['an unknown flag', () => [temp('00'), '--frobnicate']],
    ['two evidence files', () => [temp('00'), temp('00')]],
    ['no evidence file', () => []],
    ['a malformed --at', () => [temp('00'), '--at', '2025-13-01T00:00:00Z']],
    ['an --at without offset', () => [temp('00'), '--at', '2025-07-01T00:00:00']],
  ];
  for (const [what, args] of cases) {
    test(`attestCommand() refuses ${what}`, async () => {
      const run = await verify(...args(), '--json');
      assert.equal(run.code, 2, run.stdout);
      assert.ok(run.error instanceof UsageError, String(run.error));
      assert.match(run.error.message, /^Cannot /);
      assert.equal(result(run)['verified'], false);
    });
  }

  test('attestCommand() refuses an unknown subcommand and a missing one', async () => {
    await assert.rejects(attestCommand(['check']), UsageError);
    await assert.rejects(attestCommand([]), UsageError);
  });

  test('decodeEvidenceFile() and parseTime() let only UsageError escape', () => {
    const hexish = fc
      .array(fc.constantFrom(...'0123456789abcdefABCDEF \n\t'.split('')), { maxLength: 40 })
      .map((a) => a.join(''));
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }),
          hexish.map((t) => new TextEncoder().encode(t)),
        ),
        (b) => {
          try {
            const out = decodeEvidenceFile(b, 'x');
            assert.ok(out.byteLength > 0);
          } catch (e) {
            assert.ok(e instanceof UsageError, String(e));
          }
        },
      ),
      { numRuns: 500 },
    );
    const timeish = fc
      .tuple(
        fc.integer({ min: 0, max: 9999 }),
        fc.integer({ min: 0, max: 99 }),
        fc.integer({ min: 0, max: 99 }),
        fc.string(),
      )
      .map(
        ([y, m, d, rest]) =>
          `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}T00:00:00${rest}`,
      );
    fc.assert(
      fc.property(fc.oneof(fc.string(), timeish), (t) => {
        try {
          assert.ok(!Number.isNaN(parseTime(t).getTime()));
        } catch (e) {
          assert.ok(e instanceof UsageError, String(e));
        }
      }),
      { numRuns: 500 },
    );
  });

  test('parseTime() reads RFC 3339 times with their offsets and refuses impossible dates', () => {
    assert.equal(parseTime('2025-07-01T02:00:00+02:00').toISOString(), '2025-07-01T00:00:00.000Z');
    assert.equal(parseTime('2025-07-01t00:00:00.5z').toISOString(), '2025-07-01T00:00:00.500Z');
    assert.throws(() => parseTime('2025-02-30T00:00:00Z'), UsageError);
    assert.throws(() => parseTime('yesterday'), UsageError);
  });
});

describe('donjon attest verify refuses unusable files with exit 2', { skip: NEEDS_EVIDENCE }, () => {
  const report = (): string => ev('virtee-sev/report_milan.hex');
  const cases: readonly [string, () => string[]][] = [
    ['a --cert file that is no certificate', () => ['--cert', temp('hello world')]],
    [
      'a --cert PEM with a broken block',
      () => ['--cert', temp('-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n')],
    ],
    ['a missing --cert file', () => ['--cert', join(scratch, 'missing.pem')]],
    [
      'a policy that is neither JSON nor TOML',
      () => ['--cert', ev('virtee-sev/vcek_milan.der'), '--policy', temp('{{ nope', '.cfg')],
    ],
    [
      'a policy with an unknown field',
      () => ['--cert', ev('virtee-sev/vcek_milan.der'), '--policy', temp('{"measurement":[]}')],
    ],
    [
      'a policy with a bad value',
      () => ['--cert', ev('virtee-sev/vcek_milan.der'), '--policy', temp('vmpl = 9\n', '.toml')],
    ],
  ];
  for (const [what, args] of cases) {
    test(`attestCommand() refuses ${what}`, async () => {
      const run = await verify(report(), ...args(), '--json');
      assert.equal(run.code, 2, run.stdout);
      assert.ok(run.error instanceof UsageError, String(run.error));
    });
  }
});

/** The dcap-qvl samples with full collateral, a time inside each window and the policy each needs. */
const DCAP_SAMPLES = [
  {
    quote: 'dcap-qvl/sgx_quote',
    collateral: 'sgx_quote',
    at: '2025-07-01T00:00:00Z',
    policy: { acceptedTcbStatuses: ['ConfigurationAndSWHardeningNeeded'] },
  },
  { quote: 'dcap-qvl/tdx_quote', collateral: 'tdx_quote', at: '2025-07-01T00:00:00Z', policy: {} },
  { quote: 'dcap-qvl/near_quote_hex.txt', collateral: 'near_quote', at: '2025-09-15T00:00:00Z', policy: {} },
] as const;

function dcapExpectations(quote: string): { kind: string; measurement: string; debug: boolean } {
  const o = oracle.dcap[quote]!;
  const sgx = o.kind === 'SGX';
  const flags = sgx ? o.body['attributes']! : o.body['td_attributes']!;
  return {
    kind: sgx ? 'sgx' : 'tdx',
    measurement: sgx ? o.body['mrenclave']! : o.body['mrtd']!,
    debug: sgx
      ? (Number.parseInt(flags.slice(0, 2), 16) & 0x02) !== 0
      : (Number.parseInt(flags.slice(0, 2), 16) & 0x01) !== 0,
  };
}

describe('donjon attest verify with real DCAP quotes', { skip: NEEDS_EVIDENCE }, () => {
  for (const s of DCAP_SAMPLES) {
    test(`attestCommand() verifies ${s.quote} with its collateral and reports RESULTS.json's TCB status`, async () => {
      const policy = temp(JSON.stringify(s.policy), '.json');
      const run = await verify(
        ev(s.quote),
        '--collateral',
        ev(`dcap-qvl/${s.collateral}_collateral.json`),
        '--at',
        s.at,
        '--policy',
        policy,
        '--json',
      );
      assert.equal(run.code, 0, run.stdout + run.stderr);
      const r = result(run);
      const o = oracle.dcap[s.quote]!;
      const e = dcapExpectations(s.quote);
      assert.equal(r['verified'], true);
      assert.equal(r['kind'], e.kind);
      assert.equal(r['version'], o.header.version);
      assert.equal(r['measurement'], e.measurement);
      assert.equal(r['reportData'], o.body['report_data']);
      assert.equal(r['debug'], e.debug);
      assert.equal(r['tcbStatus'], o.checks.tcb_level!.status);
      assert.deepEqual(r['advisoryIds'] ?? [], o.checks.tcb_level!.advisoryIDs ?? []);
    });
  }

  test('attestCommand() checks a quote without collateral and warns that TCB status was not checked', async () => {
    const run = await verify(ev('dcap-qvl/tdx_quote'), '--at', '2025-07-01T00:00:00Z', '--json');
    assert.equal(run.code, 0, run.stdout);
    const r = result(run);
    assert.equal(r['verified'], true);
    assert.equal(r['tcbStatus'], undefined);
    assert.ok((r['warnings'] as string[]).some((w) => /TCB status and revocation were not checked/.test(w)));
  });

  test('attestCommand() rejects a quote with a flipped report-data byte (exit 3)', async () => {
    const quote = file('dcap-qvl/tdx_quote');
    quote[48 + 520] = quote[48 + 520]! ^ 0x80;
    const run = await verify(temp(quote), '--at', '2025-07-01T00:00:00Z', '--json');
    assert.equal(run.code, 3, run.stdout);
    assert.equal(result(run)['verified'], false);
    assert.equal(result(run)['kind'], 'tdx');
  });

  test('attestCommand() rejects a quote whose collateral has expired (exit 3)', async () => {
    const run = await verify(
      ev('dcap-qvl/tdx_quote'),
      '--collateral',
      ev('dcap-qvl/tdx_quote_collateral.json'),
      '--at',
      '2025-08-01T00:00:00Z',
      '--json',
    );
    assert.equal(run.code, 3, run.stdout);
    assert.equal(result(run)['verified'], false);
  });

  test('attestCommand() builds the same collateral from separate PCS files as from the JSON', async () => {
    const c = dcapQvlCollateral('tdx_quote');
    const tcbInfo = temp(`{"tcbInfo":${c['tcb_info']},"signature":"${c['tcb_info_signature']}"}`);
    const qeIdentity = temp(
      `{"enclaveIdentity":${c['qe_identity']},"signature":"${c['qe_identity_signature']}"}`,
    );
    const rootCrl = temp(Buffer.from(c['root_ca_crl']!, 'hex'));
    const pckCrl = temp(Buffer.from(c['pck_crl']!, 'hex'));
    const signer = temp(c['tcb_info_issuer_chain']!);
    const common = ['--at', '2025-07-01T00:00:00Z', '--json'];
    const files = await verify(
      ev('dcap-qvl/tdx_quote'),
      '--tcb-info',
      tcbInfo,
      '--qe-identity',
      qeIdentity,
      '--crl',
      rootCrl,
      '--crl',
      pckCrl,
      '--cert',
      signer,
      ...common,
    );
    const json = await verify(
      ev('dcap-qvl/tdx_quote'),
      '--collateral',
      ev('dcap-qvl/tdx_quote_collateral.json'),
      ...common,
    );
    assert.equal(files.code, 0, files.stdout);
    assert.deepEqual(result(files), result(json));
    assert.equal(result(files)['tcbStatus'], 'UpToDate');

    // Without the TCB signing certificate the collateral cannot be completed.
    const missing = await verify(
      ev('dcap-qvl/tdx_quote'),
      '--tcb-info',
      tcbInfo,
      '--qe-identity',
      qeIdentity,
      '--crl',
      rootCrl,
      '--crl',
      pckCrl,
      ...common,
    );
    assert.equal(missing.code, 2);
    assert.match(missing.error!.message, /Intel SGX TCB Signing certificate/);
  });

  test('attestCommand() verifies the TDX 1.5 v5 quote with go-tdx-guest PCS files and a same-period QE identity', async () => {
    // go-tdx-guest's v5 TCB info (2026-02-01..03-03) with the TD_QE identity and CRLs of dcap-qvl's
    // 2026-02-18..03-20 set: all valid on 2026-02-25.
    const c = dcapQvlCollateral('tdx_quote_outdated');
    const run = await verify(
      ev('go-tdx-guest/quote_v5_sample.dat'),
      '--tcb-info',
      ev('go-tdx-guest/sample_tcbinfo_response_v5'),
      '--qe-identity',
      temp(`{"enclaveIdentity":${c['qe_identity']},"signature":"${c['qe_identity_signature']}"}`),
      '--crl',
      temp(Buffer.from(c['root_ca_crl']!, 'hex')),
      '--crl',
      temp(Buffer.from(c['pck_crl']!, 'hex')),
      '--cert',
      temp(c['tcb_info_issuer_chain']!),
      '--at',
      '2026-02-25T00:00:00Z',
      '--json',
    );
    assert.equal(run.code, 0, run.stdout);
    const r = result(run);
    assert.equal(r['version'], 5);
    assert.equal(r['measurement'], oracle.dcap['go-tdx-guest/quote_v5_sample.dat']!.body['mrtd']);
    assert.equal(r['tcbStatus'], 'UpToDate');
  });

  test('attestCommand() refuses --collateral together with separate collateral files (exit 2)', async () => {
    const run = await verify(
      ev('dcap-qvl/tdx_quote'),
      '--collateral',
      ev('dcap-qvl/tdx_quote_collateral.json'),
      '--crl',
      ev('go-tdx-guest/pckcrl'),
    );
    assert.equal(run.code, 2);
  });

  test('attestCommand() refuses a collateral file that is not JSON, and a TCB info that is not a PCS response (exit 2)', async () => {
    const notJson = await verify(ev('dcap-qvl/tdx_quote'), '--collateral', temp('{"pck_crl":'));
    assert.equal(notJson.code, 2);
    const bare = await verify(
      ev('dcap-qvl/tdx_quote'),
      '--tcb-info',
      temp(dcapQvlCollateral('tdx_quote')['tcb_info']!),
    );
    assert.equal(bare.code, 2);
    assert.match(bare.error!.message, /TCB info/);
  });
});

describe('donjon attest verify --fetch against a fake AMD KDS and Intel PCS', {
  skip: NEEDS_EVIDENCE,
}, () => {
  let kds: FakeServices;
  let pcs: FakeServices;
  before(async () => {
    kds = await FakeServices.start(NEEDS_EVIDENCE ? {} : kdsRoutes());
    pcs = await FakeServices.start(
      NEEDS_EVIDENCE ? {} : dcapQvlPcsRoutes('sgx_quote', 'sgx', '00a067110000', 'processor'),
    );
  });
  after(async () => {
    await kds.close();
    await pcs.close();
  });

  test('attestCommand() fetches the VCEK, its chain and the CRL once, then uses the cache', async () => {
    const cache = join(scratch, 'cache-snp');
    const args = [
      ev('go-sev-guest/attestation.bin'),
      '--fetch',
      '--cache',
      cache,
      '--kds-url',
      kds.url,
      '--policy',
      temp(ALLOW_DEBUG_TOML, '.toml'),
      // Inside the VCEK's validity and the Milan CRL's window (2022-05-09 .. 2023-05-09).
      '--at',
      atFor('go-sev-guest/attestation.bin'),
      '--json',
    ];
    const first = await verify(...args);
    assert.equal(first.code, 0, first.stdout + first.stderr);
    const r = result(first);
    assert.equal(r['measurement'], oracle.snp['go-sev-guest/attestation.bin']!.report.measurement);
    assert.equal(r.claims!['collateralChecked'], true);
    assert.ok(!(r['warnings'] as string[]).some((w) => /revocation/.test(w)));
    assert.deepEqual(
      kds.requests.map((q) => q.split('?')[0]!.replace(/[0-9a-f]{128}/, 'HWID')),
      ['/vcek/v1/Milan/HWID', '/vcek/v1/Milan/cert_chain', '/vcek/v1/Milan/crl'],
    );
    // The VCEK and chain come from the cache; the 2023 CRL is past its nextUpdate by the wall clock, so it
    // was never cached and is asked for again.
    const second = await verify(...args);
    assert.deepEqual(result(second), r);
    assert.deepEqual(kds.requests.slice(3), ['/vcek/v1/Milan/crl']);
  });

  test('attestCommand() reports a fetch failure as the collateral service failing (exit 4), with its JSON object', async () => {
    const run = await verify(
      ev('virtee-sev/report_milan.hex'),
      '--fetch',
      '--cache',
      join(scratch, 'cache-miss'),
      '--kds-url',
      kds.url,
      '--json',
    );
    assert.equal(run.code, 4);
    assert.equal((result(run)['error'] as { code: string }).code, 'ERR_COLLATERAL_NOT_FOUND');
  });

  test('attestCommand() fetches DCAP collateral from PCS and verifies as with the collateral file', async () => {
    const common = [
      '--at',
      '2025-07-01T00:00:00Z',
      '--policy',
      temp(JSON.stringify(DCAP_SAMPLES[0].policy)),
      '--json',
    ];
    const fetched = await verify(
      ev('dcap-qvl/sgx_quote'),
      '--fetch',
      '--cache',
      join(scratch, 'cache-dcap'),
      '--pcs-url',
      pcs.url,
      '--intel-crl-url',
      `${pcs.url}/IntelSGXRootCA.der`,
      ...common,
    );
    const offline = await verify(
      ev('dcap-qvl/sgx_quote'),
      '--collateral',
      ev('dcap-qvl/sgx_quote_collateral.json'),
      ...common,
    );
    assert.equal(fetched.code, 0, fetched.stdout);
    assert.deepEqual(result(fetched), result(offline));
    assert.equal(pcs.count(), 4);
  });
});

describe('donjon attest verify as a process', { skip: NEEDS_EVIDENCE }, () => {
  test('donjon attest verify exits 0 and prints one JSON object for a verified report', async () => {
    const r = await runCli([
      'attest',
      'verify',
      ev('virtee-sev/report_milan.hex'),
      '--cert',
      ev('virtee-sev/vcek_milan.der'),
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.equal(out['verified'], true);
    assert.equal(out['measurement'], oracle.snp['virtee-sev/report_milan.hex']!.report.measurement);
  });

  test('donjon attest verify exits 3 for a tampered report and 2 for a missing file', async () => {
    const bytes = decodeEvidenceFile(file('virtee-sev/report_milan.hex'), 'x');
    bytes[0x50] = bytes[0x50]! ^ 0x01;
    const tampered = await runCli([
      'attest',
      'verify',
      temp(bytes),
      '--cert',
      ev('virtee-sev/vcek_milan.der'),
      '--json',
    ]);
    assert.equal(tampered.code, 3, tampered.stderr);
    assert.equal((JSON.parse(tampered.stdout) as { verified: boolean }).verified, false);
    const missing = await runCli(['attest', 'verify', join(scratch, 'absent.bin')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no such file/);
  });

  test('donjon attest --help describes the verify subcommand', async () => {
    const r = await runCli(['attest', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /donjon attest verify EVIDENCE/);
  });
});
