/** How the CLI reports a failure: docker's exit statuses and words (docs/cli.md has the table). */
import { CommanderError } from 'commander';
import { ExecStartError, isHullError, NoSuchInstanceError } from '../common/errors.js';

/**
 * The commands whose failures exit 125 (126/127 for the command), as docker's run and create: anything that goes
 * wrong before the instance's own process runs. Other commands exit 1 on a failure, as docker's do.
 */
const CREATING_COMMANDS = new Set(['run', 'create', 'container run', 'container create', 'vm create']);

/** commander's errors about an option (unknown, missing its value, a bad value): docker's flag errors, 125 */
const FLAG_ERRORS = new Set([
  'commander.unknownOption',
  'commander.optionMissingArgument',
  'commander.missingMandatoryOptionValue',
  'commander.conflictingOption',
]);

/**
 * docker's exit status for a failure of `command` (its path without "hull"; '' when parsing failed before one was
 * chosen): flag errors 125; missing or extra arguments and unknown commands 1; run/create 125 (126/127 for the
 * command); other commands 1, but exec's 126 for a command that cannot start and an interrupt's 128+n.
 */
export function exitStatus(e: unknown, command: string): number {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
    if (FLAG_ERRORS.has(e.code) || (e.code === 'commander.invalidArgument' && /\boption '/.test(e.message))) return 125;
    return 1;
  }
  const code = isHullError(e) ? e.exitCode : 125;
  if (CREATING_COMMANDS.has(command) || e instanceof ExecStartError) return code;
  // `start` of an instance whose command is missing: docker's start says so and exits 1
  return code >= 125 && code <= 127 ? 1 : code;
}

/** An error as the user sees it: one line; a missing instance in the docker CLI's words (scripts match them). */
export function errorLine(e: unknown): string {
  const msg = (e as Error).message ?? String(e);
  return e instanceof NoSuchInstanceError ? `Error: ${msg}` : msg;
}
