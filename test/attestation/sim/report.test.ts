import assert from 'node:assert/strict';
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { AttestationError } from '../../../src/attestation/errors.ts';
import { parsePolicy } from '../../../src/attestation/policy.ts';
import { defaultRoots } from '../../../src/attestation/roots.ts';
import { signSimReport } from '../../../src/attestation/sim/report.ts';
import { createSimRoot, type SimRootMaterial } from '../../../src/attestation/sim/root.ts';
import { parseSnpReport, SNP_REPORT_SIZE } from '../../../src/attestation/snp/report.ts';
import { verifySnpReport } from '../../../src/attestation/snp/verify.ts';
import { verify } from '../../../src/attestation/verify.ts';
import { parseCertificate } from '../../../src/attestation/x509.ts';

const NOW = new Date('2026-03-01T12:00:00Z');
const TCB = { bootloader: 3, tee: 1, snp: 20, microcode: 200 };
let root: SimRootMaterial;

before(async () => {
  root = await createSimRoot({ now: NOW, tcb: TCB });
});

const fill = (length: number, value: number) => new Uint8Array(length).fill(value);

const INPUT = {
  reportData: Uint8Array.from({ length: 64 }, (_, i) => i),
  measurement: fill(48, 0xa5),
  hostData: fill(32, 0x5a),
  policy: 0x30000n | (1n << 20n),
  guestSvn: 9,
  vmpl: 2,
  familyId: fill(16, 0x0f),
  imageId: fill(16, 0xf0),
  reportId: fill(32, 0x42),
};

function rejects(fn: () => unknown, code: AttestationError['code']): void {
  assert.throws(fn, (e: unknown) => e instanceof AttestationError && e.code === code);
}

describe('signSimReport()', () => {
  test('signSimReport() output parses back to every input field', () => {
    const r = parseSnpReport(signSimReport(root, INPUT));
    assert.equal(r.version, 3);
    assert.deepEqual(r.reportData, INPUT.reportData);
    assert.deepEqual(r.measurement, INPUT.measurement);
    assert.deepEqual(r.hostData, INPUT.hostData);
    assert.equal(r.policy, INPUT.policy);
    assert.equal(r.guestSvn, 9);
    assert.equal(r.vmpl, 2);
    assert.deepEqual(r.familyId, INPUT.familyId);
    assert.deepEqual(r.imageId, INPUT.imageId);
    assert.deepEqual(r.reportId, INPUT.reportId);
    assert.deepEqual(r.reportIdMa, fill(32, 0xff));
    assert.deepEqual(r.chipId, root.chipId);
    for (const tcb of [r.currentTcb, r.reportedTcb, r.committedTcb, r.launchTcb])
      assert.deepEqual(tcb, root.tcb);
    assert.deepEqual({ ...root.tcb, raw: 0n }, { ...TCB, raw: 0n });
    assert.equal(r.signingKey, 'vcek');
    assert.equal(r.signatureAlgo, 1);
    assert.equal(r.authorKeyEn, false);
    assert.equal(r.debug, false);
    assert.equal(r.migrateMa, false);
    assert.deepEqual(r.cpuid, { family: 0x19, model: 0x11, stepping: 1 });
    assert.deepEqual(r.idKeyDigest, fill(48, 0));
    assert.deepEqual(r.authorKeyDigest, fill(48, 0));
  });

  test('signSimReport() writes the firmware byte layout', () => {
    const b = signSimReport(root, INPUT);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    assert.equal(b.byteLength, SNP_REPORT_SIZE);
    assert.equal(dv.getUint32(0x000, true), 3);
    assert.equal(dv.getUint32(0x004, true), 9);
    assert.equal(dv.getBigUint64(0x008, true), INPUT.policy);
    assert.deepEqual(b.subarray(0x010, 0x020), INPUT.familyId);
    assert.deepEqual(b.subarray(0x020, 0x030), INPUT.imageId);
    assert.equal(dv.getUint32(0x030, true), 2);
    assert.equal(dv.getUint32(0x034, true), 1);
    assert.deepEqual([...b.subarray(0x038, 0x040)], [3, 1, 0, 0, 0, 0, 20, 200]);
    assert.equal(dv.getUint32(0x048, true), 0);
    assert.deepEqual(b.subarray(0x050, 0x090), INPUT.reportData);
    assert.deepEqual(b.subarray(0x090, 0x0c0), INPUT.measurement);
    assert.deepEqual(b.subarray(0x0c0, 0x0e0), INPUT.hostData);
    assert.deepEqual(b.subarray(0x140, 0x160), INPUT.reportId);
    assert.deepEqual(b.subarray(0x160, 0x180), fill(32, 0xff));
    assert.deepEqual([...b.subarray(0x180, 0x188)], [3, 1, 0, 0, 0, 0, 20, 200]);
    assert.deepEqual([...b.subarray(0x188, 0x18b)], [0x19, 0x11, 0x01]);
    assert.deepEqual(b.subarray(0x1a0, 0x1e0), root.chipId);
    assert.deepEqual([...b.subarray(0x1e8, 0x1f0)], [0, 55, 1, 0, 0, 55, 1, 0]);
    assert.ok(b.subarray(0x1f8, 0x2a0).every((x) => x === 0));
    assert.ok(b.subarray(0x2d0, 0x2e8).every((x) => x === 0));
    assert.ok(b.subarray(0x318, SNP_REPORT_SIZE).every((x) => x === 0));
  });

  test('signSimReport() signs 0x000..0x29F with the VCEK, r and s little-endian', () => {
    // Checked with node:crypto alone, independently of the project's parser.
    const b = signSimReport(root, INPUT);
    const r = b.slice(0x2a0, 0x2a0 + 48).reverse();
    const s = b.slice(0x2e8, 0x2e8 + 48).reverse();
    const signature = new Uint8Array([...r, ...s]);
    const key = createPublicKey({
      key: Buffer.from(parseCertificate(root.vcekDer).spki),
      format: 'der',
      type: 'spki',
    });
    assert.ok(cryptoVerify('sha384', b.subarray(0, 0x2a0), { key, dsaEncoding: 'ieee-p1363' }, signature));
    const tampered = b.slice(0, 0x2a0);
    tampered[0x90] = tampered[0x90]! ^ 1;
    assert.ok(!cryptoVerify('sha384', tampered, { key, dsaEncoding: 'ieee-p1363' }, signature));
  });

  test('signSimReport() defaults: policy 0x30000, zero host data, a report id stable per guest', () => {
    const a = parseSnpReport(signSimReport(root, { reportData: fill(64, 1), measurement: fill(48, 2) }));
    const b = parseSnpReport(signSimReport(root, { reportData: fill(64, 3), measurement: fill(48, 2) }));
    const c = parseSnpReport(signSimReport(root, { reportData: fill(64, 1), measurement: fill(48, 4) }));
    assert.equal(a.policy, 0x30000n);
    assert.equal(a.vmpl, 0);
    assert.equal(a.guestSvn, 0);
    assert.deepEqual(a.hostData, fill(32, 0));
    assert.deepEqual(a.reportId, b.reportId);
    assert.notDeepEqual(a.reportId, c.reportId);
  });

  test('signSimReport() rejects malformed inputs with RangeError', () => {
    const ok = { reportData: fill(64, 0), measurement: fill(48, 0) };
    assert.throws(() => signSimReport(root, { ...ok, reportData: fill(32, 0) }), RangeError);
    assert.throws(() => signSimReport(root, { ...ok, measurement: fill(32, 0) }), RangeError);
    assert.throws(() => signSimReport(root, { ...ok, hostData: fill(31, 0) }), RangeError);
    assert.throws(() => signSimReport(root, { ...ok, reportId: fill(33, 0) }), RangeError);
    assert.throws(() => signSimReport(root, { ...ok, policy: 0n }), RangeError);
    assert.throws(() => signSimReport(root, { ...ok, vmpl: -1 }), RangeError);
  });
});

