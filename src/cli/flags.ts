// The flag tables commands share, in a module that loads nothing else: `run` reads its flags, and starts its
// embedded host, before it loads the client.

/** The options every command that talks to a remote Keep Manager takes. */
export const remoteOptions = {
  host: { type: 'string' },
  token: { type: 'string' },
  'host-fingerprint': { type: 'string' },
} as const;

/** Flags that reach a registry. */
export const registryOptions = {
  'plain-http': { type: 'boolean', default: false },
  'registry-auth': { type: 'string' },
} as const;

/** Flags of `run` and `deploy` for a WORKLOAD that is a reference. */
export const pullOptions = {
  ...registryOptions,
  'verify-key': { type: 'string', multiple: true, default: [] as string[] },
  'allow-unsigned': { type: 'boolean', default: false },
} as const;

/** Help lines for {@link pullOptions}, in the house layout. */
export const pullHelp = `  --verify-key KEY          WORKLOAD is a registry reference: accept its cosign signature by this PEM
                            public key (repeatable); without one, it is refused (exit 3)
  --allow-unsigned          run a referenced workload without a valid signature
  --plain-http              speak plain HTTP to a registry that is not on loopback
  --registry-auth USER:PASS registry credentials (default: ~/.docker/config.json)`;

/** The flags `run` and `deploy` share: what to run, where, under which limits and which trust. */
export const workloadOptions = {
  backend: { type: 'string', default: 'sim' },
  insecure: { type: 'boolean', default: false },
  ...remoteOptions,
  'trust-sim-root': { type: 'string', multiple: true, default: [] as string[] },
  'expect-measurement': { type: 'string', multiple: true, default: [] as string[] },
  config: { type: 'string' },
  // Enarx's name for --config (enarx run --wasmcfgfile).
  wasmcfgfile: { type: 'string' },
  env: { type: 'string', multiple: true, default: [] as string[] },
  dir: { type: 'string', multiple: true, default: [] as string[] },
  memory: { type: 'string' },
  timeout: { type: 'string' },
  'max-output': { type: 'string' },
  'wasm-tier': { type: 'string' },
  publish: { type: 'string', multiple: true, default: [] as string[] },
  ...pullOptions,
  quiet: { type: 'boolean', short: 'q', default: false },
  json: { type: 'boolean', default: false },
} as const;
