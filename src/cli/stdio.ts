import type { StdioStreams } from '../common/instance.js';

/**
 * The CLI's terminal as instance stdio: raw mode while a tty session runs, size reporting and resize events.
 * Returns the streams and a restore function that puts the terminal back.
 */
export function terminalStdio(opts: { stdin: boolean; tty: boolean }): { stdio: StdioStreams; restore: () => void } {
  const stdin = process.stdin;
  let raw = false;
  if (opts.tty && opts.stdin && stdin.isTTY) {
    stdin.setRawMode(true);
    raw = true;
  }
  const out = process.stdout;
  const stdio: StdioStreams = {
    stdin: opts.stdin ? stdin : null,
    stdout: out,
    stderr: process.stderr,
    ...(opts.tty
      ? {
          size: () => ({ rows: out.rows || 24, cols: out.columns || 80 }),
          onResize: (cb: () => void) => {
            out.on('resize', cb);
          },
        }
      : {}),
  };
  return {
    stdio,
    restore: () => {
      if (raw) stdin.setRawMode(false);
      stdin.pause();
    },
  };
}
