// The NetworkPolicy of a service, kept simple: what the Pods listen on, and where they connect as far as
// their reference and Enarx.toml name it.
import { HEALTH_PORT, isIpLiteral, type ManifestPlan } from './inputs.ts';
import { ANNOTATION_PREFIX, type JsonObject, type KubeObject, metadata, selectorOf } from './objects.ts';

function byNumber(a: number, b: number): number {
  return a - b;
}

/**
 * The service's NetworkPolicy: ingress only to the listen ports and the health port (from anywhere: the
 * service's own TLS and each client's verification protect it), egress only to DNS, the registry, each
 * connect file and each broker.
 */
export function networkPolicy(plan: ManifestPlan): KubeObject {
  const ingressPorts = [...plan.listen.map((l) => l.port), HEALTH_PORT].sort(byNumber);
  // A NetworkPolicy names addresses, not host names: an IP literal is pinned to itself, a host name is
  // allowed by its port alone (to any address), which is as far as the API goes without a CNI's own FQDN rules.
  const byAddress = new Map<string, Set<number>>();
  const anyAddress = new Set<number>();
  for (const e of plan.egress) {
    if (isIpLiteral(e.host)) {
      const cidr = `${e.host}/${e.host.includes(':') ? 128 : 32}`;
      byAddress.set(cidr, (byAddress.get(cidr) ?? new Set()).add(e.port));
    } else anyAddress.add(e.port);
  }
  const tcp = (ports: Iterable<number>) =>
    [...ports].sort(byNumber).map((port) => ({ protocol: 'TCP', port }));
  const egress: JsonObject[] = [
    {
      ports: [
        { protocol: 'UDP', port: 53 },
        { protocol: 'TCP', port: 53 },
      ],
    },
    ...[...byAddress.keys()]
      .sort()
      .map((cidr) => ({ to: [{ ipBlock: { cidr } }], ports: tcp(byAddress.get(cidr)!) })),
  ];
  if (anyAddress.size > 0) egress.push({ ports: tcp(anyAddress) });
  const reasons = [...new Set(plan.egress.map((e) => `${e.why} (${e.host}:${e.port})`))].join('; ');
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: metadata(plan, plan.name, {
      [`${ANNOTATION_PREFIX}egress`]: `DNS; ${reasons}. Host names are allowed by port only: a NetworkPolicy cannot name them`,
    }),
    spec: {
      podSelector: { matchLabels: selectorOf(plan) },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ ports: tcp(ingressPorts) }],
      egress,
    },
  };
}
