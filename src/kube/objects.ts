// The Kubernetes objects of one service, made from a checked plan: plain JSON values, built field by field
// in the order Kubernetes' own documentation writes them, so that serializing them is deterministic.
import { HEALTH_PORT, HEALTH_PORT_NAME, type ManifestPlan, sha256Hex } from './inputs.ts';
import { networkPolicy } from './network-policy.ts';

/** A JSON value: what the objects are made of. */
export type Json = string | number | boolean | null | readonly Json[] | { readonly [key: string]: Json };
/** A JSON object. */
export type JsonObject = { readonly [key: string]: Json };

/** One Kubernetes object: `apiVersion`, `kind`, `metadata` and the rest. */
export interface KubeObject extends JsonObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: JsonObject;
}

/** The prefix of Donjon's own annotations (a DNS label: it claims no domain). */
export const ANNOTATION_PREFIX = 'donjon/';
/** Where the Pod finds its files: the contract of `donjon keep-pod`. */
export const POD_PATHS = {
  config: '/etc/donjon/config',
  keys: '/etc/donjon/keys',
  simRoot: '/etc/donjon/sim-root',
  state: '/var/run/donjon',
  configfs: '/sys/kernel/config',
} as const;
/** The uid (and gid) a `sim` Pod runs as: the image's USER. */
export const SIM_UID = 10001;
/** What a `cvm` Pod is marked with until it has run on a confidential node. */
export const NOT_ON_HARDWARE = 'not yet run on hardware';

/**
 * The Node Feature Discovery labels a `cvm` Pod may be scheduled by (any one of them). NFD labels a TDX
 * guest itself (`cpu-security.tdx.protected`, from the TDX_GUEST cpuid flag); its `sev.snp.enabled` and
 * `tdx.enabled` labels mean a host that can *run* such guests, which is not what a `cvm` Pod needs. NFD has
 * no built-in label for an SEV-SNP guest: docs/kubernetes.md gives the NodeFeatureRule that sets this one.
 */
export const CVM_NODE_LABELS = [
  'feature.node.kubernetes.io/cpu-security.tdx.protected',
  'feature.node.kubernetes.io/donjon-sev-snp-guest',
] as const;

const STANDARD = 'app.kubernetes.io';

/** The labels every object carries; the first two select the Pods. */
export function labelsOf(plan: ManifestPlan): Record<string, string> {
  return { ...selectorOf(plan), [`${STANDARD}/managed-by`]: 'donjon' };
}

/** The labels that select the service's Pods (Deployment, Service, NetworkPolicy, PodDisruptionBudget). */
export function selectorOf(plan: ManifestPlan): Record<string, string> {
  return { [`${STANDARD}/name`]: plan.name, [`${STANDARD}/component`]: 'keep' };
}

/** The metadata of an object of the service: name, namespace, labels and annotations. */
export function metadata(plan: ManifestPlan, name: string, annotations?: Record<string, string>): JsonObject {
  return {
    name,
    namespace: plan.namespace,
    labels: labelsOf(plan),
    ...(annotations === undefined ? {} : { annotations }),
  };
}

/** The names of the objects beside the Deployment. */
export function objectNames(plan: ManifestPlan) {
  return {
    config: `${plan.name}-config`,
    keys: `${plan.name}-keys`,
    simRoot: `${plan.name}-sim-root`,
  };
}

function namespaceObject(plan: ManifestPlan): KubeObject {
  const level = plan.backend === 'cvm' ? 'privileged' : 'restricted';
  const why =
    plan.backend === 'cvm'
      ? `privileged: a cvm Pod runs as uid 0 and mounts the node's ${POD_PATHS.configfs} (configfs-tsm) to ask the TEE for reports, which the baseline and restricted levels forbid`
      : 'restricted: a sim Pod needs nothing from the node';
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: plan.namespace,
      labels: {
        ...labelsOf(plan),
        'pod-security.kubernetes.io/enforce': level,
        'pod-security.kubernetes.io/audit': level,
        'pod-security.kubernetes.io/warn': level,
      },
      annotations: { [`${ANNOTATION_PREFIX}pod-security`]: why },
    },
  };
}

function serviceAccount(plan: ManifestPlan): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: metadata(plan, plan.name),
    automountServiceAccountToken: false,
  };
}

function configMaps(plan: ManifestPlan): KubeObject[] {
  const names = objectNames(plan);
  const out: KubeObject[] = [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: metadata(plan, names.config),
      data: { 'Enarx.toml': plan.enarxToml },
    },
  ];
  if (plan.verifyKeys.length > 0) {
    out.push({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: metadata(plan, names.keys),
      data: Object.fromEntries(plan.verifyKeys.map((pem, i) => [`key-${i + 1}.pub`, pem])),
    });
  }
  return out;
}

