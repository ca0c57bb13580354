/**
 * Reader for conmon's k8s-file log format. Each file line is
 *   `<RFC3339Nano timestamp> <stdout|stderr> <P|F> <text>`
 * where F ends a logical line (its text ends with the line's newline, which is the file's
 * newline) and P is a piece of a longer (or unterminated) line that continues in the next P/F
 * record of the same stream. It also reads docker's json-file lines
 *   `{"log":"<text, with its newline when the line ends>","stream":"stdout","time":"<RFC3339Nano>"}`
 * (which the VM monitor writes for --log-driver json-file), line by line, whichever a line is.
 * readLogs joins pieces back into whole lines, reads rotated files first (`<path>.N` … `<path>.1`,
 * oldest first, docker's naming), applies tail/since/until, and can follow the file as it grows
 * (fs.watch, with polling as a fallback) until told to stop.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { readdirSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { StringDecoder } from 'node:string_decoder';

/** One logical line of output. */
export interface LogLine {
  stream: 'stdout' | 'stderr';
  /**
   * the timestamp recorded (of the line's first piece), in UTC with 9 fraction digits and `Z`, docker's
   * fixed format for logs (`2006-01-02T15:04:05.000000000Z07:00`): the file's nanoseconds are kept
   */
  time: string;
  /** the same in ms since the epoch */
  timeMs: number;
  /** the line's text with its newline ('\n'); a final unterminated line has none */
  text: string;
}

/** Options of {@link readLogs}. */
export interface ReadLogsOptions {
  /** only the last N lines (of what exists when reading starts) */
  tail?: number;
  /** only lines at or after this time, ms since the epoch */
  since?: number;
  /** only lines before this time, ms since the epoch */
  until?: number;
  /**
   * prefix each line's text with its timestamp and a space (docker logs -t); the time field
   * has it either way
   */
  timestamps?: boolean;
  /** keep reading as the file grows until `signal` aborts */
  follow?: boolean;
  /** stops following; readLogs then reads what is left and resolves */
  signal?: AbortSignal;
  /** polling interval of the fallback (and safety net) in follow mode, ms; default 250 */
  pollMs?: number;
}

/** Parse an RFC 3339 timestamp with up to nanosecond precision to ms since the epoch. */
export function parseLogTime(ts: string): number {
  // Date.parse handles at most millisecond fractions portably: cut the fraction to 3 digits
  const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) return Date.parse(ts);
  const frac = m[2] ? m[2].slice(0, 4).padEnd(4, '0') : '';
  return Date.parse(`${m[1]}${frac}${m[3]}`);
}

/**
 * An RFC 3339 timestamp (any offset, up to 9 fraction digits) → UTC with exactly 9 fraction digits and `Z`,
 * docker's `jsonmessage.RFC3339NanoFixed` for `logs -t`. Nanoseconds are carried as digits, never through a
 * float. A string that is not RFC 3339 is returned as it is.
 */
export function normalizeLogTime(ts: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) return ts;
  const secs = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(secs)) return ts;
  return `${new Date(secs).toISOString().slice(0, 19)}.${(m[2] ?? '').padEnd(9, '0')}Z`;
}

/** One parsed record of the file. */
export interface LogRecord {
  time: string;
  stream: 'stdout' | 'stderr';
  partial: boolean;
  text: string;
}

/** Parse one file line (without its newline); null for lines that are neither k8s-file nor json-file records. */
export function parseLogRecord(line: string): LogRecord | null {
  if (line.startsWith('{')) return parseJsonRecord(line);
  const s1 = line.indexOf(' ');
  if (s1 < 0) return null;
  const s2 = line.indexOf(' ', s1 + 1);
  if (s2 < 0) return null;
  const stream = line.slice(s1 + 1, s2);
  if (stream !== 'stdout' && stream !== 'stderr') return null;
  const tag = line.charAt(s2 + 1);
  if (tag !== 'P' && tag !== 'F') return null;
  // "<tag> <text>"; a record may also end right after the tag
  const text = line.length > s2 + 2 ? line.slice(s2 + 3) : '';
  return { time: line.slice(0, s1), stream, partial: tag === 'P', text };
}

