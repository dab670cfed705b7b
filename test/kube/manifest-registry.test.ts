// The contract of `donjon kube manifest`, end to end through the built command: examples/http/http.wasm
// pushed and signed to Debian's docker-registry on loopback, then the manifest for its reference printed
// twice with --json. The manifest asks no registry anything (REF carries its digest); the registry is here
// so that the reference is a real, signed artifact, as a user has it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { KubeObject } from '../../src/kube/index.ts';
import { example, repoRoot, runCli } from '../helpers.ts';
import {
  keyPair,
  type LocalRegistry,
  missing,
  pushSigned,
  startRegistry,
} from '../registry/registry-server.ts';
import { unknownFieldErrors, validateObject } from './manifest-validate.ts';

const absent = missing('docker-registry');
const IMAGE = `registry.example/donjon@sha256:${'ab'.repeat(32)}`;

describe('donjon kube manifest REF for a signed artifact in a loopback registry', { skip: absent }, () => {
  let registry: LocalRegistry;
  let dir: string;
  let reference = '';

  before(async () => {
    registry = await startRegistry();
    dir = mkdtempSync(join(tmpdir(), 'donjon-kube-registry-'));
    const keys = await keyPair(dir, 'cosign');
    const config = join(repoRoot, 'examples', 'http', 'Enarx.toml');
    reference = await pushSigned(dir, example('http'), `${registry.host}/http:1.0`, config, keys.key);
  });

  after(async () => {
    await registry?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('--json prints a Deployment with replicas 3 and a Service, the same bytes twice, every object valid', async () => {
    const args = [
      'kube',
      'manifest',
      reference,
      '--config',
      join(repoRoot, 'examples', 'http', 'Enarx.toml'),
      '--verify-key',
      join(dir, 'cosign.pub'),
      '--replicas',
      '3',
      '--backend',
      'sim',
      '--image',
      IMAGE,
      '--json',
    ];
    // No --sim-root: the user's own simulated root (the test run's data directory) is shared.
    const first = await runCli(args);
    const second = await runCli(args);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, first.stdout);
    assert.ok(first.stdout.endsWith('\n'));
    const objects = JSON.parse(first.stdout) as KubeObject[];
    assert.equal(first.stdout, `${JSON.stringify(objects, null, 2)}\n`);
    for (const o of objects) validateObject(o);
    assert.deepEqual(unknownFieldErrors(objects), []);
    const deployment = objects.find((o) => o.kind === 'Deployment') as KubeObject & {
      spec: { replicas: number; template: { spec: { containers: { command: string[]; image: string }[] } } };
    };
    assert.equal(deployment.spec.replicas, 3);
    const container = deployment.spec.template.spec.containers[0]!;
    assert.deepEqual(container.command.slice(0, 3), ['donjon', 'keep-pod', reference]);
    assert.equal(container.image, IMAGE);
    const service = objects.find((o) => o.kind === 'Service') as KubeObject & {
      spec: { ports: { name: string; port: number; targetPort: number }[] };
    };
    assert.deepEqual(service.spec.ports, [{ name: 'https', port: 8443, targetPort: 8443, protocol: 'TCP' }]);
    assert.match(first.stderr, /SIMULATED root's PRIVATE KEY/);
  });
});
