// The fixed inputs of the golden manifests (test/kube/golden/README.md), for every manifest test.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type KubeBackend,
  type ManifestRequest,
  manifestObjects,
  planManifest,
} from '../../src/kube/index.ts';
import type { KubeObject } from '../../src/kube/objects.ts';
import { repoRoot } from '../helpers.ts';

/** The folder of the golden files and their inputs. */
export const goldenDir = join(repoRoot, 'test', 'kube', 'golden');
/** A reference with a fixed digest (no registry is asked: the manifest depends on its arguments only). */
export const REF = `registry.example:5000/team/http:1.0@sha256:${'0123456789abcdef'.repeat(4)}`;
/** A container image with a fixed digest. */
export const IMAGE = `ghcr.io/example/donjon@sha256:${'fedcba9876543210'.repeat(4)}`;
export const configPath = join(goldenDir, 'Enarx.toml');
export const keyPath = join(goldenDir, 'cosign.pub');
export const simRootPath = join(goldenDir, 'sim-root.cbor');

/** The golden request for `backend`, with `changes` applied. */
export function goldenRequest(backend: KubeBackend, changes: Partial<ManifestRequest> = {}): ManifestRequest {
  return {
    reference: REF,
    image: IMAGE,
    replicas: 3,
    backend,
    enarxToml: { text: readFileSync(configPath, 'utf8'), source: 'Enarx.toml' },
    verifyKeys: [{ text: readFileSync(keyPath, 'utf8'), source: 'cosign.pub' }],
    allowUnsigned: false,
    plainHttp: false,
    gracePeriodSeconds: 20,
    simRoot:
      backend === 'sim'
        ? { bytes: new Uint8Array(readFileSync(simRootPath)), source: 'sim-root.cbor' }
        : undefined,
    ...changes,
  };
}

/** The golden objects, made without the rules' check (so that tests can break them). */
export function goldenObjects(backend: KubeBackend): KubeObject[] {
  return manifestObjects(planManifest(goldenRequest(backend)));
}

/** The golden command line of `donjon kube manifest`, as the CLI tests run it. */
export function goldenArgs(backend: KubeBackend): string[] {
  return [
    'kube',
    'manifest',
    REF,
    '--config',
    configPath,
    '--verify-key',
    keyPath,
    '--replicas',
    '3',
    '--backend',
    backend,
    '--image',
    IMAGE,
    ...(backend === 'sim' ? ['--sim-root', simRootPath] : []),
  ];
}
