/**
 * hull's error classes. Each carries a stable `code` string (undici's habit) so that
 * callers, tests and the future REST API can branch on it, and an exit status that the
 * CLI uses (docker's convention: 125 for hull's own errors, 126 not executable, 127 not found; the CLI turns
 * 125 into 1 outside run/create, as docker's commands do: cli/errors.ts).
 * Messages name what failed and, where there is one, what to do about it.
 */
export class HullError extends Error {
  readonly code: string = 'HULL_ERROR';
  readonly exitCode: number = 125;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad user input: a malformed flag, size, name or reference. */
export class InvalidArgumentError extends HullError {
  override readonly code: string = 'HULL_INVALID_ARGUMENT';
}

/** Something named by the user does not exist (image, instance, network, file). */
export class NotFoundError extends HullError {
  override readonly code: string = 'HULL_NOT_FOUND';
}

/**
 * No instance has this name or id. The message is dockerd's ("No such container: X"); the CLI prints it as the
 * docker CLI does ("Error: No such container: X"), which scripts match.
 */
export class NoSuchInstanceError extends NotFoundError {
  constructor(ref: string) {
    super(`No such container: ${ref}`);
  }
}

/** A name or resource is already taken. */
export class ConflictError extends HullError {
  override readonly code: string = 'HULL_CONFLICT';
}

/** The operation is not allowed in the instance's current state (e.g. exec into a stopped container). */
export class StateError extends HullError {
  override readonly code: string = 'HULL_INVALID_STATE';
}

/** A host program (runc, conmon, mount, ...) failed. */
export class HostCommandError extends HullError {
  override readonly code: string = 'HULL_HOST_COMMAND';
  constructor(
    readonly program: string,
    readonly args: readonly string[],
    readonly status: number | null,
    readonly stderr: string,
    hint?: string,
  ) {
    const detail = stderr.trim().split('\n').filter(Boolean).slice(-3).join('; ');
    super(
      `${program} ${args[0] ?? ''} failed${status !== null ? ` (exit ${status})` : ''}${detail ? `: ${detail}` : ''}${hint ? `. ${hint}` : ''}`,
    );
  }
}

/** The host lacks something hull needs (a program, a kernel feature). */
export class HostSupportError extends HullError {
  override readonly code: string = 'HULL_HOST_UNSUPPORTED';
}

/** A VM's QEMU guest agent refused a command or did not answer in time. */
export class GuestAgentError extends HullError {
  override readonly code: string = 'HULL_GUEST_AGENT';
}

/** The container's command could not be executed (docker exit 126). */
export class CommandNotExecutableError extends HullError {
  override readonly code: string = 'HULL_CMD_NOT_EXECUTABLE';
  override readonly exitCode = 126;
}

/** The container's command was not found (docker exit 127). */
export class CommandNotFoundError extends HullError {
  override readonly code: string = 'HULL_CMD_NOT_FOUND';
  override readonly exitCode = 127;
}

/**
 * `exec` could not start its command (not found, not executable): exit status 126 for both, as docker's exec
 * (a `run` whose command is missing stays 127). The message is the one docker prints, which scripts match:
 * `OCI runtime exec failed: exec failed: unable to start container process: exec: "nope": executable file not
 * found in $PATH: unknown`. `why` replaces "permission denied" for a command that is there but cannot run.
 */
export class ExecStartError extends HullError {
  override readonly code: string = 'HULL_EXEC_START';
  override readonly exitCode = 126;
  constructor(
    readonly reason: 'not-found' | 'not-executable',
    command: string,
    options?: { cause?: unknown; why?: string },
  ) {
    const what =
      reason === 'not-executable'
        ? `exec: "${command}": ${options?.why ?? 'permission denied'}`
        : command.includes('/')
          ? `exec: "${command}": stat ${command}: no such file or directory`
          : `exec: "${command}": executable file not found in $PATH`;
    super(`OCI runtime exec failed: exec failed: unable to start container process: ${what}: unknown`, options);
  }
}

/** `-t` with `-i` when stdin is not a terminal: exit status 1, as docker's "the input device is not a TTY". */
export class NotATtyError extends InvalidArgumentError {
  override readonly exitCode = 1;
  constructor() {
    super('the input device is not a TTY: drop -t, or run hull from a terminal');
  }
}

/** Stored data failed a check (digest mismatch, corrupt record). */
export class IntegrityError extends HullError {
  override readonly code: string = 'HULL_INTEGRITY';
}

export function isHullError(e: unknown): e is HullError {
  return e instanceof HullError;
}

/** A registry could not be reached, refused a request, or answered something hull cannot use. */
export class RegistryError extends HullError {
  override readonly code: string = 'HULL_REGISTRY';
}

/** A registry refused the credentials (or asked for some and none were given). */
export class AuthenticationError extends HullError {
  override readonly code: string = 'HULL_UNAUTHORIZED';
}

/**
 * The root holds instances (directories, supervisors, mounts) that the state database does not record: hull.db
 * was lost, emptied or replaced. Commands refuse to act as if the root were empty; `hull system recover` helps.
 */
export class StateLostError extends HullError {
  override readonly code: string = 'HULL_STATE_LOST';
}

/** The state database cannot be read (not a database, truncated, damaged); `hull system recover` helps. */
export class StateCorruptError extends HullError {
  override readonly code: string = 'HULL_STATE_CORRUPT';
}

/**
 * A local file system refused a write hull needed (no space, quota, read-only, I/O error, permission):
 * not the network's fault and not worth a retry. `errno` is the system's code (ENOSPC, ...).
 * Messages come from host/fserror.ts (describeLocalFsError), which names the path, the file system and the space.
 */
export class LocalFsError extends HullError {
  override readonly code: string = 'HULL_LOCAL_FS';
  constructor(
    message: string,
    readonly errno: string,
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The user interrupted an operation (SIGINT, SIGTERM); exit status 128 + the signal's number, as shells report it. */
export class InterruptedError extends HullError {
  override readonly code: string = 'HULL_INTERRUPTED';
  override readonly exitCode: number;
  constructor(message: string, signal: 'SIGINT' | 'SIGTERM' | 'SIGHUP' = 'SIGINT') {
    super(message);
    this.exitCode = 128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const)[signal];
  }
}

/** A --format template that does not parse or fails on the data (docker: "template parsing error: ...", exit 1). */
export class TemplateFormatError extends InvalidArgumentError {
  override readonly code: string = 'HULL_BAD_FORMAT';
  override readonly exitCode: number = 1;
}

/**
 * A storage pool or a volume's quota has no room left for what hull was writing (import, snapshot, clone, a new
 * volume): the pool stays usable; free space (hull volume rm, snapshot rm) or make the volume bigger.
 */
export class PoolFullError extends HullError {
  override readonly code: string = 'HULL_POOL_FULL';
}
