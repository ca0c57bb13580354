/**
 * The lexical half of the Containerfile front end: parser directives, comments, line continuations
 * (with the `# escape=` character), and docker's word rules (quotes, escapes, `$VAR` substitution)
 * as BuildKit's shell lexer applies them. No knowledge of instructions here: see containerfile.ts.
 */
import { InvalidArgumentError } from '../common/errors.js';

/** Every error of the Containerfile front end (code HULL_CONTAINERFILE). Its message starts with `FILE:LINE: `. */
export class ContainerfileError extends InvalidArgumentError {
  static readonly CODE = 'HULL_CONTAINERFILE';
  override readonly code: string = ContainerfileError.CODE;
  constructor(
    readonly file: string,
    readonly line: number,
    readonly detail: string,
  ) {
    super(`${file}:${line}: ${detail}`);
  }
}

/** A syntax problem found while expanding a word; the parser adds the file and line. */
export class WordError extends Error {}

/** One logical line: an instruction keyword and its text, with the physical lines it spans. */
export interface RawInstruction {
  /** 1-based line where the instruction starts */
  line: number;
  /** 1-based line where it ends (after continuations) */
  endLine: number;
  /** the keyword as written */
  keyword: string;
  /** everything after the keyword, continuations joined, trimmed */
  rest: string;
  /** the whole logical line, continuations joined */
  original: string;
  /** here-documents of RUN, COPY and ADD (`<<EOF` … `EOF` on the lines after the instruction), in order */
  heredocs?: Heredoc[];
}

export interface Heredoc {
  /** the delimiter word */
  name: string;
  /** the text between the instruction and the delimiter line, each line ending in \n */
  body: string;
  /** <<-: leading tabs were stripped from the body and the delimiter line */
  stripTabs: boolean;
  /** the delimiter was quoted (<<"EOF"): no variable expansion in the body */
  quoted: boolean;
  /** the marker as written in the instruction (<<-"EOF") */
  marker: string;
}

/** `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'` (not `<<<`, a here-string). */
const HEREDOC_MARKER = /(?<=^|\s)<<(?!<)(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)\2(?=\s|$)/g;

/** The here-document markers in an instruction's text (RUN, COPY and ADD take them, as BuildKit does). */
export function heredocMarkers(keyword: string, text: string): Omit<Heredoc, 'body'>[] {
  if (!['RUN', 'COPY', 'ADD'].includes(keyword.toUpperCase())) return [];
  return [...text.matchAll(HEREDOC_MARKER)].map((m) => ({
    name: m[3]!,
    stripTabs: m[1] === '-',
    quoted: m[2] !== '',
    marker: m[0],
  }));
}

export interface LexResult {
  escape: string;
  syntax?: string;
  instructions: RawInstruction[];
  warnings: string[];
}

const DIRECTIVE = /^\s*#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.*?)\s*$/;
const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);

