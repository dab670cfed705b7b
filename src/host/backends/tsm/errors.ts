import { type CodeRegistry, DonjonError } from '../../../lib/errors.ts';

/**
 * Stable codes of the configfs-tsm client (the `cvm` backend's evidence source; all `host`: the platform could not give evidence). A caller can
 * `switch (err.code)` and narrow on them; the codes are part of the contract and never change meaning.
 */
export const TSM_ERRORS = {
  /** The configfs-tsm report directory is missing: no configfs, or a kernel without TSM reports. */
  ERR_TSM_UNAVAILABLE: 'host',
  /** configfs-tsm is there but no TSM provider (sev_guest, tdx_guest) has registered (ENXIO). */
  ERR_TSM_NO_PROVIDER: 'host',
  /** The provider is not one whose evidence this backend can hand over. */
  ERR_TSM_PROVIDER_UNSUPPORTED: 'host',
  /** The process may not create report directories (EACCES, EPERM): configfs-tsm needs root. */
  ERR_TSM_PERMISSION: 'host',
  /** The kernel or the host reported busy (EBUSY, EAGAIN). */
  ERR_TSM_BUSY: 'host',
  /** The kernel refused the request's parameters (EINVAL), e.g. a privilege level below the floor. */
  ERR_TSM_INVALID: 'host',
  /** The guest request to the secure processor timed out (ETIMEDOUT). */
  ERR_TSM_TIMEOUT: 'host',
  /** The request was interrupted by a signal (EINTR). */
  ERR_TSM_INTERRUPTED: 'host',
  /** Any other failure of the request (EIO from a failed guest request, a short write, ...). */
  ERR_TSM_IO: 'host',
  /** The report directory's generation moved under us: another writer, or a write the kernel did not take. */
  ERR_TSM_INTERFERENCE: 'host',
  /** The outblob is not a well-formed report or quote of the provider's kind. */
  ERR_TSM_OUTBLOB_MALFORMED: 'host',
  /** The outblob binds another report_data (or privilege level) than the one requested. */
  ERR_TSM_REPORT_DATA_MISMATCH: 'host',
  /** The auxblob is not a well-formed SEV-SNP certificate table. */
  ERR_TSM_AUXBLOB_MALFORMED: 'host',
  /** A privilege level was asked for but the provider has none, or it is below the provider's floor. */
  ERR_TSM_PRIVLEVEL: 'host',
} as const satisfies CodeRegistry;

/** A code of {@link TSM_ERRORS}. */
export type TsmErrorCode = keyof typeof TSM_ERRORS;

/** Every code of {@link TsmErrorCode}, for registries and exhaustiveness tests. */
export const tsmErrorCodes = Object.keys(TSM_ERRORS) as readonly TsmErrorCode[];

/**
 * The one error class of the configfs-tsm client. `errno` carries the system error code (`EBUSY`, ...) when
 * the failure came from the kernel, so an operator can tell a busy host from a refused request.
 */
export class TsmError extends DonjonError<TsmErrorCode> {
  override readonly name = 'TsmError';
  declare readonly errno?: string;

  constructor(
    code: TsmErrorCode,
    message: string,
    options?: { cause?: unknown; detail?: string; errno?: string },
  ) {
    super(code, TSM_ERRORS[code], message, options);
    if (options?.errno !== undefined) this.errno = options.errno;
  }
}

/** Whether `value` is a {@link TsmError}, optionally with the given code. */
export function isTsmError(value: unknown, code?: TsmErrorCode): value is TsmError {
  return value instanceof TsmError && (code === undefined || value.code === code);
}

const BY_ERRNO: Readonly<Record<string, TsmErrorCode>> = {
  ENOENT: 'ERR_TSM_UNAVAILABLE',
  ENXIO: 'ERR_TSM_NO_PROVIDER',
  EACCES: 'ERR_TSM_PERMISSION',
  EPERM: 'ERR_TSM_PERMISSION',
  EROFS: 'ERR_TSM_PERMISSION',
  EBUSY: 'ERR_TSM_BUSY',
  EAGAIN: 'ERR_TSM_BUSY',
  EINVAL: 'ERR_TSM_INVALID',
  ETIMEDOUT: 'ERR_TSM_TIMEOUT',
  EINTR: 'ERR_TSM_INTERRUPTED',
};

/** The errno string of a system error, if it is one. */
export function errnoOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** A system error from a configfs-tsm operation as a {@link TsmError}: `Cannot <action>: <errno>`. */
export function fromSystemError(action: string, error: unknown): TsmError {
  if (error instanceof TsmError) return error;
  const errno = errnoOf(error);
  const code = (errno !== undefined ? BY_ERRNO[errno] : undefined) ?? 'ERR_TSM_IO';
  const state = errno ?? (error instanceof Error ? error.message : String(error));
  return new TsmError(
    code,
    `Cannot ${action}: ${state}`,
    errno === undefined ? { cause: error } : { cause: error, errno },
  );
}
