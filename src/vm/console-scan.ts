/**
 * The guest's serial console, read as it is written (the monitor feeds it every chunk QEMU sends): the
 * kernel's own account of a fault, wherever it appears in the output, however much follows it.
 *   - a panic: "Kernel panic - not syncing: <why>" (the first one; the closing "---[ end Kernel panic …"
 *     line repeats it), printed at KERN_EMERG, so `quiet` does not hide it;
 *   - OOM kills: "Out of memory: Killed process <pid> (<name>) …" (pr_err: shown with `quiet`), "Memory
 *     cgroup out of memory: Killed process …" for a cgroup's limit inside the guest, and the summary line
 *     "oom-kill:…,task=<name>,pid=<pid>,…" (pr_info: shown only at a higher log level).
 * Nothing else is kept: memory stays bounded whatever the guest prints.
 */

/** One process the guest kernel's OOM killer killed. */
export interface OomKill {
  pid: number;
  name: string;
}

/** Longest line kept (kernel lines are short; a runaway line is cut, not buffered without end). */
const MAX_LINE = 4096;
/** OOM kills named (the count goes on) */
const MAX_KILLS = 16;

const PANIC = /Kernel panic - not syncing:.*/;
const OOM_KILLED = /out of memory: Killed process (\d+) \(([^)]*)\)/i;
const OOM_SUMMARY = /oom-kill:.*\btask=([^,]*),pid=(\d+)/;

export class ConsoleScanner {
  /** the first panic line, without the kernel's timestamp */
  panic: string | null = null;
  /** the first OOM kills in the order the console told them, one per pid */
  readonly oomKills: OomKill[] = [];
  /** how many OOM kills the console told */
  oomKillCount = 0;
  private readonly decoder = new TextDecoder('utf-8');
  private partial = '';
  private readonly listeners = new Set<() => void>();

  push(chunk: Buffer | Uint8Array): void {
    const text = this.partial + this.decoder.decode(chunk, { stream: true });
    const lines = text.split('\n');
    const last = lines.pop()!;
    for (const l of lines) this.line(l);
    this.partial = last.length > MAX_LINE ? last.slice(0, MAX_LINE) : last;
    if (lines.length > 0) for (const f of [...this.listeners]) f();
  }

  /** The console ended (QEMU exited): an unterminated last line counts too. */
  end(): void {
    const rest = this.partial + this.decoder.decode();
    this.partial = '';
    if (rest) this.line(rest);
    for (const f of [...this.listeners]) f();
  }

  /**
   * Resolves once `n` OOM kills have shown on the console, or after `ms` (the kernel prints the line right
   * after sending its SIGKILL, but the agent's report travels another channel and may arrive first).
   */
  waitOomKills(n: number, ms: number): Promise<void> {
    if (this.oomKillCount >= n) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve();
      };
      const check = (): void => {
        if (this.oomKillCount >= n) done();
      };
      const timer = setTimeout(done, ms);
      this.listeners.add(check);
    });
  }

  private line(raw: string): void {
    // the firmware's terminal escapes and the serial line's carriage returns
    const l = raw.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1bc/g, '').replace(/\r/g, '');
    if (this.panic === null) {
      const m = PANIC.exec(l);
      if (m) this.panic = m[0].replace(/\s*\]---\s*$/, '').trimEnd();
    }
    const k = OOM_KILLED.exec(l);
    if (k) return this.oomKill(Number(k[1]), k[2]!);
    const s = OOM_SUMMARY.exec(l);
    if (s) this.oomKill(Number(s[2]), s[1]!);
  }

  private oomKill(pid: number, name: string): void {
    // the same kill may show twice (the summary line and the "Killed process" line)
    if (pid === this.lastKilled) return;
    this.lastKilled = pid;
    this.oomKillCount++;
    if (this.oomKills.length < MAX_KILLS) this.oomKills.push({ pid, name });
  }

  private lastKilled = 0;
}

/** "process 123 (sh)", "processes 123 (sh), 456 (tail)" — at most three named, then how many more. */
export function describeOomKills(kills: readonly OomKill[], count = kills.length): string {
  const named = kills
    .slice(0, 3)
    .map((k) => `${k.pid} (${k.name})`)
    .join(', ');
  const more = count > 3 ? ` and ${count - 3} more` : '';
  return `${count === 1 ? 'process' : 'processes'} ${named}${more}`;
}
