// Donjon's own rules for the objects it generates, beyond what Kubernetes' schemas can say: checked on every
// run of `donjon kube manifest` before anything is printed, and by the tests on objects broken on purpose.
// The rules read nothing but the objects themselves (the Enarx.toml is in its ConfigMap).
import { parseEnarxToml } from '../client/enarx-toml.ts';
import { reasonOf } from '../lib/errors.ts';
import { KubeError } from './errors.ts';
import { HEALTH_PORT, HEALTH_PORT_NAME, holdsPrivateKey } from './inputs.ts';
import { isDns1035Label, isDns1123Label, isPortName } from './names.ts';
import { type Json, type JsonObject, type KubeObject, POD_PATHS } from './objects.ts';

const DIGEST = /@sha256:[0-9a-f]{64}$/;

function isMap(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function get(value: Json | undefined, ...path: (string | number)[]): Json | undefined {
  let v = value;
  for (const key of path) {
    if (typeof key === 'number') v = Array.isArray(v) ? (v as readonly Json[])[key] : undefined;
    else v = isMap(v) ? v[key] : undefined;
  }
  return v;
}

function list(value: Json | undefined): readonly Json[] {
  return Array.isArray(value) ? (value as readonly Json[]) : [];
}

function strings(value: Json | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (isMap(value)) for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return out;
}

function everyString(value: Json | undefined, visit: (s: string) => void): void {
  if (typeof value === 'string') visit(value);
  else if (Array.isArray(value)) for (const v of value as readonly Json[]) everyString(v, visit);
  else if (isMap(value)) for (const v of Object.values(value)) everyString(v, visit);
}

/** Whether every label of `selector` is among `labels` with the same value (and there is at least one). */
function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  const entries = Object.entries(selector);
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

/**
 * Every rule the objects break, as sentences (empty when they keep them all):
 * - names: every object's name and the namespace are valid; NAME (Deployment, Service) an RFC 1035 label;
 * - selectors: the Deployment's, Service's, NetworkPolicy's and PodDisruptionBudget's select the Pod labels;
 * - ports: the Service has exactly one port per listen file of the ConfigMap's Enarx.toml, port = targetPort
 *   = the file's port, named after it; the container declares each, and the health port;
 * - digests: the container image and the `keep-pod` reference carry `@sha256:`;
 * - secrets: no Secret but the simulated root's, no private key anywhere else, ConfigMaps only public files;
 * - probes: liveness `/healthz` and readiness `/readyz` on the port named `health` (8080);
 * - the node: no hostPath but configfs-tsm (`cvm`), and that only in a `privileged` namespace.
 */
export function manifestViolations(objects: readonly KubeObject[]): string[] {
  const v: string[] = [];
  const of = (kind: string) => objects.filter((o) => o.kind === kind);
  const one = (kind: string): KubeObject | undefined => {
    const found = of(kind);
    if (found.length !== 1) v.push(`expected one ${kind}, found ${found.length}`);
    return found[0];
  };
  const ns = one('Namespace');
  const deployment = one('Deployment');
  const service = one('Service');
  const policy = one('NetworkPolicy');
  const budget = one('PodDisruptionBudget');
  const namespace = get(ns, 'metadata', 'name');

  for (const o of objects) {
    const name = get(o, 'metadata', 'name');
    const where = `${o.kind} ${String(name)}`;
    if (typeof name !== 'string' || !isDns1123Label(name))
      v.push(`${where}: the name is not an RFC 1123 label`);
    if (o.kind !== 'Namespace' && get(o, 'metadata', 'namespace') !== namespace) {
      v.push(`${where}: not in the namespace ${String(namespace)}`);
    }
    if ((o.kind === 'Service' || o.kind === 'Deployment') && !isDns1035Label(String(name))) {
      v.push(`${where}: the name is not an RFC 1035 label`);
    }
    if (o.kind === 'Secret') {
      const keys = Object.keys(strings(get(o, 'data')));
      if (
        !String(name).endsWith('-sim-root') ||
        keys.join() !== 'sim-root.cbor' ||
        get(o, 'stringData') !== undefined
      ) {
        v.push(`${where}: the only Secret allowed is the simulated root's (<name>-sim-root, sim-root.cbor)`);
      }
      continue;
    }
    everyString(o, (s) => {
      if (holdsPrivateKey(s)) v.push(`${where}: holds a private key`);
    });
    if (o.kind === 'ConfigMap') {
      for (const [key, text] of Object.entries(strings(get(o, 'data')))) {
        const publicKey =
          /^key-\d+\.pub$/.test(key) &&
          /^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n$/.test(text);
        if (key !== 'Enarx.toml' && !publicKey)
          v.push(`${where}: ${key} is neither the Enarx.toml nor a public key`);
      }
      if (get(o, 'binaryData') !== undefined) v.push(`${where}: has binaryData`);
    }
  }

  const pod = get(deployment, 'spec', 'template');
  const podLabels = strings(get(pod, 'metadata', 'labels'));
  const selectors: [string, Json | undefined][] = [
    ['Deployment', get(deployment, 'spec', 'selector', 'matchLabels')],
    ['Service', get(service, 'spec', 'selector')],
    ['NetworkPolicy', get(policy, 'spec', 'podSelector', 'matchLabels')],
    ['PodDisruptionBudget', get(budget, 'spec', 'selector', 'matchLabels')],
  ];
  for (const [kind, selector] of selectors) {
    if (!selects(strings(selector), podLabels))
      v.push(`${kind}: its selector does not select the Pod's labels`);
  }

  const containers = list(get(pod, 'spec', 'containers'));
  if (containers.length !== 1) v.push(`Deployment: expected one container, found ${containers.length}`);
  const container = containers[0];
  const image = get(container, 'image');
  if (typeof image !== 'string' || !DIGEST.test(image))
    v.push('Deployment: the image has no @sha256: digest');
  const command = list(get(container, 'command'));
  if (command[0] !== 'donjon' || command[1] !== 'keep-pod')
    v.push('Deployment: the command is not donjon keep-pod');
  if (typeof command[2] !== 'string' || !DIGEST.test(command[2])) {
    v.push('Deployment: the keep-pod reference has no @sha256: digest');
  }

  // The node's filesystem: only configfs-tsm, and only in a namespace whose Pod Security level admits it.
  const level = strings(get(ns, 'metadata', 'labels'))['pod-security.kubernetes.io/enforce'];
  for (const volume of list(get(pod, 'spec', 'volumes'))) {
    const hostPath = get(volume, 'hostPath', 'path');
    if (hostPath === undefined) continue;
    if (hostPath !== POD_PATHS.configfs || level !== 'privileged') {
      v.push(
        `Deployment: the hostPath ${String(hostPath)} is not ${POD_PATHS.configfs} in a privileged namespace`,
      );
    }
  }

  const containerPorts = new Map<string, number>();
  for (const p of list(get(container, 'ports'))) {
    const name = get(p, 'name');
    const port = get(p, 'containerPort');
    if (typeof name !== 'string' || !isPortName(name) || typeof port !== 'number') {
      v.push(`Deployment: container port ${String(name)} is not a named port`);
    } else containerPorts.set(name, port);
  }
  if (containerPorts.get(HEALTH_PORT_NAME) !== HEALTH_PORT) {
    v.push(`Deployment: no container port ${HEALTH_PORT_NAME} ${HEALTH_PORT}`);
  }
  for (const [probe, path] of [
    ['livenessProbe', '/healthz'],
    ['readinessProbe', '/readyz'],
  ] as const) {
    const http = get(container, probe, 'httpGet');
    if (get(http, 'path') !== path || get(http, 'port') !== HEALTH_PORT_NAME) {
      v.push(`Deployment: the ${probe} is not GET ${path} on the port ${HEALTH_PORT_NAME}`);
    }
  }

  const config = objects.find((o) => o.kind === 'ConfigMap' && get(o, 'data', 'Enarx.toml') !== undefined);
  const text = get(config, 'data', 'Enarx.toml');
  if (typeof text !== 'string') v.push('no ConfigMap holds the Enarx.toml');
  else {
    let listen: { name: string; port: number }[] = [];
    try {
      listen = parseEnarxToml(text).files.flatMap((f) =>
        f.kind === 'listen' ? [{ name: f.name, port: f.port }] : [],
      );
    } catch (error) {
      v.push(`the ConfigMap's Enarx.toml does not parse: ${reasonOf(error)}`);
    }
    const ports = list(get(service, 'spec', 'ports')).map((p) => ({
      name: get(p, 'name'),
      port: get(p, 'port'),
      targetPort: get(p, 'targetPort'),
    }));
    const expected = listen.map((l) => ({ name: l.name, port: l.port, targetPort: l.port }));
    if (JSON.stringify(ports) !== JSON.stringify(expected)) {
      v.push(
        `Service: its ports ${JSON.stringify(ports)} are not the listen files' ${JSON.stringify(expected)}`,
      );
    }
    for (const l of listen) {
      if (containerPorts.get(l.name) !== l.port) v.push(`Deployment: no container port ${l.name} ${l.port}`);
    }
  }
  return v;
}

/** Throws ERR_KUBE_RULE_BROKEN (a bug here) when the objects break any of {@link manifestViolations}. */
export function checkManifest(objects: readonly KubeObject[]): void {
  const broken = manifestViolations(objects);
  if (broken.length > 0) {
    throw new KubeError(
      'ERR_KUBE_RULE_BROKEN',
      `Cannot print the manifest: it breaks its own rules: ${broken.join('; ')}`,
    );
  }
}
