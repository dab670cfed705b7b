/**
 * The host's one door: everything the CLI (and the tests that drive the host as the CLI does) uses of the
 * host side — the Keep Manager and its options, its stores, its TLS identity and state-directory lock, the
 * platform probe, the simulated root, the collateral client, one Kubernetes replica (`KeepPod`) — is imported from here and nowhere else, so the
 * host's files can move without touching the CLI.
 */
export type { BackendName } from './backends/index.ts';
export * from './collateral/index.ts';
export { API_ERRORS, ApiError, type ApiErrorCode } from './errors.ts';
export {
  KEEPPOD_ERRORS,
  KeepPod,
  KeepPodError,
  type KeepPodErrorCode,
  type KeepPodOptions,
  type PodBackend,
} from './keep-pod/index.ts';
export { MAX_CONNECTIONS } from './keepmgr/api-server.ts';
export { KEEPMGR_ERRORS, KeepManagerError, type KeepManagerErrorCode } from './keepmgr/errors.ts';
export { certificateFingerprint, type HostIdentity, loadOrCreateHostIdentity } from './keepmgr/identity.ts';
export {
  API_ROUTES,
  KeepManager,
  type KeepManagerOptions,
  keepmgrChannel,
  type LocalKeepApi,
  type Quotas,
} from './keepmgr/keepmgr.ts';
export { LOCK_FILE, lockStateDir, type StateLock } from './keepmgr/lock.ts';
export {
  type KeepEventRecord,
  type KeepRecord,
  type KeepStore,
  MemoryStore,
  SqliteStore,
} from './keepmgr/store.ts';
export {
  type BackendStatus,
  DEFAULT_PLATFORM_PATHS,
  offeredBackends,
  type PlatformBackendName,
  type PlatformInfo,
  type PlatformPaths,
  type PlatformProbeOptions,
  platformInfo,
} from './platform.ts';
export {
  existingSimRootPath,
  loadOrCreateSimRoot,
  loadOrCreateSimSgxRoot,
  type StoredSimRoot,
  type StoredSimSgxRoot,
} from './simroot.ts';
export { TIMEOUTS, type TimeoutName } from './timeouts.ts';
