// Kubernetes' own OpenAPI schemas, as kubernetes-models 4.5.1 compiles them: each generated object is built
// with its model class and validated. (Those schemas check types, required fields and formats; like the
// API server's OpenAPI documents, they do not refuse unknown fields.)
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { KubeObject } from '../../src/kube/index.ts';

type Model = new (data: never) => { validate(): void; toJSON(): unknown };

/** The model class of each `apiVersion/kind` the generator makes. */
export const MODELS: Readonly<Record<string, Model>> = {
  'v1/Namespace': Namespace as unknown as Model,
  'v1/ServiceAccount': ServiceAccount as unknown as Model,
  'v1/ConfigMap': ConfigMap as unknown as Model,
  'v1/Secret': Secret as unknown as Model,
  'v1/Service': Service as unknown as Model,
  'apps/v1/Deployment': Deployment as unknown as Model,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy as unknown as Model,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget as unknown as Model,
};

/**
 * Validates one object against its kind's schema; throws the schema's own message (with the object's kind
 * and name) when it does not validate, or when no model knows its apiVersion and kind.
 */
export function validateObject(object: KubeObject): void {
  const key = `${object.apiVersion}/${object.kind}`;
  const Model = MODELS[key];
  if (Model === undefined) throw new Error(`No Kubernetes model for ${key}`);
  // A deep copy: the models may fill in apiVersion and kind on what they are given.
  const model = new Model(structuredClone(object) as never);
  try {
    model.validate();
  } catch (error) {
    throw new Error(`${key} ${String(object.metadata['name'])}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
