/**
 * Merges a host's ceilings with a tenant's own limits: each limit is the lower of the two, and a limit only
 * one side sets is that side's. A tenant can lower what the host allows, never raise it. Works on any record
 * of numeric limits, so a new kind of limit needs no change here.
 */
export function lowerLimits<L extends { readonly [K in keyof L]?: number }>(host: L, tenant: L): L {
  const out: Record<string, number> = {};
  for (const key of new Set([...Object.keys(host), ...Object.keys(tenant)])) {
    const h = (host as Record<string, number | undefined>)[key];
    const t = (tenant as Record<string, number | undefined>)[key];
    const v = h === undefined ? t : t === undefined ? h : Math.min(h, t);
    if (v !== undefined) out[key] = v;
  }
  return out as L;
}
