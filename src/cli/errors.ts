/** Exit statuses of the donjon command, beside a workload's own status which `run` passes through. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  refused: 3,
  host: 4,
  timeLimit: 124,
  trap: 134,
  limit: 137,
  interrupted: 130,
} as const;

/** A mistake in how the command was called: shown as one line, with exit status 2. */
export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
  override name = 'UsageError';
}

/** A failure the command already explained: carries the exit status to end with. */
export class CommandError extends Error {
  readonly code: string;
  readonly exitCode: number;
  constructor(code: string, message: string, exitCode: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CommandError';
    this.code = code;
    this.exitCode = exitCode;
  }
}
