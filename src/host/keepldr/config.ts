// What the Keep Manager tells a Keep Loader when it starts one: JSON in argv[2], declared once with the
// schema language of the protocol and decoded with it before anything is used.
import { decodeIpcJson } from '../../protocol/ipc.ts';
import { limitsSchema, publishSchema } from '../../protocol/messages.ts';
import { arrayOf, bool, type Infer, oneOf, optional, struct, tstr, uint } from '../../protocol/schema.ts';
import { ALL_BACKENDS } from '../backends/index.ts';

/** The Keep Manager's instructions to one Keep Loader (public values only). */
export const keepLoaderConfigSchema = struct({
  /** The Keep's id, as the Keep Manager records it. */
  id: tstr,
  /** The backend of the registry the Keep runs on. */
  backend: oneOf(...ALL_BACKENDS),
  /** The unix socket the Keep Manager watches, stops and opens channels on. */
  socketPath: tstr,
  /** The Keep runtime bundle (dist/keep.cjs): started, and measured, as it is. */
  runtimePath: tstr,
  /** `sim`: the host's simulated root. */
  simRootPath: optional(tstr),
  /** `sgx-sim`: the host's simulated Intel platform. */
  simSgxRootPath: optional(tstr),
  /**
   * Where the Keep's evidence comes from (the Keep's `evidenceSource`): 'gramine' has it make its own quote
   * through Gramine's attestation interface, at `attestationRoot` (default /dev/attestation).
   */
  evidenceSource: optional(oneOf('host', 'gramine')),
  attestationRoot: optional(tstr),
  /** The host's ceilings, passed to the Keep; a tenant's limits only lower them. */
  limits: limitsSchema,
  /** Largest workload module the Keep accepts, bytes. */
  maxWasmBytes: optional(uint),
  /**
   * `cvm`: the host's collateral cache, where the VCEK chain is fetched from AMD's KDS when the hypervisor
   * supplied no certificate table with a report.
   */
  collateralCacheDir: optional(tstr),
  /**
   * Where the host ports of the workload's listen files are bound: default the address each file names
   * (Enarx's default "::", every interface).
   */
  listenAddress: optional(tstr),
  /**
   * Which host port a listen file gets: 'prefer' (default, as Enarx) the port the file names when it is free,
   * else a free one the host picks; 'same' the port the file names or none; 'any' a free one the host picks.
   */
  hostPorts: optional(oneOf('prefer', 'same', 'any')),
  /** Host ports the tenant asked for by listen file name (`--publish NAME=HOSTPORT`; 0: any). */
  publish: optional(arrayOf(publishSchema)),
  /** Refuse the workload's connect files (outbound connections). Default: allowed. */
  denyConnect: optional(bool),
  /**
   * How a connection accepted on a listen file reaches the Keep: 'hand-off' (default) passes the socket itself
   * to the Keep process, which then owns it; 'relay' keeps it here and relays its bytes over the channel pipe.
   * Either way the Keep Loader never reads them.
   */
  connections: optional(oneOf('hand-off', 'relay')),
  /** Connections one listener has open at once, relayed or handed off; more are closed on arrival. */
  maxConnectionsPerListener: optional(uint),
  /**
   * Started by an embedded Keep Manager that holds the Keep Loader's stdin open for as long as it lives:
   * when stdin ends, the Keep is stopped.
   */
  attached: optional(bool),
});

/** The Keep Manager's instructions to one Keep Loader, as {@link keepLoaderConfigSchema} declares them. */
export type KeepLoaderConfig = Infer<typeof keepLoaderConfigSchema>;

/**
 * Decodes the configuration the Keep Manager passed as JSON text. Throws a ProtocolError
 * (`ERR_MESSAGE_INVALID`) naming the offending field.
 */
export function decodeKeepLoaderConfig(text: string): KeepLoaderConfig {
  return decodeIpcJson(keepLoaderConfigSchema, text, 'Keep Loader configuration');
}
