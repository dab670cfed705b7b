/**
 * The Donjon client SDK: ask a host for a Keep, verify its evidence, deploy a workload inside the attested
 * channel and stream its output.
 */
export { type AttestedChannelOptions, openAttestedChannel } from './channel.ts';
export {
  checkSupportedFiles,
  DEFAULT_FILES,
  type FileEntry,
  parseEnarxToml,
  type WorkloadConfig,
} from './enarx-toml.ts';
export { ClientError, type ClientErrorCode, clientErrorCodes } from './errors.ts';
export {
  type HostTrust,
  type KeepEvents,
  type KeepInfo,
  KeepManagerClient,
  type KeepManagerClientOptions,
} from './keepmgr-client.ts';
export {
  type AttachOptions,
  attachWorkload,
  type RunEvent,
  type RunOptions,
  type RunOutcome,
  type RunResult,
  runWorkload,
  type StreamOptions,
} from './run.ts';
export { measureRuntime } from './runtime.ts';