/** Split a Containerfile into logical lines, honouring parser directives, comments and continuations. */
export function lex(text: string, file: string): LexResult {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  let escape = '\\';
  let syntax: string | undefined;
  const warnings: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    const m = DIRECTIVE.exec(lines[i]!);
    if (!m || !KNOWN_DIRECTIVES.has(m[1]!.toLowerCase())) break;
    const name = m[1]!.toLowerCase();
    if (seen.has(name))
      throw new ContainerfileError(file, i + 1, `the parser directive "${name}" is given twice; keep one`);
    seen.add(name);
    if (name === 'escape') {
      if (m[2] !== '\\' && m[2] !== '`') {
        throw new ContainerfileError(file, i + 1, `invalid escape character "${m[2]}": use # escape=\\ or # escape=\``);
      }
      escape = m[2];
    } else if (name === 'syntax') {
      syntax = m[2]!;
    }
  }

  const continuation = new RegExp(`${escape === '\\' ? '\\\\' : '`'}[ \\t]*$`);
  const instructions: RawInstruction[] = [];
  let cur: { line: number; endLine: number; text: string } | null = null;
  let emptyContinuation = false;
  /** here-documents still to read for the last instruction, first one first */
  let pending: Omit<Heredoc, 'body'>[] = [];
  let body = '';
  const finish = () => {
    const c = cur!;
    cur = null;
    const m = /^(\S+)\s*([\s\S]*)$/.exec(c.text);
    if (!m) return;
    instructions.push({
      line: c.line,
      endLine: c.endLine,
      keyword: m[1]!,
      rest: m[2]!.trim(),
      original: c.text.trim(),
    });
    pending = heredocMarkers(m[1]!, m[2]!);
    body = '';
  };
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    if (pending.length > 0) {
      const h = pending[0]!;
      const line = h.stripTabs ? raw.replace(/^\t+/, '') : raw;
      const last = instructions.at(-1)!;
      last.endLine = i + 1;
      if (line === h.name) {
        (last.heredocs ??= []).push({ ...h, body });
        pending.shift();
        body = '';
      } else {
        body += line + '\n';
      }
      continue;
    }
    const trimmed = raw.trimStart();
    let piece: string;
    if (cur === null) {
      if (trimmed === '' || trimmed.startsWith('#')) continue;
      cur = { line: i + 1, endLine: i + 1, text: '' };
      piece = trimmed;
    } else {
      if (trimmed.startsWith('#')) continue;
      if (trimmed === '') {
        emptyContinuation = true;
        continue;
      }
      piece = raw;
      (cur as { endLine: number }).endLine = i + 1;
    }
    const m = continuation.exec(piece);
    if (m) {
      (cur as { text: string }).text += piece.slice(0, m.index);
    } else {
      (cur as { text: string }).text += piece;
      finish();
    }
  }
  if (cur !== null) finish();
  if (pending.length > 0) {
    const last = instructions.at(-1)!;
    throw new ContainerfileError(
      file,
      last.line,
      `the here-document ${pending[0]!.marker} is never closed: end it with a line that says ${pending[0]!.name}`,
    );
  }
  if (emptyContinuation)
    warnings.push(
      `${file}: empty continuation lines are deprecated; remove the blank lines inside continued instructions`,
    );
  return { escape, ...(syntax !== undefined ? { syntax } : {}), instructions, warnings };
}

/**
 * Split text into words at unquoted whitespace, keeping quotes and escapes in the words
 * (they are removed by `expandWord`). Throws WordError on an unterminated quote.
 */
export function splitRaw(src: string, escape: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: string | null = null;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (quote) {
      cur += c;
      if (c === escape && quote === '"' && i + 1 < src.length) cur += src[++i];
      else if (c === quote) quote = null;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === escape && i + 1 < src.length) {
      cur += c + src[++i];
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    cur += c;
  }
  if (quote)
    throw new WordError(
      `unterminated ${quote === '"' ? 'double' : 'single'} quote in "${src}"; close it with ${quote}`,
    );
  if (inWord) words.push(cur);
  return words;
}

/** Looks a variable up; undefined when unset. */
export type Lookup = (name: string) => string | undefined;

const NAME_START = /[A-Za-z_]/;
const NAME_CHAR = /[A-Za-z0-9_]/;

/**
 * Expand one word as docker does: quotes removed (single quotes literal, double quotes substitute),
 * escapes removed, `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
 * `${VAR:?message}`, `${VAR?message}` substituted. Throws WordError on bad syntax.
 */
export function expandWord(word: string, lookup: Lookup, escape: string): string {
  const [out] = processUntil(word, 0, lookup, escape, null);
  return out;
}

