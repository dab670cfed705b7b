// node:tls for the Keep, loaded when first used instead of when the Keep starts. Loading it (Node compiles
// its TLS modules) is about 5 ms of a Keep's start, and a Keep needs it only once a channel opens: the Keep
// says it is ready first, and loads it while the client's hello is on its way.
import { createRequire } from 'node:module';

type Tls = typeof import('node:tls');

let loaded: Tls | undefined;

/** Node's TLS module, loaded on the first call. */
export function nodeTls(): Tls {
  loaded ??= createRequire(import.meta.url)('node:tls') as Tls;
  return loaded;
}