function simRootSecret(plan: ManifestPlan): KubeObject[] {
  if (plan.simRoot === undefined) return [];
  return [
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: metadata(plan, objectNames(plan).simRoot, {
        [`${ANNOTATION_PREFIX}warning`]:
          "DEVELOPMENT ONLY: this Secret holds a SIMULATED root's private key; anyone who reads it can forge evidence that clients trusting its fingerprint accept",
        [`${ANNOTATION_PREFIX}sim-root-fingerprint`]: plan.simRoot.fingerprint,
      }),
      type: 'Opaque',
      data: { 'sim-root.cbor': Buffer.from(plan.simRoot.bytes).toString('base64') },
    },
  ];
}

/** `donjon keep-pod …` exactly as its contract writes it, with the Pod's paths. */
export function keepPodCommand(plan: ManifestPlan): string[] {
  const command = ['donjon', 'keep-pod', plan.reference, '--config', `${POD_PATHS.config}/Enarx.toml`];
  plan.verifyKeys.forEach((_, i) => {
    command.push('--verify-key', `${POD_PATHS.keys}/key-${i + 1}.pub`);
  });
  if (plan.allowUnsigned) command.push('--allow-unsigned');
  command.push('--backend', plan.backend, '--health-listen', `0.0.0.0:${HEALTH_PORT}`);
  if (plan.simRoot !== undefined) command.push('--sim-root', `${POD_PATHS.simRoot}/sim-root.cbor`);
  command.push(
    '--state-dir',
    POD_PATHS.state,
    '--listen-address',
    '0.0.0.0',
    '--grace-period',
    String(plan.gracePeriodSeconds),
  );
  if (plan.plainHttp) command.push('--plain-http');
  return command;
}

function securityContexts(plan: ManifestPlan): { pod: JsonObject; container: JsonObject } {
  if (plan.backend === 'sim') {
    return {
      pod: {
        runAsNonRoot: true,
        runAsUser: SIM_UID,
        runAsGroup: SIM_UID,
        fsGroup: SIM_UID,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      container: {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        capabilities: { drop: ['ALL'] },
      },
    };
  }
  // uid 0 because configfs-tsm's report entries belong to root; no capability is needed for that, and
  // the container runtimes' default AppArmor profile denies writes below /sys/kernel, hence Unconfined.
  return {
    pod: { runAsNonRoot: false, runAsUser: 0, runAsGroup: 0, seccompProfile: { type: 'RuntimeDefault' } },
    container: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      appArmorProfile: { type: 'Unconfined' },
    },
  };
}

function volumesOf(plan: ManifestPlan): { volumes: JsonObject[]; mounts: JsonObject[] } {
  const names = objectNames(plan);
  const volumes: JsonObject[] = [
    { name: 'config', configMap: { name: names.config, items: [{ key: 'Enarx.toml', path: 'Enarx.toml' }] } },
  ];
  const mounts: JsonObject[] = [{ name: 'config', mountPath: POD_PATHS.config, readOnly: true }];
  if (plan.verifyKeys.length > 0) {
    volumes.push({ name: 'keys', configMap: { name: names.keys } });
    mounts.push({ name: 'keys', mountPath: POD_PATHS.keys, readOnly: true });
  }
  if (plan.simRoot !== undefined) {
    volumes.push({
      name: 'sim-root',
      // 0440 with fsGroup: readable by the Pod's uid, nobody else's.
      secret: {
        secretName: names.simRoot,
        defaultMode: 0o440,
        items: [{ key: 'sim-root.cbor', path: 'sim-root.cbor' }],
      },
    });
    mounts.push({ name: 'sim-root', mountPath: POD_PATHS.simRoot, readOnly: true });
  }
  volumes.push({ name: 'state', emptyDir: {} }, { name: 'tmp', emptyDir: {} });
  mounts.push({ name: 'state', mountPath: POD_PATHS.state }, { name: 'tmp', mountPath: '/tmp' });
  if (plan.backend === 'cvm') {
    volumes.push({ name: 'configfs', hostPath: { path: POD_PATHS.configfs, type: 'Directory' } });
    mounts.push({ name: 'configfs', mountPath: POD_PATHS.configfs });
  }
  return { volumes, mounts };
}

function fieldEnv(name: string, fieldPath: string): JsonObject {
  return { name, valueFrom: { fieldRef: { fieldPath } } };
}

