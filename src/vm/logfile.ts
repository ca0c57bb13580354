/**
 * Writer of the k8s-file log format that conmon writes for containers and src/container/logs.ts reads:
 * one record per line, `<RFC 3339 time, ns> <stdout|stderr> <F|P> <text>`; F ends a logical line, P is a
 * piece of a line that continues in the next record of the same stream. A VM's monitor writes its main
 * process's output with it (or docker's json-file lines, for --log-driver json-file), so `hull logs` reads
 * containers and VMs alike.
 */
import { closeSync, fstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

/** RFC 3339 with nanoseconds, UTC (conmon writes local time with an offset; readers accept both). */
export function logTimestamp(ms = Date.now(), nanos = process.hrtime()[1]): string {
  const iso = new Date(ms).toISOString(); // 2026-01-01T00:00:00.123Z
  const frac = String(Math.floor(ms % 1000) * 1_000_000 + (nanos % 1_000_000)).padStart(9, '0');
  return `${iso.slice(0, 19)}.${frac}Z`;
}

/** Format output as records: complete lines as F, a trailing unterminated piece as P. */
export function formatRecords(stream: 'stdout' | 'stderr', text: string, time = logTimestamp()): string {
  let out = '';
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) break;
    out += `${time} ${stream} F ${text.slice(start, nl)}\n`;
    start = nl + 1;
  }
  if (start < text.length) out += `${time} ${stream} P ${text.slice(start)}\n`;
  return out;
}

/** docker's json-file lines: one per complete line (its newline in `log`) and one for a trailing piece. */
export function formatJsonRecords(stream: 'stdout' | 'stderr', text: string, time = logTimestamp()): string {
  // Go's RFC3339Nano, as docker writes it: trailing zeros of the fraction trimmed
  const t = time.replace(/\.?0+Z$/, 'Z');
  let out = '';
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf('\n', start);
    const end = nl < 0 ? text.length : nl + 1;
    out += `${JSON.stringify({ log: text.slice(start, end), stream, time: t })}\n`;
    start = end;
  }
  return out;
}

/** How a log file is written: its format and docker's max-size/max-file rotation. */
export interface LogFileOptions {
  format?: 'k8s-file' | 'json-file';
  /** start a new file once the current one has reached this many bytes (docker's max-size) */
  maxSize?: number;
  /** files kept, the current one included (docker's max-file; default 1: the full file is replaced) */
  maxFile?: number;
}

/**
 * Appends records to a log file; decodes UTF-8 per stream so characters split across chunks stay whole.
 * With maxSize, rotates as docker's json-file driver does: before a write, a file that has reached maxSize
 * becomes `<path>.1` (older ones shift up, the one past maxFile - 1 is removed) and a new file starts; with
 * maxFile 1 the full file is simply replaced.
 */
export class LogFileWriter {
  private fd: number;
  private size: number;
  private readonly decoders = { stdout: new TextDecoder('utf-8'), stderr: new TextDecoder('utf-8') };

  constructor(
    private readonly path: string,
    private readonly o: LogFileOptions = {},
  ) {
    this.fd = openSync(path, 'a', 0o640);
    this.size = fstatSync(this.fd).size;
  }

  write(stream: 'stdout' | 'stderr', data: Buffer): void {
    const text = this.decoders[stream].decode(data, { stream: true });
    if (text) this.append(stream, text);
  }

  private append(stream: 'stdout' | 'stderr', text: string): void {
    if (this.o.maxSize && this.o.maxSize > 0 && this.size >= this.o.maxSize) this.rotate();
    const rec = this.o.format === 'json-file' ? formatJsonRecords(stream, text) : formatRecords(stream, text);
    const buf = Buffer.from(rec);
    writeSync(this.fd, buf);
    this.size += buf.length;
  }

  private rotate(): void {
    closeSync(this.fd);
    const keep = Math.max(1, this.o.maxFile ?? 1);
    if (keep > 1) {
      rmSync(`${this.path}.${keep - 1}`, { force: true });
      for (let k = keep - 2; k >= 1; k--) {
        try {
          renameSync(`${this.path}.${k}`, `${this.path}.${k + 1}`);
        } catch {
          /* not there yet */
        }
      }
      renameSync(this.path, `${this.path}.1`);
      this.fd = openSync(this.path, 'a', 0o640);
    } else {
      this.fd = openSync(this.path, 'w', 0o640);
    }
    this.size = 0;
  }

  close(): void {
    for (const s of ['stdout', 'stderr'] as const) {
      const rest = this.decoders[s].decode();
      if (rest) this.append(s, rest);
    }
    closeSync(this.fd);
  }
}
