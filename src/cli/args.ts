/**
 * Reading a command's flags. Node's `parseArgs` does the parsing; what it would say about a mistake (a
 * paragraph naming `--` and positional arguments) is replaced here by one line that names the flag and
 * `donjon help COMMAND`, found from parseArgs' own tokens rather than from its message text.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { UsageError } from './errors.ts';

/**
 * What the donjon command and the command it runs share about one invocation: whether the command's own
 * flags (those before `--`, never a workload's arguments after it) asked for JSON, which decides how an
 * error is reported.
 */
export interface Invocation {
  json: boolean;
  /**
   * Set by a command that leaves only children which end by themselves once this process is gone (the
   * attached Keep Loaders of an embedded host): the process exits as soon as its output is flushed, instead of
   * waiting for them to wind down.
   */
  exitWhenDone?: boolean;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** What {@link parseCommand} needs besides the arguments. */
export interface CommandSyntax<O extends Options, P extends boolean> {
  /** The command as `donjon help` knows it (`run`, `keeps`, `attest`, ...). */
  command: string;
  options: O;
  /** Whether the command takes positional arguments (a workload, a Keep id, ...). */
  positionals?: P;
  /** Told whether `--json` was given, before any mistake is reported. */
  invocation?: Invocation | undefined;
}

/**
 * Parses `argv` against a command's options (strictly); a mistake is a {@link UsageError} such as "Cannot
 * read the command line: unknown option --frob (see donjon help run)".
 */
export function parseCommand<O extends Options, P extends boolean = false>(
  argv: string[],
  syntax: CommandSyntax<O, P>,
) {
  const { command, options, invocation } = syntax;
  const allowPositionals = syntax.positionals ?? false;
  const wrong = (what: string): UsageError => commandLineError(command, what);
  // Lenient first, for the tokens: they say which flag is wrong, and whether --json came before `--`.
  const { tokens } = parseArgs({ args: argv, options, allowPositionals: true, strict: false, tokens: true });
  if (invocation && 'json' in options) {
    invocation.json = tokens.some((t) => t.kind === 'option' && t.name === 'json');
  }
  for (const token of tokens) {
    if (token.kind === 'positional') {
      if (!allowPositionals) throw wrong(`unexpected argument '${token.value}'`);
      continue;
    }
    if (token.kind !== 'option') continue;
    const option = options[token.name];
    if (option === undefined) throw wrong(`unknown option ${token.rawName}`);
    if (option.type === 'boolean' && token.inlineValue) {
      throw wrong(`option ${token.rawName} takes no value`);
    }
    if (option.type === 'string') {
      if (token.value === undefined) throw wrong(`option ${token.rawName} needs a value`);
      if (!token.inlineValue && token.value.startsWith('-')) {
        throw wrong(
          `option ${token.rawName} needs a value, not ${token.value} (for a value starting with '-', write ${token.rawName}=VALUE)`,
        );
      }
    }
  }
  try {
    return parseArgs({ args: argv, options, allowPositionals: allowPositionals as P, strict: true });
  } catch (error) {
    // The checks above should leave nothing for the strict parse to refuse.
    throw parseArgsError(error, command) ?? error;
  }
}

/** The one line a mistake on `donjon COMMAND`'s command line is reported as. */
export function commandLineError(command: string, what: string, cause?: unknown): UsageError {
  return new UsageError(
    `Cannot read the command line: ${what} (see donjon help ${command})`,
    cause === undefined ? {} : { cause },
  );
}

/**
 * For a command that reads its flags with parseArgs itself: Node's refusal (`ERR_PARSE_ARGS_*`) as one
 * line, its first sentence; anything else `undefined`.
 */
export function parseArgsError(error: unknown, command: string): UsageError | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS')) return undefined;
  const first = (error as Error).message.split(/\.(?: |$)/)[0] ?? '';
  return commandLineError(command, first.charAt(0).toLowerCase() + first.slice(1), error);
}
