// `donjon keep-pod`: one service replica as a Kubernetes container runs it. See pod.ts.
export { KEEPPOD_ERRORS, KeepPodError, type KeepPodErrorCode, keepPodErrorCodes } from './errors.ts';
export { KeepPod, type KeepPodOptions, type PodBackend, type PodIdentity, type PodState } from './pod.ts';
