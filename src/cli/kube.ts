import { readFileSync } from 'node:fs';
import { loadOrCreateSimRoot } from '../host/simroot.ts';
import {
  checkManifest,
  DEFAULT_GRACE_SECONDS,
  formatManifest,
  type KubeBackend,
  type ManifestRequest,
  manifestObjects,
  NOT_ON_HARDWARE,
  planManifest,
} from '../kube/index.ts';
import { type Invocation, parseCommand } from './args.ts';
import { EXIT, UsageError } from './errors.ts';
import { dataDir } from './paths.ts';

/** `donjon help kube`. */
export const kubeHelp = `Usage: donjon kube manifest REF@sha256:… --config Enarx.toml --verify-key KEY.pub
                          --replicas N --backend sim|cvm --image IMAGE@sha256:… [options]

Prints the Kubernetes objects that run the service REF as N replicas, each a Pod whose container runs
'donjon keep-pod' (see docs/kubernetes.md): Namespace (Pod Security labels), ServiceAccount without a token,
ConfigMaps with the Enarx.toml and the public verifying keys, for sim the Secret with the shared simulated
root, Deployment, Service (one port per listen file), NetworkPolicy and PodDisruptionBudget. The same
inputs print the same bytes; nothing is fetched: REF and the image must carry their digests.
Apply the output with 'kubectl apply -f -'.

Options:
  --config FILE             the service's Enarx.toml (public; its [[secrets]] name secrets a broker holds)
  --verify-key KEY          cosign public key the Pods check REF's signature with (repeatable); a
                            private key is refused
  --allow-unsigned          let the Pods run REF without a valid signature
  --replicas N              how many Pods
  --backend sim|cvm         cvm: the node is an SEV-SNP or TDX guest (${NOT_ON_HARDWARE}); sim: for
                            development only, the replicas share one simulated root through a Secret
  --image IMAGE@sha256:…    the container image with Node.js and donjon (contrib/container/)
  --sim-root FILE           sim: the simulated root to share (default: this user's, sim-root.cbor in the
                            data directory, made on first use as 'donjon run' does)
  --name NAME               the Deployment's and Service's name (default: REF's last path segment)
  --namespace NS            default: NAME
  --grace-period SECONDS    how long a Pod drains on SIGTERM (default ${DEFAULT_GRACE_SECONDS})
  --plain-http              the Pods speak plain HTTP to REF's registry
  --json                    print one JSON array instead of a YAML stream
  -h, --help                show this help

Exit status: 0 once printed, 2 for a usage error or an input that would put a secret into the manifest.`;

const BACKENDS: readonly KubeBackend[] = ['sim', 'cvm'];

function readText(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(
      `Cannot read ${flag} ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
}

function integer(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,9}$/.test(text)) throw new UsageError(`Cannot read ${flag} ${text}: expected a whole number`);
  return Number(text);
}

/** The simulated root the replicas share: `--sim-root FILE`, else this user's (made on first use). */
async function simRootOf(path: string | undefined): Promise<{ bytes: Uint8Array; source: string }> {
  if (path !== undefined) {
    try {
      return { bytes: new Uint8Array(readFileSync(path)), source: path };
    } catch (error) {
      throw new UsageError(
        `Cannot read --sim-root ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      );
    }
  }
  const stored = await loadOrCreateSimRoot(dataDir(), () =>
    process.stderr.write(
      "donjon: creating this machine's simulated AMD root of trust (once; takes a few seconds)\n",
    ),
  );
  return { bytes: new Uint8Array(readFileSync(stored.path)), source: stored.path };
}

async function manifest(argv: string[], invocation: Invocation): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    command: 'kube',
    positionals: true,
    invocation,
    options: {
      config: { type: 'string' },
      'verify-key': { type: 'string', multiple: true, default: [] as string[] },
      'allow-unsigned': { type: 'boolean', default: false },
      replicas: { type: 'string' },
      backend: { type: 'string' },
      image: { type: 'string' },
      'sim-root': { type: 'string' },
      name: { type: 'string' },
      namespace: { type: 'string' },
      'grace-period': { type: 'string' },
      'plain-http': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const [reference, ...extra] = positionals;
  if (reference === undefined || extra.length > 0) {
    throw new UsageError(
      'Cannot make the manifest: expected one REF (donjon kube manifest host/repo:tag@sha256:…)',
    );
  }
  const need = (flag: string, value: string | undefined): string => {
    if (value === undefined)
      throw new UsageError(`Cannot make the manifest: --${flag} is required (see donjon help kube)`);
    return value;
  };
  const backend = need('backend', values.backend);
  if (!BACKENDS.includes(backend as KubeBackend)) {
    throw new UsageError(`Cannot use --backend ${backend}: a Pod runs sim or cvm`);
  }
  if (backend !== 'sim' && values['sim-root'] !== undefined) {
    throw new UsageError('Cannot use --sim-root: it is for --backend sim');
  }
  const configPath = need('config', values.config);
  const request: ManifestRequest = {
    reference,
    image: need('image', values.image),
    replicas: integer(need('replicas', values.replicas), '--replicas')!,
    backend: backend as KubeBackend,
    name: values.name,
    namespace: values.namespace,
    enarxToml: { text: readText(configPath, '--config'), source: configPath },
    verifyKeys: values['verify-key'].map((path) => ({ text: readText(path, '--verify-key'), source: path })),
    allowUnsigned: values['allow-unsigned'],
    plainHttp: values['plain-http'],
    gracePeriodSeconds: integer(values['grace-period'], '--grace-period') ?? DEFAULT_GRACE_SECONDS,
    simRoot: backend === 'sim' ? await simRootOf(values['sim-root']) : undefined,
  };
  const plan = planManifest(request);
  const objects = manifestObjects(plan);
  checkManifest(objects);
  if (plan.simRoot !== undefined) {
    process.stderr.write(
      `donjon: WARNING: this manifest holds a Secret with a SIMULATED root's PRIVATE KEY (${request.simRoot?.source}, fingerprint ${plan.simRoot.fingerprint}).\n` +
        'donjon: WARNING: anyone who can read that Secret can forge evidence that clients trusting this root accept. DEVELOPMENT ONLY: never give such a service real secrets.\n',
    );
  }
  if (request.allowUnsigned) {
    process.stderr.write(
      'donjon: WARNING: --allow-unsigned: the Pods will run REF without checking its signature\n',
    );
  }
  if (backend === 'cvm') {
    process.stderr.write(`donjon: note: cvm Pods are ${NOT_ON_HARDWARE}; see docs/kubernetes.md\n`);
  }
  process.stdout.write(formatManifest(objects, values.json));
  return EXIT.ok;
}

/** `donjon kube`: returns the exit status. */
export async function kubeCommand(argv: string[], invocation: Invocation): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === undefined) {
    process.stderr.write(`${kubeHelp}\n`);
    return EXIT.usage;
  }
  if (verb !== 'manifest') throw new UsageError(`Cannot run 'donjon kube ${verb}': use manifest`);
  return manifest(rest, invocation);
}
