// Donjon's own rules for generated objects (src/kube/rules.ts), and Kubernetes' schemas: the golden objects
// keep both, and each rule, and the schema check itself, fails on an object broken for the purpose.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, test } from 'node:test';
import { checkManifest, type KubeObject, manifestViolations } from '../../src/kube/index.ts';
import { goldenObjects } from './manifest-fixtures.ts';
import { unknownFieldErrors, validateObject } from './manifest-validate.ts';

type Mutable = Record<string, unknown>;

/** The golden sim objects, deep-copied, with `edit` applied to the first object of `kind`. */
function broken(kind: string, edit: (o: Mutable) => void, backend: 'sim' | 'cvm' = 'sim'): KubeObject[] {
  const objects = structuredClone(goldenObjects(backend)) as unknown as Mutable[];
  edit(objects.find((o) => o['kind'] === kind)!);
  return objects as unknown as KubeObject[];
}

/** `o.a.b.c` for a path of keys and indexes, as a mutable object. */
function at(o: Mutable, ...path: (string | number)[]): Mutable {
  let v: unknown = o;
  for (const k of path) v = (v as Record<string | number, unknown>)[k];
  return v as Mutable;
}

const container = (d: Mutable) => at(d, 'spec', 'template', 'spec', 'containers', 0);

function breaks(objects: KubeObject[], pattern: RegExp): void {
  const violations = manifestViolations(objects);
  assert.ok(
    violations.some((v) => pattern.test(v)),
    `expected a violation matching ${pattern}: ${JSON.stringify(violations)}`,
  );
  assert.throws(() => checkManifest(objects), { code: 'ERR_KUBE_RULE_BROKEN' });
}

describe('manifestViolations(): our own rules', () => {
  test('the golden sim and cvm objects keep every rule', () => {
    assert.deepEqual(manifestViolations(goldenObjects('sim')), []);
    assert.deepEqual(manifestViolations(goldenObjects('cvm')), []);
  });

  test('names: an invalid object name, another namespace, a Service name that is not an RFC 1035 label', () => {
    breaks(
      broken('ConfigMap', (o) => {
        at(o, 'metadata')['name'] = 'Http_Config';
      }),
      /ConfigMap Http_Config: the name/,
    );
    breaks(
      broken('ServiceAccount', (o) => {
        at(o, 'metadata')['namespace'] = 'other';
      }),
      /not in the namespace/,
    );
    breaks(
      broken('Service', (o) => {
        at(o, 'metadata')['name'] = '1http';
      }),
      /RFC 1035/,
    );
  });

  test('selectors: a Deployment, Service, NetworkPolicy or PodDisruptionBudget selector that misses the Pod labels', () => {
    breaks(
      broken('Deployment', (o) => {
        at(o, 'spec', 'selector', 'matchLabels')['app.kubernetes.io/name'] = 'web';
      }),
      /^Deployment: its selector/,
    );
    breaks(
      broken('Service', (o) => {
        at(o, 'spec')['selector'] = {};
      }),
      /^Service: its selector/,
    );
    breaks(
      broken('NetworkPolicy', (o) => {
        at(o, 'spec', 'podSelector', 'matchLabels')['x'] = 'y';
      }),
      /^NetworkPolicy: its selector/,
    );
    breaks(
      broken('PodDisruptionBudget', (o) => {
        at(o, 'spec', 'selector', 'matchLabels')['app.kubernetes.io/component'] = 'db';
      }),
      /^PodDisruptionBudget: its selector/,
    );
  });

  test("ports: a Service port missing, renamed, or whose targetPort differs from the listen file's; a container port missing", () => {
    breaks(
      broken('Service', (o) => {
        (at(o, 'spec', 'ports') as unknown as unknown[]).pop();
      }),
      /^Service: its ports/,
    );
    breaks(
      broken('Service', (o) => {
        at(o, 'spec', 'ports', 0)['name'] = 'web';
      }),
      /^Service: its ports/,
    );
    breaks(
      broken('Service', (o) => {
        at(o, 'spec', 'ports', 0)['targetPort'] = 443;
      }),
      /^Service: its ports/,
    );
    breaks(
      broken('Deployment', (o) => {
        (at(container(o), 'ports') as unknown as unknown[]).shift();
      }),
      /no container port https 8443/,
    );
  });

  test('digests: an image or a keep-pod reference by tag', () => {
    breaks(
      broken('Deployment', (o) => {
        container(o)['image'] = 'ghcr.io/example/donjon:latest';
      }),
      /image has no @sha256/,
    );
    breaks(
      broken('Deployment', (o) => {
        (container(o)['command'] as string[])[2] = 'registry.example:5000/team/http:1.0';
      }),
      /reference has no @sha256/,
    );
  });

  test('secrets: a second Secret, a Secret with other keys, a private key in a ConfigMap or an annotation, a ConfigMap file that is no public key', () => {
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    }) as string;
    const objects = structuredClone(goldenObjects('sim')) as KubeObject[];
    objects.push({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'token', namespace: 'http' },
      stringData: { token: 'x' },
    });
    breaks(objects, /Secret token: the only Secret allowed/);
    breaks(
      broken('Secret', (o) => {
        at(o, 'data')['extra'] = 'eA==';
      }),
      /the only Secret allowed/,
    );
    breaks(
      broken('ConfigMap', (o) => {
        at(o, 'data')['key-2.pub'] = pem;
      }),
      /holds a private key/,
    );
    breaks(
      broken('Deployment', (o) => {
        at(o, 'metadata', 'annotations')['note'] = pem;
      }),
      /Deployment http: holds a private key/,
    );
    breaks(
      broken('ConfigMap', (o) => {
        at(o, 'data')['token'] = 'hunter2';
      }),
      /token is neither the Enarx\.toml nor a public key/,
    );
  });

  test('probes: liveness or readiness on another path or port, no health port', () => {
    breaks(
      broken('Deployment', (o) => {
        at(container(o), 'livenessProbe', 'httpGet')['path'] = '/';
      }),
      /livenessProbe is not GET \/healthz/,
    );
    breaks(
      broken('Deployment', (o) => {
        at(container(o), 'readinessProbe', 'httpGet')['port'] = 8443;
      }),
      /readinessProbe is not GET \/readyz/,
    );
    breaks(
      broken('Deployment', (o) => {
        (at(container(o), 'ports') as unknown as unknown[]).pop();
      }),
      /no container port health 8080/,
    );
  });
  test('the node: a hostPath other than configfs, or configfs outside a privileged namespace', () => {
    breaks(
      broken('Deployment', (o) => {
        (at(o, 'spec', 'template', 'spec', 'volumes') as unknown as unknown[]).push({
          name: 'root',
          hostPath: { path: '/' },
        });
      }),
      /hostPath \/ is not/,
    );
    breaks(
      broken(
        'Namespace',
        (o) => {
          at(o, 'metadata', 'labels')['pod-security.kubernetes.io/enforce'] = 'baseline';
        },
        'cvm',
      ),
      /hostPath \/sys\/kernel\/config is not .* privileged namespace/,
    );
  });
});

