import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { type AttestIo, attestCommand } from '../../src/cli/attest.ts';
import { readEvidence } from '../../src/cli/attest-evidence.ts';
import { exitStatusOf, UsageError } from '../../src/cli/errors.ts';
import { isDonjonError } from '../../src/lib/errors.ts';
import { EVIDENCE, NEEDS_EVIDENCE } from '../attestation/evidence.ts';
import { runCli } from '../helpers.ts';

// Evidence in the forms other tools and clouds hand out, made in the test from the real samples of
// shared/evidence (never written into the tree): each verifies as the same bytes in binary do, and says
// which form it was read in; what is recognisably something else is named, with what to pass instead.

const ev = (path: string): string => fileURLToPath(new URL(path, EVIDENCE));
const scratch = mkdtempSync(join(tmpdir(), 'donjon-forms-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let count = 0;
function temp(content: string | Uint8Array): string {
  const path = join(scratch, `e${++count}`);
  writeFileSync(path, content);
  return path;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  error?: Error;
}

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
    return { code: await attestCommand(['verify', ...args], io), stdout, stderr };
  } catch (error) {
    if (isDonjonError(error)) return { code: exitStatusOf(error), stdout, stderr, error };
    throw error;
  }
}

function json(run: Run): Record<string, unknown> {
  return JSON.parse(run.stdout.trim()) as Record<string, unknown>;
}

// go-sev-guest's real Milan report: debug allowed, so its policy says so.
const REPORT = 'go-sev-guest/attestation.bin';
const AT = '2022-09-25T00:00:00Z';

