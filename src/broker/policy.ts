// The broker's release policy: default deny, a list of `[[allow]]` rules, each naming the secrets it releases
// and the workloads (and optionally configurations, measurements, simulated roots, TCB floor) it releases them
// to. Unknown keys are refused when the policy is set, so a misspelt field never widens or narrows a rule
// silently (invariant 5). Evaluation is pure: the claims of a verified token in, a verdict and its reason out.
import { parse as parseToml } from 'smol-toml';
import { BrokerError } from './errors.ts';

/** Minimum SEV-SNP TCB components. */
export type MinTcb = Partial<Record<'bootloader' | 'tee' | 'snp' | 'microcode' | 'fmc', number>>;

/** One `[[allow]]` rule, normalised (hex in lower case). */
export interface AllowRule {
  secrets: string[];
  workloads: string[];
  /** Absent: any configuration. */
  configs?: string[];
  /** Absent: the broker's default, this version's runtime measurement (`donjon measure`). */
  measurements?: string[];
  /** Simulated roots (SHA-256 of the simulated ARK) accepted; none by default. */
  simRoots: string[];
  minTcb?: MinTcb;
  allowDebug: boolean;
}

/** A parsed policy. An empty one releases nothing. */
export interface BrokerPolicy {
  allow: AllowRule[];
}

/** What a verified attestation says about a Keep: the claims its token carries. */
export interface KeepClaims {
  /** Evidence kind. */
  kind: 'sev-snp' | 'tdx';
  /** The launch measurement (SNP) or MRTD (TDX), lower-case hex. */
  measurement: string;
  simulated: boolean;
  /** SHA-256 of the root the evidence chained to. */
  rootFingerprint: string;
  debug: boolean;
  /** SEV-SNP reported TCB. */
  tcb?: { bootloader: number; tee: number; snp: number; microcode: number; fmc?: number };
  /** SHA-256 of the workload, lower-case hex. */
  workload: string;
  /** SHA-256 of its configuration, lower-case hex. */
  config: string;
}

/** A decision: released under rule `rule`, or refused with a reason for the audit. */
export type Verdict = { allowed: true; rule: number } | { allowed: false; reason: string };

/** The names a secret may have: they appear in resource paths (`/kbs/v0/resource/donjon/secret/NAME`). */
export const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const RULE_KEYS = ['secrets', 'workloads', 'configs', 'measurements', 'sim-roots', 'min-tcb', 'allow-debug'];
const TCB_KEYS = ['bootloader', 'tee', 'snp', 'microcode', 'fmc'] as const;

