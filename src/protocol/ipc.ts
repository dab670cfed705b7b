import { ProtocolError } from './errors.ts';
import { limitsSchema } from './messages.ts';
import { checkValue, type Infer, oneOf, optional, type Schema, struct, tstr, uint } from './schema.ts';

// The values that cross the boundary between a Keep Loader and its Keep, declared once with the schema
// language of the messages: the Keep's configuration (argv), the LISTEN and CONNECT requests of the channel
// pipe's mux, and the connection hand-off on the IPC channel. Each side decodes what it receives with
// `decodeIpc`: nothing from the other process is used before it has been checked.

/** What the Keep Loader tells a Keep when it starts it (public values only), as JSON in argv[2]. */
export const keepConfigSchema = struct({
  /** The host's ceilings; the tenant's own limits may only lower them. */
  limits: limitsSchema,
  /** Largest workload module accepted, bytes. */
  maxWasmBytes: optional(uint),
  /**
   * Where the Keep's evidence comes from: 'host' (default) asks the Keep Loader; 'gramine' makes the quote
   * inside the enclave through Gramine's attestation interface and asks the host only for its collateral.
   */
  evidenceSource: optional(oneOf('host', 'gramine')),
  /** 'gramine': where the attestation interface is (default /dev/attestation). */
  attestationRoot: optional(tstr),
});
export type KeepConfig = Infer<typeof keepConfigSchema>;

/** A mux LISTEN request: bind a host port for the listen file `name` (port 0: any). */
export const listenRequestSchema = struct({ name: tstr, port: uint, addr: tstr });
export type ListenRequest = Infer<typeof listenRequestSchema>;

/** A mux CONNECT request: open an outbound connection for a connect file. */
export const connectRequestSchema = struct({ host: tstr, port: uint });
export type ConnectRequest = Infer<typeof connectRequestSchema>;

/** Keep Loader → Keep on the IPC channel, with a socket handle: a connection accepted on a listener. */
export const handOffAcceptSchema = struct({ t: oneOf('accept'), listener: uint, id: uint });
export type HandOffAccept = Infer<typeof handOffAcceptSchema>;

/** Keep → Keep Loader on the IPC channel: a handed-over connection closed. */
export const handOffClosedSchema = struct({ t: oneOf('closed'), id: uint });
export type HandOffClosed = Infer<typeof handOffClosedSchema>;

/**
 * Checks a value received from the other process against its schema and returns a fresh copy holding only
 * what the schema declares. Throws ERR_MESSAGE_INVALID naming `what` and the offending path.
 */
export function decodeIpc<S extends Schema>(schema: S, value: unknown, what: string): Infer<S> {
  return checkValue({ action: 'decode', type: what }, '', value, schema) as Infer<S>;
}

/** Like {@link decodeIpc}, for JSON text (the Keep's configuration in argv). */
export function decodeIpcJson<S extends Schema>(schema: S, text: string, what: string): Infer<S> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new ProtocolError('ERR_MESSAGE_INVALID', `Cannot decode ${what}: it is not JSON`, { cause });
  }
  return decodeIpc(schema, value, what);
}
