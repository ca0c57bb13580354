/** The CLI's exit statuses (src/cli/errors.ts): docker's, for each kind of failure and command. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommanderError } from 'commander';
import { errorLine, exitStatus } from '../../src/cli/errors.js';
import {
  CommandNotExecutableError,
  CommandNotFoundError,
  ExecStartError,
  InterruptedError,
  InvalidArgumentError,
  NoSuchInstanceError,
  NotATtyError,
  StateError,
} from '../../src/common/errors.js';

const commander = (code: string, message = '') => new CommanderError(1, code, message);

test('flag errors are 125 for every command; usage errors about arguments and commands are 1', () => {
  for (const cmd of ['', 'run', 'ps', 'container ls']) {
    assert.equal(exitStatus(commander('commander.unknownOption'), cmd), 125);
    assert.equal(exitStatus(commander('commander.optionMissingArgument'), cmd), 125);
    assert.equal(
      exitStatus(commander('commander.invalidArgument', "error: option '--x <y>' argument 'z' is invalid."), cmd),
      125,
    );
    assert.equal(exitStatus(commander('commander.missingArgument'), cmd), 1);
    assert.equal(exitStatus(commander('commander.excessArguments'), cmd), 1);
    assert.equal(exitStatus(commander('commander.unknownCommand'), cmd), 1);
    assert.equal(exitStatus(commander('commander.helpDisplayed'), cmd), 0);
  }
});

test('run and create keep 125/126/127; other commands fail with 1', () => {
  for (const cmd of ['run', 'create', 'container run', 'container create', 'vm create']) {
    assert.equal(exitStatus(new InvalidArgumentError('x'), cmd), 125);
    assert.equal(exitStatus(new CommandNotFoundError('x'), cmd), 127);
    assert.equal(exitStatus(new CommandNotExecutableError('x'), cmd), 126);
    assert.equal(exitStatus(new Error('unexpected'), cmd), 125);
  }
  for (const cmd of ['rm', 'stop', 'container rm', 'image rm', 'pull', 'network create', 'start']) {
    assert.equal(exitStatus(new NoSuchInstanceError('ghost'), cmd), 1);
    assert.equal(exitStatus(new StateError('x'), cmd), 1);
    assert.equal(exitStatus(new CommandNotFoundError('x'), cmd), 1);
    assert.equal(exitStatus(new Error('unexpected'), cmd), 1);
  }
});

test("exec's failure to start is 126; not a TTY is 1 everywhere; an interrupt is 128+n", () => {
  assert.equal(exitStatus(new ExecStartError('not-found', 'nope'), 'exec'), 126);
  assert.equal(exitStatus(new ExecStartError('not-executable', '/etc'), 'container exec'), 126);
  assert.equal(exitStatus(new NotATtyError(), 'run'), 1);
  assert.equal(exitStatus(new NotATtyError(), 'exec'), 1);
  assert.equal(exitStatus(new InterruptedError('x'), 'pull'), 130);
});

test("docker's words", () => {
  assert.equal(errorLine(new NoSuchInstanceError('ghost')), 'Error: No such container: ghost');
  assert.equal(
    new ExecStartError('not-found', 'nope').message,
    'OCI runtime exec failed: exec failed: unable to start container process: exec: "nope": executable file not found in $PATH: unknown',
  );
  assert.match(
    new ExecStartError('not-found', '/a/b').message,
    /exec: "\/a\/b": stat \/a\/b: no such file or directory: unknown$/,
  );
  assert.match(new ExecStartError('not-executable', '/etc').message, /exec: "\/etc": permission denied: unknown$/);
});
