/**
 * Run a shell command under a real pseudo-terminal: util-linux `script -qec CMD /dev/null`. The terminal's
 * size is set first (`stty rows R cols C`), so the command sees it as its controlling terminal's size.
 */
import { spawn } from 'node:child_process';

export interface PtyResult {
  code: number | null;
  /** everything written to the terminal (\r\n line ends, terminal echo included) */
  output: string;
}

/** Quote one argument for sh. */
export function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `onOutput` sees everything written to the terminal so far, after each write (to act on what the command printed). */
export function inPty(
  command: string,
  opts: {
    rows?: number;
    cols?: number;
    timeoutMs?: number;
    env?: NodeJS.ProcessEnv;
    onOutput?: (output: string) => void;
  } = {},
): Promise<PtyResult> {
  const rows = opts.rows ?? 40;
  const cols = opts.cols ?? 100;
  const full = `stty rows ${rows} cols ${cols}; ${command}`;
  return new Promise((resolve, reject) => {
    // stdin stays an open pipe: at EOF script would type a character into the terminal
    const child = spawn('script', ['-qec', full, '/dev/null'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      output += s;
      opts.onOutput?.(output);
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      output += s;
      opts.onOutput?.(output);
    });
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `${command} did not finish in a terminal in ${timeoutMs} ms; output so far: ${JSON.stringify(output)}`,
        ),
      );
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      child.stdin.destroy();
      resolve({ code, output });
    });
  });
}