function invalid(where: string, why: string): never {
  throw new BrokerError('ERR_BROKER_POLICY_INVALID', `Cannot use the policy: ${where} ${why}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function list(where: string, v: unknown, check: (s: string) => boolean, what: string, fold = true): string[] {
  if (!Array.isArray(v) || v.length === 0) invalid(where, 'must be a non-empty list');
  return v.map((s, i) => {
    if (typeof s !== 'string' || !check(s)) invalid(`${where}[${i}]`, `must be ${what}`);
    return fold ? s.toLowerCase() : s;
  });
}

const hexOf = (n: number) => (s: string) => s.length === n && /^[0-9a-fA-F]+$/.test(s);

function rule(v: unknown, i: number): AllowRule {
  const at = `allow[${i}]`;
  if (!isRecord(v)) invalid(at, 'must be a table');
  for (const k of Object.keys(v)) if (!RULE_KEYS.includes(k)) invalid(`${at}.${k}`, 'is not a policy field');
  if (v['secrets'] === undefined) invalid(`${at}.secrets`, 'is required');
  if (v['workloads'] === undefined) invalid(`${at}.workloads`, 'is required');
  const out: AllowRule = {
    // Secret names keep their case; only digests are folded.
    secrets: list(`${at}.secrets`, v['secrets'], (s) => SECRET_NAME.test(s), 'a secret name', false),
    workloads: list(`${at}.workloads`, v['workloads'], hexOf(64), '64 hex digits (SHA-256 of the module)'),
    simRoots:
      v['sim-roots'] === undefined ? [] : list(`${at}.sim-roots`, v['sim-roots'], hexOf(64), '64 hex digits'),
    allowDebug: false,
  };
  if (v['configs'] !== undefined)
    out.configs = list(`${at}.configs`, v['configs'], hexOf(64), '64 hex digits');
  if (v['measurements'] !== undefined) {
    out.measurements = list(`${at}.measurements`, v['measurements'], hexOf(96), '96 hex digits');
  }
  if (v['allow-debug'] !== undefined) {
    if (typeof v['allow-debug'] !== 'boolean') invalid(`${at}.allow-debug`, 'must be true or false');
    out.allowDebug = v['allow-debug'];
  }
  const minTcb = v['min-tcb'];
  if (minTcb !== undefined) {
    if (!isRecord(minTcb)) invalid(`${at}.min-tcb`, 'must be a table');
    const tcb: MinTcb = {};
    for (const [k, n] of Object.entries(minTcb)) {
      if (!(TCB_KEYS as readonly string[]).includes(k))
        invalid(`${at}.min-tcb.${k}`, 'is not a TCB component');
      const num = typeof n === 'bigint' ? Number(n) : n;
      if (typeof num !== 'number' || !Number.isInteger(num) || num < 0 || num > 255) {
        invalid(`${at}.min-tcb.${k}`, 'must be an integer in 0..255');
      }
      tcb[k as keyof MinTcb] = num;
    }
    out.minTcb = tcb;
  }
  return out;
}

/** Checks a policy given as a value (from JSON or TOML). Throws ERR_BROKER_POLICY_INVALID. */
export function parseBrokerPolicy(value: unknown): BrokerPolicy {
  if (!isRecord(value)) invalid('the document', 'must be a table');
  for (const k of Object.keys(value)) if (k !== 'allow') invalid(k, 'is not a policy field (only [[allow]])');
  const allow = value['allow'] ?? [];
  if (!Array.isArray(allow)) invalid('allow', 'must be a list of tables ([[allow]])');
  return { allow: allow.map(rule) };
}

/** The format of a policy text: JSON when it opens with `{`, TOML otherwise. */
export function policyFormat(text: string): 'json' | 'toml' {
  return text.trimStart().startsWith('{') ? 'json' : 'toml';
}

/** Parses a policy text, JSON or TOML. Throws ERR_BROKER_POLICY_INVALID. */
export function parseBrokerPolicyText(text: string): BrokerPolicy {
  let value: unknown;
  try {
    value = policyFormat(text) === 'json' ? JSON.parse(text) : parseToml(text);
  } catch (cause) {
    throw new BrokerError(
      'ERR_BROKER_POLICY_INVALID',
      `Cannot use the policy: it is not valid ${policyFormat(text) === 'json' ? 'JSON' : 'TOML'} (${(cause as Error).message.split('\n')[0]})`,
      { cause },
    );
  }
  return parseBrokerPolicy(value);
}

/** Why one rule does not release `secret` to a Keep with these claims; undefined when it does. */
function refusal(
  r: AllowRule,
  secret: string,
  c: KeepClaims,
  defaults: readonly string[],
): string | undefined {
  if (!r.secrets.includes(secret)) return `no rule releases secret ${secret}`;
  if (!r.workloads.includes(c.workload)) return `workload ${c.workload} is not named for secret ${secret}`;
  if (r.configs && !r.configs.includes(c.config))
    return `configuration ${c.config} is not named for secret ${secret}`;
  const measurements = r.measurements ?? defaults;
  if (!measurements.includes(c.measurement)) return `measurement ${c.measurement} is not allowed`;
  if (c.simulated && !r.simRoots.includes(c.rootFingerprint)) {
    return `simulated root ${c.rootFingerprint} is not among the rule's sim-roots`;
  }
  if (c.debug && !r.allowDebug) return 'the Keep can be debugged and the rule does not allow-debug';
  if (r.minTcb) {
    if (c.kind !== 'sev-snp' || !c.tcb)
      return 'min-tcb names SEV-SNP components and the evidence is not SEV-SNP';
    for (const k of TCB_KEYS) {
      const floor = r.minTcb[k];
      if (floor === undefined) continue;
      const have = c.tcb[k];
      if (have === undefined) return `min-tcb.${k} cannot be checked on this processor`;
      if (have < floor) return `TCB ${k} ${have} is below min-tcb ${floor}`;
    }
  }
  return undefined;
}

/**
 * Whether `policy` releases `secret` to a Keep with these claims: the first rule that allows it wins; with
 * none, the reason given is that of the first rule naming the secret (or that none does). `defaults` are the
 * measurements a rule without `measurements` accepts.
 */
export function decide(
  policy: BrokerPolicy,
  secret: string,
  claims: KeepClaims,
  defaults: readonly string[],
): Verdict {
  let reason: string | undefined;
  for (const [i, r] of policy.allow.entries()) {
    const why = refusal(r, secret, claims, defaults);
    if (why === undefined) return { allowed: true, rule: i };
    if (reason === undefined && r.secrets.includes(secret)) reason = why;
  }
  return { allowed: false, reason: reason ?? `no rule releases secret ${secret}` };
}

/** Every simulated root any rule names: the roots the broker lets evidence chain to at all. */
export function simRootsOf(policy: BrokerPolicy): string[] {
  return [...new Set(policy.allow.flatMap((r) => r.simRoots))];
}
