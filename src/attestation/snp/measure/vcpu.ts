// vCPU models and their CPUID signatures: a vCPU finds its signature (CPUID Fn0000_0001_EAX) in RDX at
// reset, so the model is part of every VMSA and of the launch digest.

/**
 * The CPUID Fn0000_0001_EAX signature of a family, model and stepping (AMD CPUID Specification #25481):
 * families above 0xF are split into a base of 0xF plus an extended family.
 */
export function cpuSignature(family: number, model: number, stepping: number): number {
  for (const [name, value, max] of [
    ['family', family, 0xff + 0xf],
    ['model', model, 0xff],
    ['stepping', stepping, 0xf],
  ] as const) {
    if (!Number.isInteger(value) || value < 0 || value > max) {
      throw new RangeError(`Cannot compute CPU signature: ${name} ${value} is out of range`);
    }
  }
  const familyLow = Math.min(family, 0xf);
  const familyHigh = Math.max(family - 0xf, 0);
  return (
    ((familyHigh << 20) | ((model >> 4) << 16) | (familyLow << 8) | ((model & 0xf) << 4) | stepping) >>> 0
  );
}

const EPYC = cpuSignature(23, 1, 2);
const ROME = cpuSignature(23, 49, 0);
const MILAN = cpuSignature(25, 1, 1);
const GENOA = cpuSignature(25, 17, 0);

/** QEMU's EPYC vCPU models (its builtin x86 definitions) and their signatures. */
export const VCPU_SIGNATURES: Readonly<Record<string, number>> = Object.freeze({
  EPYC: EPYC,
  'EPYC-v1': EPYC,
  'EPYC-v2': EPYC,
  'EPYC-IBPB': EPYC,
  'EPYC-v3': EPYC,
  'EPYC-v4': EPYC,
  'EPYC-Rome': ROME,
  'EPYC-Rome-v1': ROME,
  'EPYC-Rome-v2': ROME,
  'EPYC-Rome-v3': ROME,
  'EPYC-Milan': MILAN,
  'EPYC-Milan-v1': MILAN,
  'EPYC-Milan-v2': MILAN,
  'EPYC-Genoa': GENOA,
  'EPYC-Genoa-v1': GENOA,
  'EPYC-Turin': cpuSignature(26, 0, 0),
});

/** The signature of a named vCPU model; RangeError for a name QEMU does not define. */
export function vcpuSignature(type: string): number {
  if (!Object.hasOwn(VCPU_SIGNATURES, type)) {
    throw new RangeError(
      `Cannot find vCPU type '${type}': expected one of ${Object.keys(VCPU_SIGNATURES).join(', ')}`,
    );
  }
  return VCPU_SIGNATURES[type]!;
}
