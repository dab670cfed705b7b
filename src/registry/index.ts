/**
 * OCI registries: references, a distribution client, the CNCF Wasm artifact layout, cosign-format
 * signatures and keys. Used by the client (pull before a run, push and sign) and, later, by the host.
 */
export * from './artifact.ts';
export * from './auth.ts';
export * from './client.ts';
export * from './digest.ts';
export * from './errors.ts';
export * from './keys.ts';
export * from './reference.ts';
export * from './signature.ts';
export * from './workload.ts';
