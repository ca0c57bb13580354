import { InvalidArgumentError, TemplateFormatError } from '../common/errors.js';
import { goJson, goStruct, sprintf, Template, TemplateError } from '../common/gotemplate.js';

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
  if (s === 1) return '1 second';
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

/**
 * docker's --format: `table` (the command's own table), `json` (one JSON object per item and line),
 * `table TEMPLATE` (the template per item in columns, headers from the field names) or any other Go
 * template, run once per item and followed by a newline. `\t` and `\n` written literally become tab and newline.
 */
export type OutputFormat =
  | { kind: 'default' }
  | { kind: 'json' }
  | { kind: 'template'; table: boolean; template: Template };

export function parseFormat(format: string | undefined): OutputFormat {
  if (format === undefined || format === '' || format === 'table') return { kind: 'default' };
  if (format === 'json') return { kind: 'json' };
  const table = format.startsWith('table');
  const text = (table ? format.slice('table'.length) : format)
    .replace(/^ +| +$/g, '')
    .replace(/\\t/g, '\t')
    .replace(/\\n/g, '\n');
  return { kind: 'template', table, template: compileTemplate(text) };
}

/** Parse a template the way docker does, with its error wording. */
export function compileTemplate(text: string): Template {
  try {
    return new Template(text);
  } catch (e) {
    if (e instanceof TemplateError) throw new TemplateFormatError(`template parsing error: ${e.message}`);
    throw e;
  }
}

export function runTemplate(t: Template, data: unknown): string {
  try {
    return t.execute(data);
  } catch (e) {
    if (e instanceof TemplateError) throw new TemplateFormatError(`template parsing error: ${e.message}`);
    throw e;
  }
}

// docker's templates.HeaderFunctions: the header row passes names through the formatting functions unchanged
const headerFuncs = {
  json: () => '',
  split: (v: string) => v,
  join: (v: string) => v,
  title: (v: string) => v,
  lower: (v: string) => v,
  upper: (v: string) => v,
  truncate: (v: string) => v,
  pad: (v: string) => v,
};

/**
 * Write `items` in a non-default format: JSON lines, or the template per item (under a header row in aligned
 * columns for `table ...`). `headers` names each field's column, as docker's header for that command does.
 */
export function formatItems(
  f: Exclude<OutputFormat, { kind: 'default' }>,
  items: unknown[],
  headers: Record<string, string>,
): string {
  if (f.kind === 'json') return items.map((i) => goJson(i) + '\n').join('');
  const body = items.map((i) => runTemplate(f.template, i) + '\n').join('');
  if (!f.table) return body;
  const hdr = goStruct('header', { ...headers }) as Record<string, unknown>;
  for (const [k, v] of Object.entries(headers)) if (k === 'Label') hdr[k] = () => v;
  let head = '';
  try {
    head = new Template(f.template.source, { funcs: headerFuncs }).execute(hdr);
  } catch {
    // docker ignores a header row the template cannot make
  }
  return tabwrite(head + '\n' + body);
}

/**
 * Go's text/tabwriter as docker uses it (minwidth 10, tabwidth 1, padding 3, padchar ' ', no flags):
 * tab-terminated cells aligned in column blocks; the last cell of a line is not part of a column.
 */
export function tabwrite(text: string, minwidth = 10, padding = 3): string {
  const lines = text.split('\n').map((l) => l.split('\t'));
  const trailingNewline = text.endsWith('\n');
  if (trailingNewline) lines.pop();
  const width = (s: string) => [...s].length;
  const widths: number[] = [];
  const out: string[] = [];
  const writeLines = (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const cells = lines[i]!;
      out.push(
        cells
          .map((c, j) => (j < widths.length && j < cells.length - 1 ? c + ' '.repeat(widths[j]! - width(c)) : c))
          .join(''),
      );
    }
  };
  const format = (line0: number, line1: number): void => {
    const column = widths.length;
    for (let cur = line0; cur < line1; cur++) {
      if (column >= lines[cur]!.length - 1) continue;
      writeLines(line0, cur);
      line0 = cur;
      let w = minwidth;
      for (; cur < line1; cur++) {
        const cells = lines[cur]!;
        if (column >= cells.length - 1) break;
        w = Math.max(w, width(cells[column]!) + padding);
      }
      widths.push(w);
      format(line0, cur);
      widths.pop();
      line0 = cur;
      cur--;
    }
    writeLines(line0, line1);
  };
  format(0, lines.length);
  return out.join('\n') + (trailingNewline ? '\n' : '');
}

/** docker's units.BytesSize: binary units, 4 significant digits ("1.5MiB", "64MiB"). */
export function dockerBytes(n: number): string {
  return unitSize(n, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']);
}

/** docker's units.HumanSizeWithPrecision(n, 3): decimal units ("1.2kB", "0B"). */
export function dockerHumanSize(n: number, precision = 3): string {
  return unitSize(n, 1000, ['B', 'kB', 'MB', 'GB', 'TB', 'PB'], precision);
}

function unitSize(n: number, base: number, units: string[], precision = 4): string {
  let v = n;
  let i = 0;
  while (v >= base && i < units.length - 1) {
    v /= base;
    i++;
  }
  return sprintf(`%.${precision}g%s`, v, units[i]);
}

/** Go's time.Time.String() for a local time: "2006-01-02 15:04:05.999999999 -0700 MST" (without fractions). */
export function goTimeString(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const off = -d.getTimezoneOffset();
  const sign = off < 0 ? '-' : '+';
  const zone =
    off === 0
      ? 'UTC'
      : (new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' })
          .formatToParts(d)
          .find((x) => x.type === 'timeZoneName')?.value ??
        `${sign}${p(Math.floor(Math.abs(off) / 60))}${p(Math.abs(off) % 60)}`);
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${sign}${p(Math.floor(Math.abs(off) / 60))}${p(Math.abs(off) % 60)} ${zone}`;
}

/** What inspect prints: the JSON array, or with -f TEMPLATE the template's output for each item (docker's way). */
export function inspectOutput(docs: unknown[], format: string | undefined): string {
  if (format === undefined || format === '' || format === 'json') return json(docs);
  const t = compileTemplate(format);
  return docs.map((d) => runTemplate(t, d) + '\n').join('');
}

/** docker's units.HumanSizeWithPrecision(n, 3): decimal units, as `docker stats` shows NET I/O and BLOCK I/O (1.2kB). */
export function decimalSize(n: number): string {
  return dockerHumanSize(n, 3);
}

/** docker's units.BytesSize: binary units with 4 significant digits, as `docker stats` shows memory (1.5MiB). */
export function binarySize(n: number): string {
  return dockerBytes(n);
}
