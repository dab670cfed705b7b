import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Invocation, parseArgsError, parseCommand } from '../../src/cli/args.ts';
import { UsageError } from '../../src/cli/errors.ts';

const options = {
  host: { type: 'string' },
  json: { type: 'boolean', default: false },
  quiet: { type: 'boolean', short: 'q', default: false },
  env: { type: 'string', multiple: true, default: [] as string[] },
} as const;

function refusal(argv: string[], positionals = true): string {
  try {
    parseCommand(argv, { command: 'run', options, positionals });
  } catch (error) {
    assert.ok(error instanceof UsageError, String(error));
    assert.equal(error.code, 'ERR_USAGE');
    assert.equal(error.category, 'usage');
    return error.message;
  }
  assert.fail(`parseCommand accepted ${argv.join(' ')}`);
}

describe('parseCommand()', () => {
  test('parseCommand() reads flags, short flags, repeated flags and positionals', () => {
    const { values, positionals } = parseCommand(
      ['-q', '--host=h', 'a.wasm', '--env', 'A=1', '--env', 'B=2'],
      {
        command: 'run',
        options,
        positionals: true,
      },
    );
    assert.deepEqual({ ...values }, { host: 'h', quiet: true, json: false, env: ['A=1', 'B=2'] });
    assert.deepEqual(positionals, ['a.wasm']);
  });

  test('parseCommand() names an unknown flag and the help to read, in one line', () => {
    assert.equal(
      refusal(['--frob', 'a.wasm']),
      'Cannot read the command line: unknown option --frob (see donjon help run)',
    );
    assert.equal(refusal(['-qx']), 'Cannot read the command line: unknown option -x (see donjon help run)');
  });

  test('parseCommand() names a flag without its value, a boolean given one, and an unexpected argument', () => {
    assert.match(
      refusal(['--host']),
      /^Cannot read the command line: option --host needs a value \(see donjon help run\)$/,
    );
    assert.match(
      refusal(['--host', '--json', 'a.wasm']),
      /option --host needs a value, not --json .*--host=VALUE/,
    );
    assert.match(refusal(['--json=yes']), /option --json takes no value/);
    assert.match(refusal(['extra'], false), /unexpected argument 'extra' \(see donjon help run\)$/);
    assert.doesNotMatch(refusal(['--frob']), /positional|\n/);
  });

  test('parseCommand() tells the invocation about --json before --, never after it', () => {
    const before: Invocation = { json: false };
    parseCommand(['--json', 'a.wasm', '--', 'x'], {
      command: 'run',
      options,
      positionals: true,
      invocation: before,
    });
    assert.equal(before.json, true);
    const after: Invocation = { json: false };
    const { values, positionals } = parseCommand(['a.wasm', '--', '--json'], {
      command: 'run',
      options,
      positionals: true,
      invocation: after,
    });
    assert.equal(after.json, false);
    assert.equal(values.json, false);
    assert.deepEqual(positionals, ['a.wasm', '--json']);
  });

  test('parseCommand() knows --json even when another flag is wrong, so the mistake is reported as JSON', () => {
    const invocation: Invocation = { json: false };
    assert.throws(
      () => parseCommand(['--json', '--frob'], { command: 'run', options, positionals: true, invocation }),
      UsageError,
    );
    assert.equal(invocation.json, true);
  });
});

describe('parseArgsError()', () => {
  test("parseArgsError() makes Node's parseArgs refusal one usage line, and leaves other errors alone", async () => {
    const { parseArgs } = await import('node:util');
    let nodeError: unknown;
    try {
      parseArgs({ args: ['--frob'], options: {}, strict: true });
    } catch (error) {
      nodeError = error;
    }
    const usage = parseArgsError(nodeError, 'host');
    assert.ok(usage instanceof UsageError);
    assert.equal(
      usage.message,
      "Cannot read the command line: unknown option '--frob' (see donjon help host)",
    );
    assert.equal(usage.cause, nodeError);
    assert.equal(parseArgsError(new Error('other'), 'host'), undefined);
    assert.equal(parseArgsError(undefined, 'host'), undefined);
  });
});
