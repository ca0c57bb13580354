/**
 * Writer of the k8s-file log format that conmon writes for containers and src/container/logs.ts reads:
 * one record per line, `<RFC 3339 time, ns> <stdout|stderr> <F|P> <text>`; F ends a logical line, P is a
 * piece of a line that continues in the next record of the same stream. A VM's monitor writes its main
 * process's output with it, so `hull logs` reads containers and VMs alike.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

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

/** Appends records to a log file; decodes UTF-8 per stream so characters split across chunks stay whole. */
export class LogFileWriter {
  private readonly fd: number;
  private readonly decoders = { stdout: new TextDecoder('utf-8'), stderr: new TextDecoder('utf-8') };

  constructor(path: string) {
    this.fd = openSync(path, 'a', 0o640);
  }

  write(stream: 'stdout' | 'stderr', data: Buffer): void {
    const text = this.decoders[stream].decode(data, { stream: true });
    if (text) writeSync(this.fd, formatRecords(stream, text));
  }

  close(): void {
    for (const s of ['stdout', 'stderr'] as const) {
      const rest = this.decoders[s].decode();
      if (rest) writeSync(this.fd, formatRecords(s, rest));
    }
    closeSync(this.fd);
  }
}
