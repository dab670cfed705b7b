import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isBrokerError } from '../../src/broker/errors.ts';
import {
  decide,
  type KeepClaims,
  parseBrokerPolicy,
  parseBrokerPolicyText,
  simRootsOf,
} from '../../src/broker/policy.ts';

const W = 'a'.repeat(64);
const C = 'c'.repeat(64);
const M = 'b'.repeat(96);
const ROOT = 'd'.repeat(64);

const claims: KeepClaims = {
  kind: 'sev-snp',
  measurement: M,
  simulated: true,
  rootFingerprint: ROOT,
  debug: false,
  tcb: { bootloader: 10, tee: 0, snp: 23, microcode: 84 },
  workload: W,
  config: C,
};

const ISSUE_EXAMPLE = `
[[allow]]
secrets = ["db"]                      # names of secrets this rule releases
workloads = ["${W.toUpperCase()}"]
configs = ["${C}"]   # optional
measurements = ["${M}"]
sim-roots = ["${ROOT}"]
min-tcb = { snp = 20 }
allow-debug = false
`;

test("parseBrokerPolicyText() reads the issue's TOML example, folding hex to lower case", () => {
  const p = parseBrokerPolicyText(ISSUE_EXAMPLE);
  assert.deepEqual(p.allow[0], {
    secrets: ['db'],
    workloads: [W],
    configs: [C],
    measurements: [M],
    simRoots: [ROOT],
    minTcb: { snp: 20 },
    allowDebug: false,
  });
  assert.deepEqual(simRootsOf(p), [ROOT]);
});

test('parseBrokerPolicyText() reads the same policy as JSON', () => {
  const p = parseBrokerPolicyText(
    JSON.stringify({
      allow: [{ secrets: ['db'], workloads: [W], 'sim-roots': [ROOT], 'min-tcb': { snp: 20 } }],
    }),
  );
  assert.deepEqual(p.allow[0]?.minTcb, { snp: 20 });
});

test('unknown keys are refused: at the top, in a rule, in min-tcb', () => {
  for (const bad of [
    { allow: [], default: 'allow' },
    { allow: [{ secrets: ['db'], workloads: [W], measurement: [M] }] },
    { allow: [{ secrets: ['db'], workloads: [W], 'min-tcb': { snp: 1, spl: 2 } }] },
  ]) {
    assert.throws(
      () => parseBrokerPolicy(bad),
      (e) => isBrokerError(e, 'ERR_BROKER_POLICY_INVALID'),
    );
  }
});

test('malformed values are refused', () => {
  const base = { secrets: ['db'], workloads: [W] };
  for (const rule of [
    { workloads: [W] },
    { secrets: ['db'] },
    { ...base, secrets: [] },
    { ...base, secrets: ['../etc'] },
    { ...base, workloads: ['abc'] },
    { ...base, measurements: [W] },
    { ...base, 'sim-roots': [M] },
    { ...base, 'allow-debug': 'yes' },
    { ...base, 'min-tcb': { snp: 256 } },
  ]) {
    assert.throws(
      () => parseBrokerPolicy({ allow: [rule] }),
      (e) => isBrokerError(e, 'ERR_BROKER_POLICY_INVALID'),
    );
  }
  assert.throws(
    () => parseBrokerPolicyText('[[allow]\n'),
    (e) => isBrokerError(e, 'ERR_BROKER_POLICY_INVALID'),
  );
});

test('decide() denies by default: an empty policy releases nothing', () => {
  assert.deepEqual(decide({ allow: [] }, 'db', claims, [M]), {
    allowed: false,
    reason: 'no rule releases secret db',
  });
});

test('decide() releases under the first matching rule and says why otherwise', () => {
  const p = parseBrokerPolicyText(ISSUE_EXAMPLE);
  assert.deepEqual(decide(p, 'db', claims, []), { allowed: true, rule: 0 });
  const no = (c: Partial<KeepClaims>, secret = 'db') => {
    const v = decide(p, secret, { ...claims, ...c }, []);
    assert.equal(v.allowed, false);
    return v.allowed ? '' : v.reason;
  };
  assert.match(no({}, 'other'), /no rule releases secret other/);
  assert.match(no({ workload: 'e'.repeat(64) }), /workload e+ is not named/);
  assert.match(no({ config: 'e'.repeat(64) }), /configuration/);
  assert.match(no({ measurement: 'e'.repeat(96) }), /measurement/);
  assert.match(no({ rootFingerprint: 'e'.repeat(64) }), /simulated root/);
  assert.match(no({ debug: true }), /debug/);
  assert.match(
    no({ tcb: { bootloader: 10, tee: 0, snp: 19, microcode: 84 } }),
    /TCB snp 19 is below min-tcb 20/,
  );
  assert.match(no({ kind: 'tdx', simulated: false }), /min-tcb names SEV-SNP/);
});

test('decide() takes the default measurements when a rule names none, and no simulated root by default', () => {
  const p = parseBrokerPolicy({ allow: [{ secrets: ['db'], workloads: [W], 'sim-roots': [ROOT] }] });
  assert.equal(decide(p, 'db', claims, [M]).allowed, true);
  assert.equal(decide(p, 'db', claims, ['f'.repeat(96)]).allowed, false);
  const noRoots = parseBrokerPolicy({ allow: [{ secrets: ['db'], workloads: [W] }] });
  assert.equal(decide(noRoots, 'db', claims, [M]).allowed, false);
  assert.equal(decide(noRoots, 'db', { ...claims, simulated: false }, [M]).allowed, true);
});
