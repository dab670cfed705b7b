import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AttestationError } from '../../src/attestation/errors.ts';
import { CliError, CommandError, EXIT, exitStatusOf, hostCodeOf, UsageError } from '../../src/cli/errors.ts';
import { ClientError } from '../../src/client/errors.ts';
import { refusalCategory } from '../../src/client/keepmgr-client.ts';
import { CollateralError } from '../../src/host/collateral/errors.ts';
import { RatlsError } from '../../src/ratls/errors.ts';

test('exitStatusOf() ends a refusal of what donjon verifies with 3, whichever area said no', () => {
  assert.equal(
    exitStatusOf(new ClientError('ERR_HOST_UNTRUSTED', 'Cannot trust the host at x: y')),
    EXIT.refused,
  );
  assert.equal(exitStatusOf(new AttestationError('ERR_SIGNATURE_INVALID', 'Cannot verify: x')), EXIT.refused);
  assert.equal(
    exitStatusOf(new RatlsError('ERR_KEEP_NOT_ATTESTED', 'Cannot trust a nil Keep: x')),
    EXIT.refused,
  );
});

test('exitStatusOf() ends a host that failed or refused with 4, and a request the host found wrong with 2', () => {
  const refused = (hostCode: string): ClientError =>
    new ClientError('ERR_HOST_REFUSED', `The host refused: x (${hostCode})`, {
      hostCode,
      category: refusalCategory(hostCode),
    });
  assert.equal(
    exitStatusOf(new ClientError('ERR_HOST_UNREACHABLE', 'Cannot reach the host at x: y')),
    EXIT.host,
  );
  assert.equal(exitStatusOf(refused('ERR_API_UNAUTHORIZED')), EXIT.host);
  assert.equal(exitStatusOf(refused('ERR_API_QUOTA_EXCEEDED')), EXIT.host);
  assert.equal(exitStatusOf(refused('ERR_KEEP_START_FAILED')), EXIT.host);
  assert.equal(exitStatusOf(refused('ERR_KEEP_NOT_FOUND')), EXIT.usage);
  assert.equal(exitStatusOf(refused('ERR_API_LIMIT_EXCEEDED')), EXIT.usage);
  // A code this client does not know is the host's answer, not the caller's mistake.
  assert.equal(exitStatusOf(refused('ERR_SOMETHING_NEW')), EXIT.host);
  assert.equal(
    exitStatusOf(new ClientError('ERR_KEEP_DIED', 'The Keep died before the workload finished')),
    EXIT.host,
  );
  assert.equal(
    exitStatusOf(new CollateralError('ERR_COLLATERAL_FETCH_FAILED', 'Cannot fetch x: y')),
    EXIT.host,
  );
});

test('exitStatusOf() ends usage mistakes with 2, an interruption with 130, and anything else with 1', () => {
  assert.equal(exitStatusOf(new UsageError('Cannot read --memory x: expected a size')), EXIT.usage);
  assert.equal(
    exitStatusOf(new ClientError('ERR_CONFIG_INVALID', 'Cannot use the Enarx.toml: x')),
    EXIT.usage,
  );
  assert.equal(
    exitStatusOf(new CliError('ERR_INTERRUPTED', 'Interrupted: the Keep was stopped')),
    EXIT.interrupted,
  );
  assert.equal(exitStatusOf(new TypeError('a bug')), EXIT.internal);
  assert.equal(exitStatusOf('thrown text'), EXIT.internal);
  assert.equal(exitStatusOf(new CliError('ERR_INTERNAL', 'a bug')), EXIT.internal);
});

test('CommandError.rephrase() keeps the code, the category and the host code of what it words anew', () => {
  const cause = new ClientError('ERR_KEEP_REFUSED', 'The Keep refused: too large', {
    hostCode: 'ERR_DEPLOY_TOO_LARGE',
  });
  const e = CommandError.rephrase(cause, 'Cannot deploy: the Keep refused');
  assert.equal(e.code, 'ERR_KEEP_REFUSED');
  assert.equal(e.category, 'host');
  assert.equal(e.hostCode, 'ERR_DEPLOY_TOO_LARGE');
  assert.equal(e.cause, cause);
  assert.equal(e.detail, 'the Keep refused');
  assert.equal(exitStatusOf(CommandError.rephrase(new TypeError('x'), 'y')), EXIT.internal);
});

test('hostCodeOf() finds the host code along the causes, and stops at a cycle', () => {
  const inner = new ClientError('ERR_HOST_REFUSED', 'm', { hostCode: 'ERR_KEEP_NOT_FOUND' });
  assert.equal(hostCodeOf(new Error('outer', { cause: inner })), 'ERR_KEEP_NOT_FOUND');
  assert.equal(hostCodeOf(new Error('none')), undefined);
  const a = new Error('a');
  const b = new Error('b', { cause: a });
  (a as { cause?: unknown }).cause = b;
  assert.equal(hostCodeOf(a), undefined);
});