/** A docker json-file line: the text ends with a newline when it ends a line (else it is a piece). */
function parseJsonRecord(line: string): LogRecord | null {
  let j: unknown;
  try {
    j = JSON.parse(line);
  } catch {
    return null;
  }
  const r = j as { log?: unknown; stream?: unknown; time?: unknown };
  if (typeof r.log !== 'string' || typeof r.time !== 'string') return null;
  if (r.stream !== 'stdout' && r.stream !== 'stderr') return null;
  const partial = !r.log.endsWith('\n');
  return { time: r.time, stream: r.stream, partial, text: partial ? r.log : r.log.slice(0, -1) };
}

/** Joins P pieces per stream into logical lines. */
class LineAssembler {
  private pending = new Map<string, { time: string; parts: string[] }>();

  /** where finished lines go; may be switched between reads */
  constructor(public sink: (l: LogLine) => void) {}

  push(r: LogRecord): void {
    const p = this.pending.get(r.stream);
    if (r.partial) {
      if (p) p.parts.push(r.text);
      else this.pending.set(r.stream, { time: r.time, parts: [r.text] });
      return;
    }
    this.pending.delete(r.stream);
    const time = p ? p.time : r.time;
    const text = (p ? p.parts.join('') : '') + r.text + '\n';
    this.sink({ stream: r.stream, time: normalizeLogTime(time), timeMs: parseLogTime(time), text });
  }

  /** Emit unterminated lines (the writer is done). */
  flush(): void {
    for (const [stream, p] of this.pending) {
      this.sink({
        stream: stream as 'stdout' | 'stderr',
        time: normalizeLogTime(p.time),
        timeMs: parseLogTime(p.time),
        text: p.parts.join(''),
      });
    }
    this.pending.clear();
  }
}

/** Reads a growing file from an offset and yields whole file lines. */
class FileTail {
  private offset = 0;
  private rest = '';
  /** keeps a multi-byte character split across reads intact */
  private decoder = new StringDecoder('utf8');
  private readonly buf = Buffer.allocUnsafe(64 * 1024);

  constructor(
    private fh: FileHandle,
    private readonly path: string,
  ) {}

  /** Read everything new; calls onLine for each complete file line. Handles truncation. */
  async drain(onLine: (line: string) => void): Promise<void> {
    const st = await this.fh.stat();
    if (st.size < this.offset) {
      // truncated or rotated in place: start over
      this.offset = 0;
      this.rest = '';
      this.decoder = new StringDecoder('utf8');
    }
    for (;;) {
      const { bytesRead } = await this.fh.read(this.buf, 0, this.buf.length, this.offset);
      if (bytesRead === 0) break;
      this.offset += bytesRead;
      const chunk = this.rest + this.decoder.write(this.buf.subarray(0, bytesRead));
      const lines = chunk.split('\n');
      this.rest = lines.pop()!;
      for (const l of lines) onLine(l);
    }
  }

  /**
   * Reopen when the path now names another file (a rotated log), after reading what the writer put in the
   * old one before it moved on.
   */
  async reopenIfReplaced(onLine: (line: string) => void): Promise<void> {
    try {
      const [a, b] = await Promise.all([this.fh.stat(), stat(this.path)]);
      if (a.ino !== b.ino) {
        await this.drain(onLine);
        await this.fh.close();
        this.fh = await open(this.path, 'r');
        this.offset = 0;
        this.rest = '';
        this.decoder = new StringDecoder('utf8');
      }
    } catch {
      /* the path is gone for now */
    }
  }

  async close(): Promise<void> {
    await this.fh.close().catch(() => undefined);
  }
}

/**
 * The rotated files of the log at `path` that exist, oldest first: `<path>.N` … `<path>.1` (docker's json-file
 * naming; the VM monitor rotates so).
 */
export function rotatedLogPaths(path: string): string[] {
  const dir = dirname(path);
  const base = basename(path);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const nums: number[] = [];
  for (const n of names) {
    if (!n.startsWith(`${base}.`)) continue;
    const rest = n.slice(base.length + 1);
    if (/^[1-9]\d{0,3}$/.test(rest)) nums.push(Number(rest));
  }
  return nums.sort((a, b) => b - a).map((k) => `${path}.${k}`);
}