function processUntil(s: string, start: number, lookup: Lookup, esc: string, stop: string | null): [string, number] {
  let out = '';
  let i = start;
  while (i < s.length) {
    const c = s[i]!;
    if (stop !== null && c === stop) return [out, i];
    if (c === "'") {
      const j = s.indexOf("'", i + 1);
      if (j < 0) throw new WordError(`unterminated single quote in "${s}"; close it with '`);
      out += s.slice(i + 1, j);
      i = j + 1;
      continue;
    }
    if (c === '"') {
      i++;
      while (i < s.length && s[i] !== '"') {
        const d = s[i]!;
        if (d === esc && i + 1 < s.length && (s[i + 1] === '"' || s[i + 1] === '$' || s[i + 1] === esc)) {
          out += s[i + 1];
          i += 2;
        } else if (d === '$') {
          const [v, next] = variable(s, i, lookup, esc);
          out += v;
          i = next;
        } else {
          out += d;
          i++;
        }
      }
      if (i >= s.length) throw new WordError(`unterminated double quote in "${s}"; close it with "`);
      i++;
      continue;
    }
    if (c === esc) {
      if (i + 1 < s.length) out += s[i + 1];
      i += 2;
      continue;
    }
    if (c === '$') {
      const [v, next] = variable(s, i, lookup, esc);
      out += v;
      i = next;
      continue;
    }
    out += c;
    i++;
  }
  if (stop !== null) throw new WordError(`missing "}" in "${s}"; close the \${...} substitution`);
  return [out, i];
}

/** s[i] is '$'. Returns the substituted text and the index after the reference. */
function variable(s: string, i: number, lookup: Lookup, esc: string): [string, number] {
  const next = s[i + 1];
  if (next === undefined) return ['$', i + 1];
  if (next !== '{') {
    if (/[0-9]/.test(next)) return [lookup(next) ?? '', i + 2]; // positional parameter, as BuildKit: empty
    if (!NAME_START.test(next)) return ['$', i + 1];
    let j = i + 1;
    while (j < s.length && NAME_CHAR.test(s[j]!)) j++;
    return [lookup(s.slice(i + 1, j)) ?? '', j];
  }
  let j = i + 2;
  if (j >= s.length || !NAME_START.test(s[j]!)) {
    throw new WordError(`bad substitution in "${s}": \${ must be followed by a variable name, as in \${NAME}`);
  }
  while (j < s.length && NAME_CHAR.test(s[j]!)) j++;
  const name = s.slice(i + 2, j);
  if (s[j] === '}') return [lookup(name) ?? '', j + 1];
  let op = '';
  if (s[j] === ':' && '-+?'.includes(s[j + 1] ?? '')) {
    op = s.slice(j, j + 2);
    j += 2;
  } else if ('-+?'.includes(s[j] ?? '') && s[j] !== undefined) {
    op = s[j]!;
    j += 1;
  } else if (j >= s.length) throw new WordError(`missing "}" in "${s}"; close the \${...} substitution`);
  else {
    throw new WordError(
      `unsupported substitution "\${${name}${s[j]}..." in "${s}": use \${${name}}, \${${name}:-default} or \${${name}:+alternative}`,
    );
  }
  const [word, end] = processUntil(s, j, lookup, esc, '}');
  const value = lookup(name);
  const set = value !== undefined;
  const nonEmpty = set && value !== '';
  let result: string;
  switch (op) {
    case ':-':
      result = nonEmpty ? value! : word;
      break;
    case '-':
      result = set ? value! : word;
      break;
    case ':+':
      result = nonEmpty ? word : '';
      break;
    case '+':
      result = set ? word : '';
      break;
    case ':?':
      if (!nonEmpty) throw new WordError(`${name}: ${word || 'is not set or empty'}`);
      result = value!;
      break;
    default: // '?'
      if (!set) throw new WordError(`${name}: ${word || 'is not set'}`);
      result = value!;
  }
  return [result, end + 1];
}

/** Edit distance counting a swap of two neighbours as one edit (optimal string alignment), for "did you mean". */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate within a small edit distance, or undefined. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  if (w.length >= 3) {
    const prefixed = candidates.filter((c) => c.toLowerCase().startsWith(w));
    if (prefixed.length === 1) return prefixed[0];
  }
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  const limit = word.length <= 4 ? 1 : 2;
  return bestD <= limit ? best : undefined;
}
