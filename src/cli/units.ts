import type { Limits } from '../protocol/messages.ts';
import { UsageError } from './errors.ts';

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
};
const TIME_UNITS: Record<string, number> = { ms: 1, '': 1000, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 };

/** Parses a byte size such as `64MiB`, `512k` or `1048576`. */
export function parseSize(text: string, flag: string): number {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined)
    throw new UsageError(`Cannot read ${flag} ${text}: expected a size such as 64MiB`);
  const value = Number(m[1]) * unit;
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new UsageError(`Cannot use ${flag} ${text}: out of range`);
  return value;
}

/** Parses a duration such as `30s`, `500ms`, `2m`; a bare number is seconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? TIME_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined)
    throw new UsageError(`Cannot read ${flag} ${text}: expected a duration such as 30s`);
  const value = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new UsageError(`Cannot use ${flag} ${text}: out of range`);
  return value;
}

/** The workload limits of --memory, --timeout and --max-output; a usage error names a flag it cannot read. */
export function limitsFrom(values: {
  memory?: string | undefined;
  timeout?: string | undefined;
  'max-output'?: string | undefined;
}): Limits {
  const limits: Limits = {};
  if (values.memory) limits.memoryBytes = parseSize(values.memory, '--memory');
  if (values.timeout) limits.wallTimeMs = parseDuration(values.timeout, '--timeout');
  if (values['max-output']) limits.outputBytes = parseSize(values['max-output'], '--max-output');
  return limits;
}