/** Open the log, waiting for it to appear when following (conmon creates it at start). */
async function openLog(path: string, o: ReadLogsOptions): Promise<FileHandle | null> {
  for (;;) {
    try {
      return await open(path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      if (!o.follow || o.signal?.aborted) return null;
      await sleep(o.pollMs ?? 250, o.signal);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Read the k8s-file log at `path`, calling `onLine` for each logical line in order. Without
 * `follow` it resolves at the end of the file; with it, it keeps reading new output until
 * `signal` aborts, then reads what is left, emits unterminated lines, and resolves.
 * A missing file yields no lines.
 */
export async function readLogs(path: string, o: ReadLogsOptions, onLine: (l: LogLine) => void): Promise<void> {
  const fh = await openLog(path, o);
  if (!fh) return;
  const tail = new FileTail(fh, path);
  const filtered = (l: LogLine): boolean =>
    (o.since === undefined || l.timeMs >= o.since) && (o.until === undefined || l.timeMs < o.until);
  const out = (l: LogLine): void => {
    if (!filtered(l)) return;
    onLine(o.timestamps ? { ...l, text: `${l.time} ${l.text}` } : l);
  };
  try {
    // Existing content: collect the last `tail` lines, or stream everything.
    const keep = o.tail !== undefined && o.tail >= 0 ? Math.floor(o.tail) : -1;
    // the last `keep` lines in a circular buffer (a shifting array would be quadratic)
    const ringBuf: LogLine[] = [];
    let seen = 0;
    const initial = new LineAssembler((l) => {
      if (keep < 0) return out(l);
      if (!filtered(l) || keep === 0) return;
      ringBuf[seen % keep] = l;
      seen++;
    });
    const ringLines = (): LogLine[] =>
      seen <= keep ? ringBuf.slice(0, seen) : [...ringBuf.slice(seen % keep), ...ringBuf.slice(0, seen % keep)];
    const feed = (asm: LineAssembler) => (line: string) => {
      const r = parseLogRecord(line);
      if (r) asm.push(r);
    };
    for (const old of rotatedLogPaths(path)) {
      const fh2 = await open(old, 'r').catch(() => null);
      if (!fh2) continue; // rotated away meanwhile
      const t2 = new FileTail(fh2, old);
      try {
        await t2.drain(feed(initial));
      } finally {
        await t2.close();
      }
    }
    await tail.drain(feed(initial));
    if (!o.follow) {
      initial.flush();
      for (const l of ringLines()) out(l);
      return;
    }
    for (const l of ringLines()) out(l);
    // Pieces of a line still being written carry over into follow mode; from now on every
    // line goes out directly.
    initial.sink = out;
    await follow(tail, path, o, feed(initial));
    initial.flush();
  } finally {
    await tail.close();
  }
}

/** Follow the file until the signal aborts: fs.watch wakes us, polling covers missed events. */
async function follow(tail: FileTail, path: string, o: ReadLogsOptions, onLine: (line: string) => void): Promise<void> {
  let watcher: FSWatcher | null = null;
  let wake: (() => void) | null = null;
  let dirty = false;
  const poke = (): void => {
    dirty = true;
    wake?.();
  };
  try {
    watcher = watch(path, { persistent: true }, poke);
    watcher.on('error', () => {
      watcher?.close();
      watcher = null;
    });
  } catch {
    watcher = null; // inotify unavailable: polling alone
  }
  const onAbort = (): void => wake?.();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    while (!o.signal?.aborted) {
      await tail.drain(onLine);
      if (o.signal?.aborted) break;
      if (!dirty) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(done, o.pollMs ?? 250);
          function done(): void {
            clearTimeout(t);
            wake = null;
            resolve();
          }
          wake = done;
        });
      }
      if (!dirty) await tail.reopenIfReplaced(onLine);
      dirty = false;
    }
    // final read: whatever the writer left before we were told to stop
    await tail.drain(onLine);
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    watcher?.close();
  }
}
