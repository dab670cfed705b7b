/**
 * Kubernetes manifests for a service: each replica a Pod running `donjon keep-pod`. `planManifest` checks the
 * inputs, `manifestObjects` makes the objects, `manifestViolations` holds them to Donjon's own rules, and
 * `toYamlStream` or JSON prints them; the same inputs give the same bytes.
 */
export { KUBE_ERRORS, KubeError, type KubeErrorCode, kubeErrorCodes } from './errors.ts';
export {
  checkImage,
  checkReference,
  DEFAULT_GRACE_SECONDS,
  type Egress,
  HEALTH_PORT,
  HEALTH_PORT_NAME,
  holdsPrivateKey,
  type KubeBackend,
  MAX_REPLICAS,
  type ManifestPlan,
  type ManifestRequest,
  planManifest,
  publicVerifyKey,
} from './inputs.ts';
export {
  checkName,
  checkNamespace,
  defaultName,
  isDns1035Label,
  isDns1123Label,
  isPortName,
} from './names.ts';
export {
  ANNOTATION_PREFIX,
  CVM_NODE_LABELS,
  type Json,
  type JsonObject,
  type KubeObject,
  keepPodCommand,
  manifestObjects,
  NOT_ON_HARDWARE,
  POD_PATHS,
  SIM_UID,
} from './objects.ts';
export { checkManifest, manifestViolations } from './rules.ts';
export { isPlainSafe, toYaml, toYamlStream } from './yaml.ts';

import type { ManifestRequest } from './inputs.ts';
import { planManifest } from './inputs.ts';
import type { KubeObject } from './objects.ts';
import { manifestObjects } from './objects.ts';
import { checkManifest } from './rules.ts';
import { toYamlStream } from './yaml.ts';

/** The objects of a request, checked against the rules: what `donjon kube manifest` prints. */
export function generateManifest(request: ManifestRequest): KubeObject[] {
  const objects = manifestObjects(planManifest(request));
  checkManifest(objects);
  return objects;
}

/** The objects as printed: a YAML stream, or (`json`) one JSON array with 2-space indent; both end in a line break. */
export function formatManifest(objects: readonly KubeObject[], json: boolean): string {
  return json ? `${JSON.stringify(objects, null, 2)}\n` : toYamlStream(objects);
}