describe('simulated reports under verification', () => {
  const evidence = () => ({
    kind: 'sev-snp' as const,
    report: signSimReport(root, INPUT),
    certs: [root.vcekDer, root.askDer, root.arkDer],
  });

  test('verify() accepts a simulated report under a policy trusting its root', () => {
    const claims = verify(evidence(), parsePolicy({ trustSimulatedRoots: [root.fingerprint], vmpl: 2 }), {
      now: NOW,
    });
    assert.ok(claims.kind === 'sev-snp');
    assert.equal(claims.simulated, true);
    assert.equal(claims.product, 'Simulated');
    assert.equal(claims.rootFingerprint, root.fingerprint);
    assert.equal(claims.measurement, 'a5'.repeat(48));
    assert.deepEqual(claims.tcb, TCB);
  });

  test('verify() rejects a simulated report without opting into its root', () => {
    rejects(() => verify(evidence(), parsePolicy({}), { now: NOW }), 'ERR_SIMULATED_ROOT_NOT_TRUSTED');
    rejects(
      () => verify(evidence(), parsePolicy({ trustSimulatedRoots: ['00'.repeat(32)] }), { now: NOW }),
      'ERR_SIMULATED_ROOT_NOT_TRUSTED',
    );
  });

  test('verifySnpReport() accepts the fingerprint in any case and needs the ARK in hand', () => {
    const report = signSimReport(root, INPUT);
    const roots = {
      amdArks: defaultRoots.amdArks,
      simulatedArkFingerprints: [root.fingerprint.toUpperCase()],
      intelRoots: [],
    };
    const v = verifySnpReport(
      report,
      { vek: root.vcekDer, ask: root.askDer, ark: root.arkDer },
      { now: NOW, roots },
    );
    assert.equal(v.simulated, true);
    rejects(
      () => verifySnpReport(report, { vek: root.vcekDer, ask: root.askDer }, { now: NOW, roots }),
      'ERR_CHAIN_INVALID',
    );
    rejects(() => verifySnpReport(report, { vek: root.vcekDer }, { now: NOW, roots }), 'ERR_CHAIN_INVALID');
  });

  test('verify() rejects a simulated report with a flipped measurement byte', () => {
    const e = evidence();
    e.report[0x090] = e.report[0x090]! ^ 1;
    rejects(
      () => verify(e, parsePolicy({ trustSimulatedRoots: [root.fingerprint] }), { now: NOW }),
      'ERR_SIGNATURE_INVALID',
    );
  });

  test('verify() rejects a simulated chain after its VCEK expired', () => {
    const vcek = parseCertificate(root.vcekDer);
    rejects(
      () =>
        verify(evidence(), parsePolicy({ trustSimulatedRoots: [root.fingerprint] }), {
          now: new Date(vcek.notAfter.getTime() + 1000),
        }),
      'ERR_CERT_EXPIRED',
    );
  });
});
