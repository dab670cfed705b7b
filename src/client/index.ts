/**
 * The Donjon client SDK: ask a host for a Keep, verify its evidence, deploy a workload inside the attested
 * channel and stream its output.
 */
export { type AttestedChannelOptions, openAttestedChannel } from './channel.ts';
export {
  DEFAULT_DIR_MAX_BYTES,
  DEFAULT_DIR_MAX_ENTRIES,
  type DirLimits,
  readHostDirectory,
} from './dirs.ts';
export {
  checkSupportedFiles,
  DEFAULT_FILES,
  type FileEntry,
  parseEnarxToml,
  type WorkloadConfig,
} from './enarx-toml.ts';
export { ClientError, type ClientErrorCode, clientErrorCodes } from './errors.ts';
export { type HelloSent, sendChannelHello } from './hello.ts';
export {
  type HostTrust,
  hostRefusal,
  type KeepEvents,
  type KeepHost,
  type KeepInfo,
  KeepManagerClient,
  type KeepManagerClientOptions,
} from './keepmgr-client.ts';
export { checkWorkloadModule } from './module-check.ts';
export {
  type AttachOptions,
  type AttachResult,
  attachWorkload,
  type DeployOptions,
  type DeployResult,
  deployWorkload,
  type RunEvent,
  type RunOptions,
  type RunOutcome,
  type RunResult,
  runWorkload,
  type StreamOptions,
  type WorkloadOptions,
  workloadConfigDigest,
} from './run.ts';
export { measureRuntime, measureSgxRuntime } from './runtime.ts';
export {
  type ConnectServiceOptions,
  connectService,
  inspectService,
  type ServiceConnection,
  type ServicePolicy,
  type ServiceReport,
  signerDigest,
} from './service.ts';
export { optimizingCostMs, type Tier, type TierChoice, TierHistory, TRY_FACTOR } from './tiers.ts';