describe('donjon attest verify reads evidence in the forms people hold', { skip: NEEDS_EVIDENCE }, () => {
  const raw = (): Buffer => readFileSync(ev(REPORT));
  const policy = (): string => {
    const path = join(scratch, 'debug.toml');
    writeFileSync(path, 'allowDebug = true\n');
    return path;
  };
  const check = (file: string): Promise<Run> =>
    verify(file, '--cert', ev('go-sev-guest/vcek.testcer'), '--policy', policy(), '--at', AT, '--json');

  test('hex with 0x or 0X, base64 plain and URL-safe, and a report padded to 1204 bytes verify as the binary does, each named', async () => {
    const base = await check(ev(REPORT));
    assert.equal(base.code, 0, base.stdout);
    const { evidenceForm, ...expected } = json(base);
    assert.equal(evidenceForm, 'raw bytes');
    const padded = Buffer.concat([raw(), Buffer.alloc(20)]);
    const forms: [string, string | Buffer, RegExp][] = [
      ['0x hex', `0x${raw().toString('hex')}\n`, /^hex text with a 0x prefix$/],
      ['0X HEX', `0X${raw().toString('hex').toUpperCase()}`, /^hex text with a 0x prefix$/],
      ['base64', `${raw().toString('base64')}\n`, /^base64$/],
      ['base64url', raw().toString('base64url'), /^base64 \(URL-safe\)$/],
      [
        'wrapped base64',
        raw()
          .toString('base64')
          .replace(/(.{76})/g, '$1\n'),
        /^base64$/,
      ],
      [
        'padded',
        padded,
        /^raw bytes, an SEV-SNP report followed by 20 bytes of padding \(read its first 1184 of 1204\)$/,
      ],
      ['padded base64', padded.toString('base64'), /^base64, an SEV-SNP report followed by 20 bytes/],
    ];
    for (const [what, content, form] of forms) {
      const run = await check(temp(content));
      assert.equal(run.code, 0, `${what}: ${run.stdout}`);
      const { evidenceForm: got, ...rest } = json(run);
      assert.deepEqual(rest, expected, what);
      assert.match(String(got), form, what);
    }
    // Without --json, the form is the first line on stderr.
    const human = await verify(
      temp(`0x${raw().toString('hex')}`),
      '--cert',
      ev('go-sev-guest/vcek.testcer'),
      '--policy',
      policy(),
      '--at',
      AT,
    );
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stderr, /^donjon: read .* as hex text with a 0x prefix: sev-snp evidence\n/);
  });

  test('donjon attest verify, as a process, verifies a 0x-prefixed hex file and a base64 file as the binary', async () => {
    const args = ['--cert', ev('go-sev-guest/vcek.testcer'), '--policy', policy(), '--at', AT, '--json'];
    const hex = await runCli(['attest', 'verify', temp(`0x${raw().toString('hex')}`), ...args]);
    const b64 = await runCli(['attest', 'verify', temp(raw().toString('base64')), ...args]);
    const bin = await runCli(['attest', 'verify', ev(REPORT), ...args]);
    for (const r of [hex, b64, bin]) assert.equal(r.code, 0, r.stdout + r.stderr);
    const claims = (r: { stdout: string }): unknown => (JSON.parse(r.stdout) as { claims: unknown }).claims;
    assert.deepEqual(claims(hex), claims(bin));
    assert.deepEqual(claims(b64), claims(bin));
  });

  test('several quotes one per line are refused, saying so (exit 2)', async () => {
    const two = `${raw().toString('hex')}\n${raw().toString('hex')}\n`;
    const run = await verify(temp(two), '--json');
    assert.equal(run.code, 2);
    assert.match(run.error!.message, /holds 2 lines, each one a quote or report; pass one per file/);
    const b64 = await verify(temp(`${raw().toString('base64')}\n${raw().toString('base64')}`));
    assert.equal(b64.code, 2);
    assert.match(b64.error!.message, /holds 2 lines/);
  });

  test('an Azure HCL report, its TDREPORT, and Azure\'s JSON wrappers are named, with what to pass instead (they were "Cannot tell what … holds")', async () => {
    const snpHcl = await verify(ev('trustee/az-snp-vtpm__hcl-report.bin'));
    assert.equal(snpHcl.code, 2);
    assert.match(
      snpHcl.error!.message,
      /an Azure HCL report \(HCLA header\); the SEV-SNP report is its bytes 32 to 1216/,
    );
    // And those bytes are the report trustee's tests verify: the derived sample is exactly them.
    const inner = readFileSync(ev('trustee/az-snp-vtpm__hcl-report.bin')).subarray(32, 32 + 1184);
    assert.deepEqual(inner, readFileSync(ev('trustee/az-snp-vtpm__milan_snp_report.bin')));

    const tdxHcl = await verify(ev('trustee/az-tdx-vtpm__hcl-report.bin'));
    assert.equal(tdxHcl.code, 2);
    assert.match(tdxHcl.error!.message, /Azure HCL report holding a TDX TDREPORT.*td_quote/);
    const tdreport = readFileSync(ev('trustee/az-tdx-vtpm__hcl-report.bin')).subarray(32, 32 + 1024);
    const bare = await verify(temp(tdreport));
    assert.equal(bare.code, 2);
    assert.match(bare.error!.message, /a TDX TDREPORT \(1024 bytes\).*pass a TD quote/);

    const snpJson = await verify(ev('trustee/az-snp-vtpm__evidence-v1.json'));
    assert.equal(snpJson.code, 2);
    assert.match(
      snpJson.error!.message,
      /JSON with the fields version, hcl_report, tpm_quote, vcek.*hcl_report/,
    );
    const tdxJson = await verify(ev('trustee/az-tdx-vtpm__evidence-v1.json'));
    assert.match(tdxJson.error!.message, /its td_quote \(base64url\) is the TD quote to verify/);
  });

  test('a CRL is current through its nextUpdate second and stale one second later (RFC 5280 6.3.3: "after")', async () => {
    // AMD's Milan CRL (enarx-steward): nextUpdate 2023-05-09T23:00:00Z.
    const args = (at: string): string[] => [
      ev(REPORT),
      '--cert',
      ev('go-sev-guest/vcek.testcer'),
      '--policy',
      policy(),
      '--crl',
      ev('enarx-steward/milan.signed.crl.crl1.der'),
      '--at',
      at,
      '--json',
    ];
    const at = await verify(...args('2023-05-09T23:00:00Z'));
    assert.equal(at.code, 0, at.stdout);
    assert.equal((json(at)['claims'] as Record<string, unknown>)['collateralChecked'], true);
    const after = await verify(...args('2023-05-09T23:00:01Z'));
    assert.equal(after.code, 3, after.stdout);
    assert.equal((json(after)['error'] as { code: string }).code, 'ERR_COLLATERAL_EXPIRED');
  });
});

test('readEvidence() lets only UsageError escape, whatever the bytes or text', () => {
  const texty = fc
    .array(fc.constantFrom(...'0123456789abcdefxX+/-_=AZ{}[]" \n\t'.split('')), { maxLength: 60 })
    .map((a) => new TextEncoder().encode(a.join('')));
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 2400 }), texty), (b) => {
      try {
        const out = readEvidence(b, 'x');
        assert.ok(out.bytes.byteLength > 0);
      } catch (e) {
        assert.ok(e instanceof UsageError, String(e));
      }
    }),
    { numRuns: 500 },
  );
});