function nodePlacement(plan: ManifestPlan): JsonObject {
  if (plan.backend === 'sim') return {};
  return {
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          // Terms are ORed: a TDX guest or an SEV-SNP guest.
          nodeSelectorTerms: CVM_NODE_LABELS.map((key) => ({
            matchExpressions: [{ key, operator: 'In', values: ['true'] }],
          })),
        },
      },
    },
  };
}

function podAnnotations(plan: ManifestPlan): Record<string, string> {
  const a: Record<string, string> = {
    'kubectl.kubernetes.io/default-container': 'keep',
    [`${ANNOTATION_PREFIX}backend`]: plan.backend,
    [`${ANNOTATION_PREFIX}reference`]: plan.reference,
    // A changed Enarx.toml or key list changes the template, so the Deployment rolls out.
    [`${ANNOTATION_PREFIX}inputs-sha256`]: sha256Hex(
      JSON.stringify([plan.enarxToml, plan.verifyKeys, plan.simRoot?.fingerprint ?? null]),
    ),
  };
  if (plan.simRoot !== undefined) {
    a[`${ANNOTATION_PREFIX}sim-root-fingerprint`] = plan.simRoot.fingerprint;
    a[`${ANNOTATION_PREFIX}warning`] =
      'DEVELOPMENT ONLY: sim replicas share one simulated root from a Secret; their evidence proves no hardware';
  } else {
    a[`${ANNOTATION_PREFIX}hardware`] =
      `${NOT_ON_HARDWARE}: a cvm Pod needs a confidential node (SEV-SNP or TDX guest) with configfs-tsm at ${POD_PATHS.configfs}`;
  }
  return a;
}

function deployment(plan: ManifestPlan): KubeObject {
  const { pod, container } = securityContexts(plan);
  const { volumes, mounts } = volumesOf(plan);
  const healthProbe = (path: string, periodSeconds: number): JsonObject => ({
    httpGet: { path, port: HEALTH_PORT_NAME },
    periodSeconds,
    timeoutSeconds: 2,
    failureThreshold: 3,
  });
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: metadata(plan, plan.name, {
      [`${ANNOTATION_PREFIX}backend`]: plan.backend,
      ...(plan.backend === 'cvm' ? { [`${ANNOTATION_PREFIX}hardware`]: NOT_ON_HARDWARE } : {}),
    }),
    spec: {
      replicas: plan.replicas,
      selector: { matchLabels: selectorOf(plan) },
      // A new replica is ready (its broker released its secrets) before an old one stops.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels: labelsOf(plan), annotations: podAnnotations(plan) },
        spec: {
          serviceAccountName: plan.name,
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: plan.gracePeriodSeconds + 10,
          securityContext: pod,
          ...nodePlacement(plan),
          containers: [
            {
              name: 'keep',
              image: plan.image,
              imagePullPolicy: 'IfNotPresent',
              command: keepPodCommand(plan),
              env: [
                fieldEnv('POD_NAME', 'metadata.name'),
                fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
                fieldEnv('POD_IP', 'status.podIP'),
                fieldEnv('NODE_NAME', 'spec.nodeName'),
              ],
              ports: [
                ...plan.listen.map((l) => ({ name: l.name, containerPort: l.port, protocol: 'TCP' })),
                { name: HEALTH_PORT_NAME, containerPort: HEALTH_PORT, protocol: 'TCP' },
              ],
              livenessProbe: healthProbe('/healthz', 10),
              readinessProbe: healthProbe('/readyz', 5),
              securityContext: container,
              volumeMounts: mounts,
            },
          ],
          volumes,
        },
      },
    },
  };
}

function service(plan: ManifestPlan): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(plan, plan.name),
    spec: {
      type: 'ClusterIP',
      selector: selectorOf(plan),
      ports: plan.listen.map((l) => ({ name: l.name, port: l.port, targetPort: l.port, protocol: 'TCP' })),
    },
  };
}

function disruptionBudget(plan: ManifestPlan): KubeObject {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: metadata(plan, plan.name),
    spec: { maxUnavailable: 1, selector: { matchLabels: selectorOf(plan) } },
  };
}

/**
 * The objects of one service, in the order `kubectl apply` needs them (the Namespace first, what the Pods
 * mount before the Deployment): Namespace, ServiceAccount, ConfigMaps, the sim root's Secret (`sim`),
 * Deployment, Service, NetworkPolicy, PodDisruptionBudget. The same plan gives the same objects.
 */
export function manifestObjects(plan: ManifestPlan): KubeObject[] {
  return [
    namespaceObject(plan),
    serviceAccount(plan),
    ...configMaps(plan),
    ...simRootSecret(plan),
    deployment(plan),
    service(plan),
    networkPolicy(plan),
    disruptionBudget(plan),
  ];
}
