// Kubernetes' own OpenAPI schemas, as kubernetes-models 4.5.1 compiles them: each generated object is built
// with its model class and validated. Those schemas check types, required fields and formats but let
// unknown fields through (as the API server's OpenAPI documents do), so the same package's TypeScript
// interfaces check the field names too.
import { join } from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import ts from 'typescript';
import type { KubeObject } from '../../src/kube/index.ts';
import { repoRoot } from '../helpers.ts';

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

/** The TypeScript interface kubernetes-models declares for each `apiVersion/kind`, and its module. */
const INTERFACES: Readonly<Record<string, readonly [string, string]>> = {
  'v1/Namespace': ['INamespace', 'kubernetes-models/v1/Namespace'],
  'v1/ServiceAccount': ['IServiceAccount', 'kubernetes-models/v1/ServiceAccount'],
  'v1/ConfigMap': ['IConfigMap', 'kubernetes-models/v1/ConfigMap'],
  'v1/Secret': ['ISecret', 'kubernetes-models/v1/Secret'],
  'v1/Service': ['IService', 'kubernetes-models/v1/Service'],
  'apps/v1/Deployment': ['IDeployment', 'kubernetes-models/apps/v1/Deployment'],
  'networking.k8s.io/v1/NetworkPolicy': [
    'INetworkPolicy',
    'kubernetes-models/networking.k8s.io/v1/NetworkPolicy',
  ],
  'policy/v1/PodDisruptionBudget': [
    'IPodDisruptionBudget',
    'kubernetes-models/policy/v1/PodDisruptionBudget',
  ],
};

/**
 * What the schemas let through, caught by the TypeScript compiler instead: each object written as an object
 * literal typed with its kind's interface from kubernetes-models, so that a field the API does not have, at
 * any depth, is an excess-property error. Returns the compiler's diagnostics (empty when every field exists).
 */
export function unknownFieldErrors(objects: readonly KubeObject[]): string[] {
  const file = join(repoRoot, 'test', 'kube', '.manifest-fields.mts');
  const imports: string[] = [];
  const lines: string[] = [];
  objects.forEach((o, i) => {
    const entry = INTERFACES[`${o.apiVersion}/${o.kind}`];
    if (entry === undefined) throw new Error(`No Kubernetes interface for ${o.apiVersion}/${o.kind}`);
    imports.push(`import type { ${entry[0]} as T${i} } from '${entry[1]}';`);
    lines.push(`export const o${i}: T${i} = ${JSON.stringify(o, null, 1)};`);
  });
  const text = [...imports, ...lines].join('\n');
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (name) => name === file || fileExists.call(host, name);
  host.readFile = (name) => (name === file ? text : readFile.call(host, name));
  host.getSourceFile = (name, version, ...rest) =>
    name === file
      ? ts.createSourceFile(name, text, version)
      : getSourceFile.call(host, name, version, ...rest);
  const program = ts.createProgram([file], options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n').split('\n').slice(-1)[0]!);
}