describe("Kubernetes' schemas (kubernetes-models 4.5.1)", () => {
  test('every golden object, sim and cvm, validates', () => {
    for (const o of [...goldenObjects('sim'), ...goldenObjects('cvm')]) validateObject(o);
  });

  test('an object broken against the schema fails: a port as text, a Deployment without selector, a replica count as text, an unknown kind', () => {
    const p = broken('Service', (o) => {
      at(o, 'spec', 'ports', 0)['port'] = 'https';
    }).find((o) => o.kind === 'Service')!;
    assert.throws(() => validateObject(p), /Service http: .*port must be integer/);
    const d = broken('Deployment', (o) => {
      delete at(o, 'spec')['selector'];
    }).find((o) => o.kind === 'Deployment')!;
    assert.throws(() => validateObject(d), /must have required property 'selector'|selector/);
    const r = broken('Deployment', (o) => {
      at(o, 'spec')['replicas'] = '3';
    }).find((o) => o.kind === 'Deployment')!;
    assert.throws(() => validateObject(r), /replicas must be integer/);
    const s = broken('Deployment', (o) => {
      at(container(o), 'securityContext')['runAsUser'] = 'root';
    }).find((o) => o.kind === 'Deployment')!;
    assert.throws(() => validateObject(s), /runAsUser must be integer/);
    assert.throws(
      () => validateObject({ apiVersion: 'v1', kind: 'Frob', metadata: { name: 'x' } }),
      /No Kubernetes model for v1\/Frob/,
    );
  });

  test('every field of the golden objects exists in the Kubernetes API; a misspelt or invented one is caught', () => {
    assert.deepEqual(unknownFieldErrors([...goldenObjects('sim'), ...goldenObjects('cvm')]), []);
    // The compiler reports the first excess field of each object: one misspelt field per object.
    const objects = broken('Deployment', (o) => {
      container(o)['imagePullPolicyy'] = 'IfNotPresent';
    });
    const pod = objects.find((o) => o.kind === 'PodDisruptionBudget') as unknown as Mutable;
    at(pod, 'spec')['maxUnavailabe'] = 1;
    const errors = unknownFieldErrors(objects);
    assert.equal(errors.length, 2, errors.join('\n'));
    assert.match(errors[0]!, /'"imagePullPolicyy"' does not exist in type 'IContainer'/);
    assert.match(errors[1]!, /'"maxUnavailabe"' does not exist in type 'IPodDisruptionBudgetSpec'/);
  });
});
