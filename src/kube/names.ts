// Kubernetes' name rules, as its API server applies them (k8s.io/apimachinery/pkg/util/validation), for the
// few kinds of name the generated objects carry.
import { KubeError } from './errors.ts';

/** RFC 1123 label: what a Namespace name must be. */
const DNS1123_LABEL = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;
/** RFC 1035 label: what a Service name must be (so NAME, which names the Service too). */
const DNS1035_LABEL = /^[a-z](?:[-a-z0-9]*[a-z0-9])?$/;
/** Most characters of a label. */
export const MAX_LABEL = 63;
/** Most characters of NAME: the longest object name made from it, `NAME-sim-root`, stays a label. */
export const MAX_NAME = MAX_LABEL - '-sim-root'.length;

/** Whether `text` is an RFC 1123 label (lower-case letters, digits and `-`, at most 63). */
export function isDns1123Label(text: string): boolean {
  return text.length <= MAX_LABEL && DNS1123_LABEL.test(text);
}

/** Whether `text` is an RFC 1035 label (an RFC 1123 label that starts with a letter). */
export function isDns1035Label(text: string): boolean {
  return text.length <= MAX_LABEL && DNS1035_LABEL.test(text);
}

/**
 * Whether `text` may name a container or Service port (IANA_SVC_NAME): at most 15 lower-case letters,
 * digits and `-`, at least one letter, no `-` at either end or twice in a row.
 */
export function isPortName(text: string): boolean {
  return (
    text.length >= 1 &&
    text.length <= 15 &&
    /^[a-z0-9-]+$/.test(text) &&
    /[a-z]/.test(text) &&
    !text.startsWith('-') &&
    !text.endsWith('-') &&
    !text.includes('--')
  );
}

/** Checks `--name`: it names the Deployment, the Service and the objects beside them. */
export function checkName(name: string): string {
  if (!isDns1035Label(name) || name.length > MAX_NAME) {
    throw new KubeError(
      'ERR_KUBE_NAME_INVALID',
      `Cannot use the name ${JSON.stringify(name)}: it names a Service, so it must be an RFC 1035 label (a lower-case letter, then lower-case letters, digits or '-', not ending in '-'), of at most ${MAX_NAME} characters (NAME-sim-root must be a label too)`,
    );
  }
  return name;
}

/** Checks `--namespace`. */
export function checkNamespace(namespace: string): string {
  if (!isDns1123Label(namespace)) {
    throw new KubeError(
      'ERR_KUBE_NAME_INVALID',
      `Cannot use the namespace ${JSON.stringify(namespace)}: not an RFC 1123 label (lower-case letters, digits or '-', starting and ending with a letter or digit, at most ${MAX_LABEL})`,
    );
  }
  return namespace;
}

/**
 * The default name of a service: the last path segment of its repository, made an RFC 1035 label
 * (lower-cased, anything else than letters and digits turned into '-', a leading digit prefixed with `keep-`,
 * cut to {@link MAX_NAME}). `team/http-server` → `http-server`; `x/2048` → `keep-2048`.
 */
export function defaultName(repository: string): string {
  const last = repository.slice(repository.lastIndexOf('/') + 1);
  let name = last
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (name === '') name = 'keep';
  if (!/^[a-z]/.test(name)) name = `keep-${name}`;
  return checkName(name.slice(0, MAX_NAME).replace(/-+$/, ''));
}
