/**
 * crun (up to at least 1.8) sets an exec process's terminal size from the runtime's parent process after
 * the fork, without waiting: the child may already have exec'ed the command, which then reads a 0x0 size
 * (`stty size` says 0 0; measured here: 1 in 10 to 1 in 50 of `hull exec -t` sessions). runc sets the size in
 * the child before the exec. For crun, hull therefore starts terminal execs through hull-ttywait
 * (guest/ttywait.c): handed in as fd 3 and run as /proc/self/fd/3, it waits until the terminal has its size
 * (SIGWINCH), then execs the command. Nothing is added to the container's filesystem.
 */
import { hullEnv } from '../common/env.js';
import { HostSupportError } from '../common/errors.js';
import { builtProgram } from '../host/programs.js';

/** The path the process runs the helper by: fd 3 as the runtime's --preserve-fds 1 hands it in. */
export const TTYWAIT_EXEC_PATH = '/proc/self/fd/3';

/** Whether `runtime` needs the helper for a terminal exec. */
export function execSizeIsLate(runtime: string): boolean {
  return runtime === 'crun';
}

/** The helper binary (built by scripts/setup.sh); $HULL_TTYWAIT overrides. */
export function ttyWaitBinary(): string {
  const forced = hullEnv('HULL_TTYWAIT');
  if (forced) return forced;
  const built = builtProgram('hull-ttywait');
  if (built) return built;
  throw new HostSupportError(
    "hull's terminal helper (guest/hull-ttywait) is not built; run scripts/setup.sh (it builds it with musl-gcc), or use --runtime runc",
  );
}
