import { InvalidArgumentError } from '../common/errors.js';

/** Output helpers shared by commands: aligned tables, JSON, durations and sizes for humans. */

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 3)))
      .join('')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

export function ago(ms: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 2) return 'Less than a second ago';
  if (s < 60) return `${s} seconds ago`;
  const m = Math.round(s / 60);
  if (m < 60) return m === 1 ? 'About a minute ago' : `${m} minutes ago`;
  const h = Math.round(m / 60);
  if (h < 48) return h === 1 ? 'About an hour ago' : `${h} hours ago`;
  return `${Math.round(h / 24)} days ago`;
}

export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 1) return 'Less than a second';
  if (s < 60) return `${s} seconds`;
  const m = Math.round(s / 60);
  if (m < 60) return m === 1 ? 'About a minute' : `${m} minutes`;
  const h = Math.round(m / 60);
  return h < 48 ? (h === 1 ? 'About an hour' : `${h} hours`) : `${Math.round(h / 24)} days`;
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)}${units[i]}`;
}

export function checkFormat(format: string | undefined): 'table' | 'json' {
  if (format === undefined || format === 'table') return 'table';
  if (format === 'json') return 'json';
  throw new InvalidArgumentError(`unknown --format "${format}": use table or json`);
}

/** Go's fmt `%.<p>g` of a non-negative number (trailing zeros dropped, two-digit exponents), as docker's units print. */
function goG(x: number, p: number): string {
  if (x === 0) return '0';
  const s = x.toPrecision(p);
  const [mant, exp] = s.split('e') as [string, string | undefined];
  const m = mant.includes('.') ? mant.replace(/0+$/, '').replace(/\.$/, '') : mant;
  if (exp === undefined) return m;
  const sign = exp.startsWith('-') ? '-' : '+';
  return `${m}e${sign}${exp.replace(/^[+-]/, '').padStart(2, '0')}`;
}

function customSize(n: number, base: number, units: string[], p: number): string {
  let v = n;
  let i = 0;
  while (v >= base && i < units.length - 1) {
    v /= base;
    i++;
  }
  return `${goG(v, p)}${units[i]}`;
}

/** docker's units.HumanSizeWithPrecision(n, 3): decimal units, as `docker stats` shows NET I/O and BLOCK I/O (1.2kB). */
export function decimalSize(n: number): string {
  return customSize(n, 1000, ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'], 3);
}

/** docker's units.BytesSize: binary units with 4 significant digits, as `docker stats` shows memory (1.5MiB). */
export function binarySize(n: number): string {
  return customSize(n, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'], 4);
}
