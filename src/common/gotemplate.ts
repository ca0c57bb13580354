/**
 * Go's text/template, as docker's --format uses it: the same syntax, the same builtins, docker's extra
 * functions (json, join, lower, upper, title, split, truncate, pad), Go's fmt rules for printing values and
 * Go's error messages ("template: :1:2: executing "" at <.Foo>: ...").
 *
 * Values: JavaScript objects are Go maps (missing keys give <no value>, ranged over in sorted key order)
 * unless marked with goStruct(), which makes them Go structs (a missing field is an error, function-valued
 * fields are methods that take arguments, like docker's {{.Label "k"}}). Arrays are slices, null is nil,
 * undefined is Go's "no value". Numbers print as integers when they are integral, else as Go prints a float64.
 * Not supported: define/template/block (docker's formats do not use them) and complex numbers.
 */

export class TemplateError extends Error {
  constructor(
    message: string,
    readonly phase: 'parse' | 'exec',
  ) {
    super(message);
    this.name = 'TemplateError';
  }
}

const STRUCT = Symbol('goStruct');

/** Mark `obj` as a Go struct named `typeName` (as Go prints it in errors, e.g. *formatter.ContainerContext). */
export function goStruct<T extends object>(typeName: string, obj: T): T {
  Object.defineProperty(obj, STRUCT, { value: typeName, enumerable: false });
  return obj;
}

function structName(v: unknown): string | undefined {
  return v !== null && typeof v === 'object' ? (v as { [STRUCT]?: string })[STRUCT] : undefined;
}

// ---------------------------------------------------------------- lexer

type ItemType =
  | 'text'
  | 'leftDelim'
  | 'rightDelim'
  | 'space'
  | 'field'
  | 'variable'
  | 'identifier'
  | 'keyword'
  | 'string'
  | 'rawString'
  | 'char'
  | 'number'
  | 'bool'
  | 'nil'
  | 'dot'
  | 'pipe'
  | 'leftParen'
  | 'rightParen'
  | 'declare'
  | 'assign'
  | 'comma'
  | 'comment'
  | 'eof';

interface Item {
  type: ItemType;
  val: string;
  pos: number;
  line: number;
}

const KEYWORDS = new Set(['if', 'else', 'end', 'range', 'with', 'define', 'template', 'block', 'break', 'continue']);
const isSpace = (c: string | undefined) => c === ' ' || c === '\t' || c === '\r' || c === '\n';
const isAlnum = (c: string | undefined) => c !== undefined && /[\p{L}\p{Nd}_]/u.test(c);

function lex(src: string, fail: (line: number, msg: string) => never): Item[] {
  const items: Item[] = [];
  let pos = 0;
  let line = 1;
  const emit = (type: ItemType, start: number, val = src.slice(start, pos)) =>
    items.push({ type, val, pos: start, line: line - countNl(val) });
  const countNl = (s: string) => s.split('\n').length - 1;
  const adv = (n: number) => {
    line += countNl(src.slice(pos, pos + n));
    pos += n;
  };
  let trimNext = false;
  for (;;) {
    // text up to the next {{
    const open = src.indexOf('{{', pos);
    const end = open < 0 ? src.length : open;
    let text = src.slice(pos, end);
    const start = pos;
    const leftTrim = open >= 0 && src[open + 2] === '-' && isSpace(src[open + 3]);
    if (trimNext) text = text.replace(/^[ \t\r\n]+/, '');
    if (leftTrim) text = text.replace(/[ \t\r\n]+$/, '');
    trimNext = false;
    adv(end - pos);
    if (text) items.push({ type: 'text', val: text, pos: start, line: line - countNl(src.slice(start, end)) });
    if (open < 0) {
      items.push({ type: 'eof', val: '', pos, line });
      break;
    }
    const delimPos = pos;
    adv(2);
    if (leftTrim) adv(2);
    // comment
    if (src.startsWith('/*', pos)) {
      const close = src.indexOf('*/', pos);
      if (close < 0) fail(line, 'unclosed comment');
      adv(close + 2 - pos);
      const rt = src.startsWith(' -}}', pos) || (isSpace(src[pos]) && src.startsWith('-}}', pos + 1));
      if (rt) {
        adv(4);
        trimNext = true;
      } else if (src.startsWith('}}', pos)) adv(2);
      else fail(line, 'comment ends before closing delimiter');
      continue;
    }
    items.push({ type: 'leftDelim', val: '{{', pos: delimPos, line });
    let parens = 0;
    for (;;) {
      if (isSpace(src[pos]) && src[pos + 1] === '-' && src.startsWith('}}', pos + 2)) {
        if (parens) fail(line, 'unclosed left paren');
        adv(4);
        items.push({ type: 'rightDelim', val: '}}', pos: pos - 2, line });
        trimNext = true;
        break;
      }
      if (src.startsWith('}}', pos)) {
        if (parens) fail(line, 'unclosed left paren');
        adv(2);
        items.push({ type: 'rightDelim', val: '}}', pos: pos - 2, line });
        break;
      }
      const c = src[pos];
      const s = pos;
      if (c === undefined) fail(line, 'unclosed action');
      if (isSpace(c)) {
        let e = pos;
        while (isSpace(src[e])) e++;
        adv(e - pos);
        emit('space', s);
      } else if (c === '|') {
        adv(1);
        emit('pipe', s);
      } else if (c === '(') {
        adv(1);
        parens++;
        emit('leftParen', s);
      } else if (c === ')') {
        adv(1);
        if (--parens < 0) fail(line, `unexpected right paren`);
        emit('rightParen', s);
      } else if (c === ',') {
        adv(1);
        emit('comma', s);
      } else if (c === ':') {
        if (src[pos + 1] !== '=') fail(line, 'expected :=');
        adv(2);
        emit('declare', s);
      } else if (c === '=') {
        adv(1);
        emit('assign', s);
      } else if (c === '"') {
        let e = pos + 1;
        for (; src[e] !== '"'; e++) {
          if (src[e] === '\\') e++;
          if (src[e] === undefined || src[e] === '\n') fail(line, 'unterminated quoted string');
        }
        adv(e + 1 - pos);
        emit('string', s);
      } else if (c === '`') {
        const e = src.indexOf('`', pos + 1);
        if (e < 0) fail(line, 'unterminated raw quoted string');
        adv(e + 1 - pos);
        emit('rawString', s);
      } else if (c === "'") {
        let e = pos + 1;
        for (; src[e] !== "'"; e++) {
          if (src[e] === '\\') e++;
          if (src[e] === undefined || src[e] === '\n') fail(line, 'unterminated character constant');
        }
        adv(e + 1 - pos);
        emit('char', s);
      } else if (c === '$' || c === '.') {
        let e = pos + 1;
        while (isAlnum(src[e])) e++;
        if (c === '.' && e === pos + 1) {
          if (/[0-9]/.test(src[e] ?? '')) {
            const n = scanNumber(src, pos);
            adv(n - pos);
            emit('number', s);
          } else {
            adv(1);
            emit('dot', s);
          }
        } else {
          adv(e - pos);
          emit(c === '$' ? 'variable' : 'field', s);
        }
      } else if (/[0-9+-]/.test(c)) {
        const e = scanNumber(src, pos);
        if (e === pos || isAlnum(src[e])) fail(line, `bad number syntax: "${src.slice(pos, e + 1)}"`);
        adv(e - pos);
        emit('number', s);
      } else if (isAlnum(c)) {
        let e = pos;
        while (isAlnum(src[e])) e++;
        adv(e - pos);
        const w = src.slice(s, pos);
        emit(
          KEYWORDS.has(w) ? 'keyword' : w === 'true' || w === 'false' ? 'bool' : w === 'nil' ? 'nil' : 'identifier',
          s,
        );
      } else {
        const cp = c.codePointAt(0)!;
        fail(line, `bad character U+${cp.toString(16).toUpperCase().padStart(4, '0')} '${c}'`);
      }
    }
  }
  return items;
}

function scanNumber(src: string, pos: number): number {
  const m = /^[+-]?(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(\d[\d_]*)?\.?[\d_]*([eE][+-]?\d+)?)/.exec(
    src.slice(pos),
  );
  return pos + (m ? m[0].length : 0);
}

// ---------------------------------------------------------------- parse tree

interface ControlNode {
  t: 'if' | 'with' | 'range';
  pos: number;
  line: number;
  pipe: Pipe;
  list: Node[];
  elseList?: Node[];
}
type Node =
  | { t: 'text'; pos: number; text: string }
  | { t: 'action'; pos: number; line: number; pipe: Pipe }
  | ControlNode
  | { t: 'break' | 'continue'; pos: number };

interface Pipe {
  pos: number;
  decl: string[];
  isAssign: boolean;
  cmds: Cmd[];
}
interface Cmd {
  pos: number;
  args: Arg[];
}
type Arg =
  | { t: 'field'; pos: number; idents: string[] }
  | { t: 'variable'; pos: number; idents: string[] } // idents[0] is the variable's name
  | { t: 'chain'; pos: number; node: Arg; fields: string[] }
  | { t: 'identifier'; pos: number; name: string }
  | { t: 'dot'; pos: number }
  | { t: 'nil'; pos: number }
  | { t: 'bool'; pos: number; value: boolean }
  | { t: 'number'; pos: number; value: number; text: string }
  | { t: 'string'; pos: number; value: string; text: string }
  | { t: 'pipe'; pos: number; pipe: Pipe };

function argString(a: Arg): string {
  switch (a.t) {
    case 'field':
      return a.idents.map((i) => '.' + i).join('');
    case 'variable':
      return a.idents.join('.');
    case 'chain':
      return (
        (a.node.t === 'pipe' ? `(${argString(a.node)})` : argString(a.node)) + a.fields.map((f) => '.' + f).join('')
      );
    case 'identifier':
      return a.name;
    case 'dot':
      return '.';
    case 'nil':
      return 'nil';
    case 'bool':
      return String(a.value);
    case 'number':
    case 'string':
      return a.text;
    case 'pipe':
      return pipeString(a.pipe);
  }
}
const cmdString = (c: Cmd) => c.args.map((a) => (a.t === 'pipe' ? `(${argString(a)})` : argString(a))).join(' ');
const pipeString = (p: Pipe) =>
  (p.decl.length ? `${p.decl.join(', ')} ${p.isAssign ? '=' : ':='} ` : '') + p.cmds.map(cmdString).join(' | ');

class Parser {
  private i = 0;
  private vars: string[][] = [['$']];
  constructor(
    private readonly items: Item[],
    private readonly name: string,
    private readonly funcs: Record<string, unknown>,
  ) {}

  fail(msg: string, item = this.items[Math.min(this.i, this.items.length - 1)]!): never {
    throw new TemplateError(`template: ${this.name}:${item.line}: ${msg}`, 'parse');
  }
  private next(): Item {
    return this.items[this.i++]!;
  }
  private peek(): Item {
    return this.items[this.i]!;
  }
  private nextNonSpace(): Item {
    let it = this.next();
    while (it.type === 'space') it = this.next();
    return it;
  }
  private peekNonSpace(): Item {
    const save = this.i;
    const it = this.nextNonSpace();
    this.i = save;
    return it;
  }
  private expect(type: ItemType, context: string): Item {
    const it = this.nextNonSpace();
    if (it.type !== type) this.unexpected(it, context);
    return it;
  }
  /** Go's item.String() in "unexpected %s in %s" */
  private unexpected(it: Item, context: string): never {
    if (it.type === 'eof') this.fail(`unexpected EOF in ${context}`, it);
    const desc =
      it.type === 'keyword' || it.type === 'bool' || it.type === 'nil' || it.type === 'dot'
        ? `<${it.val}>`
        : it.val.length > 10
          ? `${goQuote(it.val.slice(0, 10))}...`
          : goQuote(it.val);
    this.fail(`unexpected ${desc} in ${context}`, it);
  }

  parse(): Node[] {
    const { list, end } = this.itemList(true);
    if (end) this.fail(`unexpected ${end}`);
    return list;
  }

  /** Nodes up to {{end}}/{{else}} (returned in `end`) or EOF (only when `top`). */
  private itemList(top: boolean, inRange = false): { list: Node[]; end?: string; endItem?: Item } {
    const list: Node[] = [];
    for (;;) {
      const it = this.next();
      if (it.type === 'eof') {
        if (!top) this.fail('unexpected EOF', it);
        return { list };
      }
      if (it.type === 'text') {
        list.push({ t: 'text', pos: it.pos, text: it.val });
        continue;
      }
      // leftDelim
      const kw = this.peekNonSpace();
      if (kw.type === 'keyword') {
        this.nextNonSpace();
        switch (kw.val) {
          case 'end':
            this.expect('rightDelim', 'end');
            if (top) this.fail('unexpected {{end}}', kw);
            return { list, end: 'end', endItem: kw };
          case 'else':
            if (top) this.fail('unexpected {{else}}', kw);
            return { list, end: 'else', endItem: kw };
          case 'if':
          case 'with':
          case 'range':
            list.push(this.control(kw.val, kw, inRange));
            continue;
          case 'break':
          case 'continue':
            if (!inRange) this.fail(`{{${kw.val}}} outside {{range}}`, kw);
            this.expect('rightDelim', kw.val);
            list.push({ t: kw.val, pos: kw.pos });
            continue;
          default:
            this.fail(`{{${kw.val}}} is not supported in hull's --format templates`, kw);
        }
      }
      const pipe = this.pipeline('command', 'rightDelim');
      list.push({ t: 'action', pos: it.pos, line: it.line, pipe });
    }
  }

  private control(kind: 'if' | 'with' | 'range', kw: Item, inRange: boolean): Node {
    this.vars.push([...this.vars[this.vars.length - 1]!]);
    const pipe = this.pipeline(kind, 'rightDelim');
    const body = this.itemList(false, kind === 'range' || inRange);
    let elseList: Node[] | undefined;
    if (body.end === 'else') {
      const nxt = this.peekNonSpace();
      if (nxt.type === 'keyword' && (nxt.val === 'if' || nxt.val === 'with')) {
        // {{else if ...}} / {{else with ...}}: a nested control that shares our {{end}}
        this.nextNonSpace();
        elseList = [this.control(nxt.val, nxt, inRange)];
      } else {
        this.expect('rightDelim', 'else');
        const e = this.itemList(false, inRange);
        if (e.end === 'else') this.fail('expected end; found {{else}}', e.endItem);
        elseList = e.list;
      }
    }
    this.vars.pop();
    const node: Node = { t: kind, pos: kw.pos, line: kw.line, pipe, list: body.list };
    if (elseList) node.elseList = elseList;
    return node;
  }

  private pipeline(context: string, end: 'rightDelim' | 'rightParen'): Pipe {
    const start = this.peekNonSpace();
    const pipe: Pipe = { pos: start.pos, decl: [], isAssign: false, cmds: [] };
    // declarations
    const save = this.i;
    const v = this.nextNonSpace();
    if (v.type === 'variable') {
      const after = this.peekNonSpace();
      if (after.type === 'declare' || after.type === 'assign') {
        this.nextNonSpace();
        pipe.decl.push(v.val);
        pipe.isAssign = after.type === 'assign';
        if (!pipe.isAssign) this.vars[this.vars.length - 1]!.push(v.val);
        else if (!this.hasVar(v.val)) this.fail(`undefined variable "${v.val}"`, v);
      } else if (after.type === 'comma' && context === 'range') {
        this.nextNonSpace();
        const v2 = this.nextNonSpace();
        const d = this.nextNonSpace();
        if (v2.type !== 'variable' || (d.type !== 'declare' && d.type !== 'assign'))
          this.fail('range can only initialize variables', v2);
        pipe.decl.push(v.val, v2.val);
        pipe.isAssign = d.type === 'assign';
        this.vars[this.vars.length - 1]!.push(v.val, v2.val);
      } else this.i = save;
    } else this.i = save;
    for (;;) {
      const it = this.peekNonSpace();
      if (it.type === end) {
        this.nextNonSpace();
        if (pipe.cmds.length === 0) this.fail(`missing value for ${context}`, it);
        for (let k = 1; k < pipe.cmds.length; k++) {
          const first = pipe.cmds[k]!.args[0]!;
          if (['bool', 'dot', 'nil', 'number', 'string'].includes(first.t))
            this.fail(`non executable command in pipeline stage ${k + 1}`, it);
        }
        return pipe;
      }
      if (it.type === 'eof' || it.type === 'rightDelim' || it.type === 'rightParen') this.unexpected(it, context);
      pipe.cmds.push(this.command(end));
    }
  }

  private command(end: 'rightDelim' | 'rightParen'): Cmd {
    const cmd: Cmd = { pos: this.peekNonSpace().pos, args: [] };
    for (;;) {
      this.peekNonSpace();
      const arg = this.operand();
      if (arg) cmd.args.push(arg);
      const it = this.next();
      switch (it.type) {
        case 'space':
          continue;
        case 'rightDelim':
        case 'rightParen':
          this.i--;
          break;
        case 'pipe':
          break;
        default:
          this.unexpected(it, 'operand');
      }
      if (it.type !== 'pipe' && it.type !== end) this.unexpected(it, 'command');
      if (cmd.args.length === 0) this.fail('empty command', it);
      return cmd;
    }
  }

  private hasVar(name: string): boolean {
    return this.vars[this.vars.length - 1]!.includes(name);
  }

  private operand(): Arg | undefined {
    const node = this.term();
    if (!node) return undefined;
    const fields: string[] = [];
    while (this.peek().type === 'field') fields.push(this.next().val.slice(1));
    if (!fields.length) return node;
    switch (node.t) {
      case 'field':
        return { ...node, idents: [...node.idents, ...fields] };
      case 'variable':
        return { ...node, idents: [...node.idents, ...fields] };
      case 'bool':
      case 'string':
      case 'number':
      case 'nil':
      case 'dot':
        return this.fail(`unexpected . after term "${argString(node)}"`);
      default:
        return { t: 'chain', pos: node.pos, node, fields };
    }
  }

  private term(): Arg | undefined {
    const it = this.nextNonSpace();
    switch (it.type) {
      case 'identifier':
        if (!(it.val in this.funcs)) this.fail(`function "${it.val}" not defined`, it);
        return { t: 'identifier', pos: it.pos, name: it.val };
      case 'dot':
        return { t: 'dot', pos: it.pos };
      case 'nil':
        return { t: 'nil', pos: it.pos };
      case 'variable':
        if (!this.hasVar(it.val)) this.fail(`undefined variable "${it.val}"`, it);
        return { t: 'variable', pos: it.pos, idents: [it.val] };
      case 'field':
        return { t: 'field', pos: it.pos, idents: [it.val.slice(1)] };
      case 'bool':
        return { t: 'bool', pos: it.pos, value: it.val === 'true' };
      case 'char':
        return { t: 'number', pos: it.pos, value: unquote(it.val, this).codePointAt(0)!, text: it.val };
      case 'number': {
        const n = parseGoNumber(it.val);
        if (n === undefined) this.fail(`illegal number syntax: "${it.val}"`, it);
        return { t: 'number', pos: it.pos, value: n, text: it.val };
      }
      case 'string':
        return { t: 'string', pos: it.pos, value: unquote(it.val, this), text: it.val };
      case 'rawString':
        return { t: 'string', pos: it.pos, value: it.val.slice(1, -1), text: it.val };
      case 'leftParen':
        return { t: 'pipe', pos: it.pos, pipe: this.pipeline('parenthesized pipeline', 'rightParen') };
      default:
        this.i--;
        return undefined;
    }
  }
}

function parseGoNumber(s: string): number | undefined {
  const t = s.replace(/_/g, '');
  const sign = t.startsWith('-') ? -1 : 1;
  const u = t.replace(/^[+-]/, '');
  let n: number;
  if (/^0[xX]/.test(u)) n = Number.parseInt(u.slice(2), 16);
  else if (/^0[bB]/.test(u)) n = Number.parseInt(u.slice(2), 2);
  else if (/^0[oO]/.test(u)) n = Number.parseInt(u.slice(2), 8);
  else if (/^0[0-7]+$/.test(u)) n = Number.parseInt(u, 8);
  else n = Number(u);
  return Number.isNaN(n) || u === '' ? undefined : sign * n;
}

function unquote(q: string, p: Parser): string {
  if (q.startsWith('`')) return q.slice(1, -1);
  const body = q.slice(1, -1);
  const simple: Record<string, string> = {
    a: '\x07',
    b: '\b',
    f: '\f',
    n: '\n',
    r: '\r',
    t: '\t',
    v: '\v',
    '\\': '\\',
    '"': '"',
    "'": "'",
  };
  return body.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)/g, (_m, e: string) => {
    if (e in simple) return simple[e]!;
    if (/^[xuU]/.test(e)) return String.fromCodePoint(Number.parseInt(e.slice(1), 16));
    if (/^[0-7]{3}$/.test(e)) return String.fromCodePoint(Number.parseInt(e, 8));
    return p.fail(`invalid syntax: ${q}`);
  });
}

// ---------------------------------------------------------------- values and Go's fmt

/** Go's type name for a value, as its errors and %T show it. */
export function goType(v: unknown): string {
  if (v === undefined || v === null) return '<nil>';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float64';
  if (typeof v === 'function') return 'func';
  if (Array.isArray(v)) return '[]interface {}';
  return structName(v) ?? 'map[string]interface {}';
}

const isMap = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && structName(v) === undefined;

/** Go's shortest %v of a float64. */
function goFloat(x: number): string {
  if (Number.isInteger(x) && Math.abs(x) < 1e21) return String(x);
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'NaN' : x > 0 ? '+Inf' : '-Inf';
  const [mant, e] = x.toExponential().split('e');
  const exp = Number(e);
  // strconv's shortest %g: exponent form below 1e-4 and from 1e6 on (integral values print as integers above)
  if (exp < -4 || exp >= 6) return `${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return x.toString();
}

function fmtExp(x: number, prec: number, upper: boolean): string {
  const [m, e] = x.toExponential(prec).split('e');
  const exp = Number(e);
  const s = `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return upper ? s.toUpperCase() : s;
}

function fmtG(x: number, prec: number, upper: boolean, sharp: boolean): string {
  if (prec === 0) prec = 1;
  const [m, e] = x.toExponential(prec - 1).split('e');
  const exp = Number(e);
  if (exp < -4 || exp >= prec) {
    const mant = sharp ? m! : m!.replace(/\.?0+$/, '');
    const s = `${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
    return upper ? s.toUpperCase() : s;
  }
  const f = x.toFixed(Math.max(0, prec - 1 - exp));
  return sharp || !f.includes('.') ? f : f.replace(/\.?0+$/, '');
}

/** x.toFixed(prec), but an exact tie rounds to even as Go's strconv does (2.25 -> 2.2), not up. */
function toFixedEven(x: number, prec: number): string {
  const s = x.toFixed(prec);
  if (prec + 60 > 100 || x >= 1e21) return s;
  const full = x.toFixed(prec + 60);
  const rest = full.slice(full.length - 60);
  if (!/^50*$/.test(rest)) return s;
  const down = full.slice(0, full.length - 60).replace(/\.$/, '');
  const last = Number(down[down.length - 1]);
  return last % 2 === 0 ? down : s;
}

/** strconv.Quote */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (c === 7) out += '\\a';
    else if (c === 8) out += '\\b';
    else if (c === 12) out += '\\f';
    else if (c === 10) out += '\\n';
    else if (c === 13) out += '\\r';
    else if (c === 9) out += '\\t';
    else if (c === 11) out += '\\v';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else if ((c >= 0x80 && c < 0xa0) || c === 0xfffd) out += '\\u' + c.toString(16).padStart(4, '0');
    else out += ch;
  }
  return out + '"';
}

interface Spec {
  minus: boolean;
  plus: boolean;
  sharp: boolean;
  space: boolean;
  zero: boolean;
  width?: number;
  prec?: number;
}
const plainSpec: Spec = { minus: false, plus: false, sharp: false, space: false, zero: false };

function pad(s: string, sp: Spec, numeric = false): string {
  if (sp.width === undefined || [...s].length >= sp.width) return s;
  const n = sp.width - [...s].length;
  if (sp.minus) return s + ' '.repeat(n);
  if (sp.zero && numeric) {
    const sign = /^[+\- ]/.test(s) ? s[0]! : '';
    return sign + '0'.repeat(n) + s.slice(sign.length);
  }
  return ' '.repeat(n) + s;
}

function badVerb(verb: string, v: unknown): string {
  if (v === undefined || v === null) return `%!${verb}(<nil>)`;
  return `%!${verb}(${goType(v)}=${formatValue(v, 'v', plainSpec)})`;
}

function signed(s: string, neg: boolean, sp: Spec): string {
  return (neg ? '-' : sp.plus ? '+' : sp.space ? ' ' : '') + s;
}

/** One operand under one verb, as Go's fmt prints it (without width padding for composites). */
function formatValue(v: unknown, verb: string, sp: Spec): string {
  if (verb === 'T') return pad(goType(v), sp);
  if (v === undefined || v === null) {
    return verb === 'v' || verb === 's' ? (verb === 'v' ? pad('<nil>', sp) : badVerb(verb, v)) : badVerb(verb, v);
  }
  if (Array.isArray(v)) {
    if (sp.sharp && verb === 'v') return gosyntax(v);
    return `[${v.map((e) => formatValue(e, verb, sp)).join(' ')}]`;
  }
  if (typeof v === 'object') {
    if (sp.sharp && verb === 'v') return gosyntax(v);
    const obj = v as Record<string, unknown>;
    const keys = Object.keys(obj).filter((k) => typeof obj[k] !== 'function');
    if (structName(v) !== undefined) {
      const fields = keys.map((k) => (sp.plus && verb === 'v' ? `${k}:` : '') + formatValue(obj[k], verb, sp));
      return `{${fields.join(' ')}}`;
    }
    return `map[${keys
      .sort()
      .map((k) => `${formatValue(k, verb, sp)}:${formatValue(obj[k], verb, sp)}`)
      .join(' ')}]`;
  }
  if (typeof v === 'boolean') return verb === 'v' || verb === 't' ? pad(String(v), sp) : badVerb(verb, v);
  if (typeof v === 'function') return verb === 'v' || verb === 'p' ? pad('0xc000010000', sp) : badVerb(verb, v);
  if (typeof v === 'number') return formatNumber(v, verb, sp);
  if (typeof v === 'string') return formatString(v, verb, sp);
  return pad(String(v), sp);
}

function gosyntax(v: unknown): string {
  if (v === undefined || v === null) return '<nil>';
  if (typeof v === 'string') return goQuote(v);
  if (Array.isArray(v)) return `[]interface {}{${v.map(gosyntax).join(', ')}}`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `map[string]interface {}{${Object.keys(o)
      .sort()
      .map((k) => `${goQuote(k)}:${gosyntax(o[k])}`)
      .join(', ')}}`;
  }
  return formatValue(v, 'v', plainSpec);
}

function formatNumber(x: number, verb: string, sp: Spec): string {
  const int = Number.isInteger(x);
  const neg = x < 0 || Object.is(x, -0);
  const a = Math.abs(x);
  switch (verb) {
    case 'v':
      if (sp.sharp && !int) return pad(goFloat(x), sp, true);
      return pad(int ? signed(String(a), x < 0, sp) : signed(goFloat(a), neg, sp), sp, true);
    case 'd':
    case 'b':
    case 'o':
    case 'O':
    case 'x':
    case 'X': {
      if (!int) {
        if (verb === 'x' || verb === 'X' || verb === 'b') break; // Go prints floats in hex/binary exponent forms
        return badVerb(verb, x);
      }
      const base = { d: 10, b: 2, o: 8, O: 8, x: 16, X: 16 }[verb]!;
      let digits = a.toString(base);
      if (verb === 'X') digits = digits.toUpperCase();
      if (sp.prec !== undefined) digits = sp.prec === 0 && a === 0 ? '' : digits.padStart(sp.prec, '0');
      const prefix =
        verb === 'O'
          ? '0o'
          : sp.sharp
            ? { d: '', b: '0b', o: '0', x: '0x', X: '0X' }[verb as 'd' | 'b' | 'o' | 'x' | 'X']
            : '';
      return pad(signed(prefix + digits, x < 0, sp), sp.prec !== undefined ? { ...sp, zero: false } : sp, true);
    }
    case 'c':
      return int ? pad(String.fromCodePoint(a), sp) : badVerb(verb, x);
    case 'q':
      return int ? pad(`'${String.fromCodePoint(a).replace(/['\\]/g, '\\$&')}'`, sp) : badVerb(verb, x);
    case 'U':
      return int ? pad('U+' + a.toString(16).toUpperCase().padStart(4, '0'), sp) : badVerb(verb, x);
    case 'e':
    case 'E':
      return pad(signed(fmtExp(a, sp.prec ?? 6, verb === 'E'), neg, sp), sp, true);
    case 'f':
    case 'F':
      return pad(signed(toFixedEven(a, sp.prec ?? 6), neg, sp), sp, true);
    case 'g':
    case 'G':
      return pad(
        signed(sp.prec === undefined ? goFloat(a) : fmtG(a, sp.prec, verb === 'G', sp.sharp), neg, sp),
        sp,
        true,
      );
  }
  return badVerb(verb, x);
}

function formatString(s: string, verb: string, sp: Spec): string {
  const clip = (t: string) => (sp.prec === undefined ? t : [...t].slice(0, sp.prec).join(''));
  switch (verb) {
    case 'v':
    case 's':
      return pad(clip(s), sp);
    case 'q':
      return pad(
        sp.sharp && !s.includes('`') && ![...s].some((ch) => (ch < ' ' && ch !== '\t') || ch === '\x7f')
          ? `\`${s}\``
          : goQuote(clip(s)),
        sp,
      );
    case 'x':
    case 'X': {
      const bytes = [...Buffer.from(clip(s), 'utf8')].map((b) => b.toString(16).padStart(2, '0'));
      const out = sp.space
        ? bytes.map((b) => (sp.sharp ? '0x' : '') + b).join(' ')
        : (sp.sharp ? '0x' : '') + bytes.join('');
      return pad(verb === 'X' ? out.toUpperCase() : out, sp);
    }
  }
  return badVerb(verb, s);
}

/** Go's fmt.Sprintf. */
export function sprintf(format: string, ...args: unknown[]): string {
  let out = '';
  let argi = 0;
  let i = 0;
  while (i < format.length) {
    const pct = format.indexOf('%', i);
    if (pct < 0) {
      out += format.slice(i);
      break;
    }
    out += format.slice(i, pct);
    i = pct + 1;
    const sp: Spec = { ...plainSpec };
    for (; i < format.length; i++) {
      const c = format[i];
      if (c === '-') sp.minus = true;
      else if (c === '+') sp.plus = true;
      else if (c === '#') sp.sharp = true;
      else if (c === ' ') sp.space = true;
      else if (c === '0') sp.zero = !sp.minus;
      else break;
    }
    const num = (): number | undefined => {
      if (format[i] === '*') {
        i++;
        const a = args[argi++];
        return typeof a === 'number' ? a : undefined;
      }
      const m = /^\d+/.exec(format.slice(i));
      if (!m) return undefined;
      i += m[0].length;
      return Number(m[0]);
    };
    const w = num();
    if (w !== undefined) {
      if (w < 0) {
        sp.minus = true;
        sp.width = -w;
      } else sp.width = w;
    }
    if (format[i] === '.') {
      i++;
      sp.prec = num() ?? 0;
    }
    if (sp.minus) sp.zero = false;
    const verb = format[i];
    if (verb === undefined) {
      out += '%!(NOVERB)';
      break;
    }
    i++;
    if (verb === '%') {
      out += '%';
      continue;
    }
    if (argi >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    const a = args[argi++];
    if ('vsdqxXobOcUeEfFgGtTp'.includes(verb)) {
      const s = formatValue(a, verb, sp);
      out += Array.isArray(a) || (typeof a === 'object' && a !== null) ? pad(s, sp) : s;
    } else out += badVerb(verb, a);
  }
  if (argi < args.length)
    out += `%!(EXTRA ${args
      .slice(argi)
      .map((a) => (a === undefined || a === null ? '<nil>' : `${goType(a)}=${formatValue(a, 'v', plainSpec)}`))
      .join(', ')})`;
  return out;
}

/** Go's fmt.Sprint: spaces between operands when neither side is a string. */
export function sprint(...args: unknown[]): string {
  let out = '';
  args.forEach((a, k) => {
    if (k > 0 && typeof a !== 'string' && typeof args[k - 1] !== 'string') out += ' ';
    out += formatValue(a, 'v', plainSpec);
  });
  return out;
}

export function sprintln(...args: unknown[]): string {
  return args.map((a) => formatValue(a, 'v', plainSpec)).join(' ') + '\n';
}

/** What {{.}} prints: Go's %v, and <no value> for a missing value. */
export function printValue(v: unknown): string {
  if (v === undefined) return '<no value>';
  return formatValue(v, 'v', plainSpec);
}

/** Go's template truth: false, 0, nil, the empty string, slice and map are false; structs are true. */
export function isTrue(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'string') return v.length > 0;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'function') return true;
  if (structName(v) !== undefined) return true;
  return Object.keys(v as object).length > 0;
}

// ---------------------------------------------------------------- functions

type Fn = ((...args: unknown[]) => unknown) & { arity?: number | [number, number?] };
const fn = (arity: number | [number, number?], f: (...args: never[]) => unknown): Fn => {
  const g = f as unknown as Fn;
  g.arity = arity;
  return g;
};

class CallError extends Error {}
const fail = (m: string): never => {
  throw new CallError(m);
};

const wantString = (v: unknown): string =>
  typeof v === 'string' ? v : fail(`wrong type for value; expected string; got ${goType(v)}`);
const wantInt = (v: unknown): number =>
  typeof v === 'number' && Number.isInteger(v) ? v : fail(`wrong type for value; expected int; got ${goType(v)}`);

function basicKind(v: unknown): 'bool' | 'int' | 'float' | 'string' | 'nil' | 'other' {
  if (v === undefined || v === null) return 'nil';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'string') return 'string';
  return 'other';
}

function eq(a: unknown, ...bs: unknown[]): boolean {
  if (bs.length === 0) fail('missing argument for comparison');
  const ka = basicKind(a);
  if (ka === 'other') fail('invalid type for comparison');
  for (const b of bs) {
    const kb = basicKind(b);
    if (ka === 'nil' || kb === 'nil') {
      if (ka === kb) return true;
      continue;
    }
    if (kb === 'other') fail('invalid type for comparison');
    const num = (k: string) => k === 'int' || k === 'float';
    if (ka !== kb && !(num(ka) && num(kb))) fail('incompatible types for comparison');
    if (a === b) return true;
  }
  return false;
}

function lt(a: unknown, b: unknown): boolean {
  const ka = basicKind(a);
  const kb = basicKind(b);
  if (ka === 'bool' || ka === 'other' || ka === 'nil' || kb === 'bool' || kb === 'other' || kb === 'nil')
    fail('invalid type for comparison');
  const num = (k: string) => k === 'int' || k === 'float';
  if (ka !== kb && !(num(ka) && num(kb))) fail('incompatible types for comparison');
  return (a as number | string) < (b as number | string);
}

function length(v: unknown): number {
  if (v === undefined) fail('len of untyped nil');
  if (v === null) fail('len of nil pointer');
  if (typeof v === 'string') return Buffer.byteLength(v);
  if (Array.isArray(v)) return v.length;
  if (isMap(v)) return Object.keys(v).length;
  return fail(`len of type ${goType(v)}`);
}

function index(item: unknown, ...keys: unknown[]): unknown {
  let v = item;
  for (const k of keys) {
    if (v === undefined || v === null) fail('index of untyped nil');
    if (Array.isArray(v) || typeof v === 'string') {
      if (typeof k !== 'number' || !Number.isInteger(k)) fail(`cannot index slice/array with type ${goType(k)}`);
      const n = k as number;
      const len = typeof v === 'string' ? Buffer.byteLength(v) : (v as unknown[]).length;
      if (n < 0 || n >= len) fail(`index out of range: ${n}`);
      v = typeof v === 'string' ? Buffer.from(v)[n] : (v as unknown[])[n];
    } else if (isMap(v)) {
      if (typeof k !== 'string') fail(`value has type ${goType(k)}; should be string`);
      v = Object.hasOwn(v, k as string) ? v[k as string] : undefined;
    } else fail(`can't index item of type ${goType(v)}`);
  }
  return v;
}

function slice(item: unknown, ...idx: unknown[]): unknown {
  if (item === undefined || item === null) fail('slice of untyped nil');
  if (idx.length > 3) fail(`too many slice indexes: ${idx.length}`);
  if (typeof item !== 'string' && !Array.isArray(item)) fail(`can't slice item of type ${goType(item)}`);
  const len = typeof item === 'string' ? Buffer.byteLength(item) : (item as unknown[]).length;
  const ix = idx.map((k) => {
    if (typeof k !== 'number' || !Number.isInteger(k)) fail(`cannot index slice/array with type ${goType(k)}`);
    if ((k as number) < 0 || (k as number) > len) fail(`index out of range: ${k}`);
    return k as number;
  });
  const [i = 0, j = len] = ix;
  if (j < i) fail(`invalid slice index: ${i} > ${j}`);
  if (typeof item === 'string') {
    if (ix.length === 3) fail('cannot 3-index slice a string');
    return Buffer.from(item).subarray(i, j).toString('utf8');
  }
  return (item as unknown[]).slice(i, j);
}

/** Go's strings.Title: the first letter of each word upper-cased. */
function title(s: string): string {
  let prev = ' ';
  let out = '';
  for (const ch of s) {
    out += /[\p{L}\p{Nd}_']/u.test(prev) ? ch : ch.toUpperCase();
    prev = ch;
  }
  return out;
}

/** docker's json: encoding/json without HTML escaping, no trailing newline. */
export function goJson(v: unknown): string {
  return JSON.stringify(v === undefined ? null : v, (_k, x) => (x === undefined ? null : x)) ?? 'null';
}

const toStrings = (v: unknown): string[] =>
  Array.isArray(v) ? v.map((e) => (typeof e === 'string' ? e : printValue(e))) : [wantString(v)];

export const builtins: Record<string, Fn> = {
  // and/or are evaluated lazily by the executor (Go 1.18+ short-circuits); these stand for their names
  and: fn([1], () => undefined),
  or: fn([1], () => undefined),
  not: fn(1, (v: unknown) => !isTrue(v)),
  len: fn(1, length),
  index: fn([1], index),
  slice: fn([1], slice),
  print: fn([0], sprint),
  println: fn([0], sprintln),
  printf: fn([1], (f: unknown, ...a: unknown[]) => sprintf(wantString(f), ...a)),
  eq: fn([1], eq),
  ne: fn(2, (a: unknown, b: unknown) => !eq(a, b)),
  lt: fn(2, lt),
  le: fn(2, (a: unknown, b: unknown) => lt(a, b) || eq(a, b)),
  gt: fn(2, (a: unknown, b: unknown) => !lt(a, b) && !eq(a, b)),
  ge: fn(2, (a: unknown, b: unknown) => !lt(a, b)),
  html: fn([0], (...a: unknown[]) =>
    sprint(...a).replace(
      /[<>&'"\0]/g,
      (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&#39;', '"': '&#34;', '\0': '\uFFFD' })[c]!,
    ),
  ),
  urlquery: fn([0], (...a: unknown[]) => encodeURIComponent(sprint(...a)).replace(/%20/g, '+')),
  call: fn([1], (f: unknown, ...a: unknown[]) =>
    typeof f === 'function' ? (f as Fn)(...a) : fail(`non-function of type ${goType(f)}`),
  ),
  // docker's (cli/templates)
  json: fn(1, goJson),
  join: fn(2, (a: unknown, sep: unknown) => toStrings(a).join(wantString(sep))),
  split: fn(2, (s: unknown, sep: unknown) => {
    const str = wantString(s);
    const sp = wantString(sep);
    return sp === '' ? [...str] : str.split(sp);
  }),
  lower: fn(1, (s: unknown) => wantString(s).toLowerCase()),
  upper: fn(1, (s: unknown) => wantString(s).toUpperCase()),
  title: fn(1, (s: unknown) => title(wantString(s))),
  truncate: fn(2, (s: unknown, n: unknown) => {
    const str = wantString(s);
    const len = wantInt(n);
    return Buffer.byteLength(str) < len ? str : Buffer.from(str).subarray(0, len).toString('utf8');
  }),
  pad: fn(3, (s: unknown, pre: unknown, suf: unknown) => {
    const str = wantString(s);
    return str === '' ? str : ' '.repeat(wantInt(pre)) + str + ' '.repeat(wantInt(suf));
  }),
};

// ---------------------------------------------------------------- execution

class Break {}
class Continue {}

export interface TemplateOptions {
  /** the template's name, as errors show it (docker's is "") */
  name?: string;
  /** 'error': a missing map key is an error rather than <no value> (Go's missingkey=error) */
  missingKey?: 'default' | 'error';
  /** more functions, by name */
  funcs?: Record<string, (...args: never[]) => unknown>;
}

export class Template {
  private readonly tree: Node[];
  private readonly funcs: Record<string, Fn>;
  private readonly name: string;
  private readonly missingKey: 'default' | 'error';

  constructor(
    readonly source: string,
    opts: TemplateOptions = {},
  ) {
    this.name = opts.name ?? '';
    this.missingKey = opts.missingKey ?? 'default';
    this.funcs = { ...builtins };
    for (const [k, f] of Object.entries(opts.funcs ?? {})) this.funcs[k] = f as Fn;
    const items = lex(source, (line, msg) => {
      throw new TemplateError(`template: ${this.name}:${line}: ${msg}`, 'parse');
    });
    this.tree = new Parser(items, this.name, this.funcs).parse();
  }

  execute(data: unknown): string {
    const out: string[] = [];
    new State(this, data, out).walkList(data, this.tree);
    return out.join('');
  }

  /** @internal */
  get internals() {
    return { funcs: this.funcs, name: this.name, missingKey: this.missingKey, source: this.source };
  }
}

class State {
  private vars: { name: string; value: unknown }[];
  private at: { pos: number; ctx: string } = { pos: 0, ctx: '' };
  private readonly funcs: Record<string, Fn>;
  constructor(
    private readonly tmpl: Template,
    data: unknown,
    private readonly out: string[],
  ) {
    this.vars = [{ name: '$', value: data }];
    this.funcs = tmpl.internals.funcs;
  }

  private errorf(msg: string): never {
    const { name, source } = this.tmpl.internals;
    const before = source.slice(0, this.at.pos);
    const nl = before.lastIndexOf('\n');
    const col = nl < 0 ? this.at.pos : this.at.pos - nl - 1;
    const line = 1 + before.split('\n').length - 1;
    throw new TemplateError(
      `template: ${name}:${line}:${col}: executing ${goQuote(name)} at <${this.at.ctx}>: ${msg}`,
      'exec',
    );
  }
  private setAt(pos: number, ctx: string) {
    this.at = { pos, ctx };
  }

  walkList(dot: unknown, list: Node[]): void {
    for (const n of list) this.walk(dot, n);
  }

  private walk(dot: unknown, n: Node): void {
    switch (n.t) {
      case 'text':
        this.out.push(n.text);
        return;
      case 'action': {
        const mark = this.vars.length;
        const v = this.evalPipeline(dot, n.pipe);
        if (n.pipe.decl.length === 0) this.out.push(printValue(v));
        if (n.pipe.isAssign || n.pipe.decl.length === 0) this.vars.length = mark;
        return;
      }
      case 'break':
        throw new Break();
      case 'continue':
        throw new Continue();
      case 'if':
      case 'with': {
        const mark = this.vars.length;
        const v = this.evalPipeline(dot, n.pipe);
        if (isTrue(v)) this.walkList(n.t === 'with' ? v : dot, n.list);
        else if (n.elseList) this.walkList(dot, n.elseList);
        this.vars.length = mark;
        return;
      }
      case 'range':
        return this.walkRange(dot, n);
    }
  }

  private walkRange(dot: unknown, n: ControlNode): void {
    const mark = this.vars.length;
    const v = this.evalPipeline(dot, n.pipe, true);
    const one = (key: unknown, elem: unknown): boolean => {
      if (!n.pipe.isAssign) this.vars.length = mark;
      if (n.pipe.decl.length === 1) this.setVar(n.pipe.decl[0]!, elem, n.pipe.isAssign);
      else if (n.pipe.decl.length === 2) {
        this.setVar(n.pipe.decl[0]!, key, n.pipe.isAssign);
        this.setVar(n.pipe.decl[1]!, elem, n.pipe.isAssign);
      }
      const inner = this.vars.length;
      try {
        this.walkList(elem, n.list);
      } catch (e) {
        if (e instanceof Break) return false;
        if (!(e instanceof Continue)) throw e;
      } finally {
        this.vars.length = inner;
      }
      return true;
    };
    let ran = false;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        ran = true;
        if (!one(i, v[i])) break;
      }
    } else if (typeof v === 'number' && Number.isInteger(v)) {
      if (n.pipe.decl.length > 1) {
        this.setAt(n.pos, 'range');
        this.errorf(`can't use ${v} to iterate over more than one variable`);
      }
      for (let i = 0; i < v; i++) {
        ran = true;
        if (!one(i, i)) break;
      }
    } else if (isMap(v)) {
      for (const k of Object.keys(v).sort()) {
        ran = true;
        if (!one(k, v[k])) break;
      }
    } else if (v !== undefined && v !== null) {
      this.setAt(n.pipe.pos, pipeString(n.pipe));
      this.errorf(`range can't iterate over ${printValue(v)}`);
    }
    if (!ran && n.elseList) this.walkList(dot, n.elseList);
    this.vars.length = mark;
  }

  private setVar(name: string, value: unknown, assign: boolean): void {
    if (assign) {
      for (let i = this.vars.length - 1; i >= 0; i--)
        if (this.vars[i]!.name === name) {
          this.vars[i]!.value = value;
          return;
        }
    }
    this.vars.push({ name, value });
  }

  private evalPipeline(dot: unknown, pipe: Pipe, isRange = false): unknown {
    let value: unknown = MISSING;
    for (const cmd of pipe.cmds) value = this.evalCommand(dot, cmd, value);
    if (!isRange) for (const d of pipe.decl) this.setVar(d, value, pipe.isAssign);
    return value;
  }

  private evalCommand(dot: unknown, cmd: Cmd, final: unknown): unknown {
    const first = cmd.args[0]!;
    switch (first.t) {
      case 'field':
        return this.evalFieldChain(dot, dot, first, first.idents, cmd.args, final);
      case 'chain': {
        const base = this.evalArg(dot, first.node);
        return this.evalFieldChain(dot, base, first, first.fields, cmd.args, final);
      }
      case 'identifier':
        return this.evalFunction(dot, first, cmd, final);
      case 'pipe':
        this.notAFunction(cmd.args, final);
        return this.evalPipeline(dot, first.pipe);
      case 'variable':
        return this.evalVariable(dot, first, cmd.args, final);
    }
    this.setAt(first.pos, argString(first));
    this.notAFunction(cmd.args, final);
    switch (first.t) {
      case 'bool':
      case 'number':
      case 'string':
        return first.value;
      case 'dot':
        return dot;
      case 'nil':
        return this.errorf('nil is not a command');
    }
    return undefined;
  }

  private notAFunction(args: Arg[], final: unknown): void {
    if (args.length > 1 || final !== MISSING) this.errorf(`can't give argument to non-function ${argString(args[0]!)}`);
  }

  private lookupVar(name: string): unknown {
    for (let i = this.vars.length - 1; i >= 0; i--) if (this.vars[i]!.name === name) return this.vars[i]!.value;
    return this.errorf(`undefined variable: ${name}`);
  }

  private evalVariable(dot: unknown, v: Extract<Arg, { t: 'variable' }>, args: Arg[], final: unknown): unknown {
    this.setAt(v.pos, argString(v));
    const value = this.lookupVar(v.idents[0]!);
    if (v.idents.length === 1) {
      this.notAFunction(args, final);
      return value;
    }
    return this.evalFieldChain(dot, value, v, v.idents.slice(1), args, final);
  }

  private evalFieldChain(dot: unknown, receiver: unknown, node: Arg, idents: string[], args: Arg[], final: unknown) {
    this.setAt(node.pos, argString(node));
    let r = receiver;
    for (let i = 0; i < idents.length - 1; i++) r = this.evalField(dot, idents[i]!, node, [], MISSING, r);
    return this.evalField(dot, idents[idents.length - 1]!, node, args, final, r);
  }

  private evalField(dot: unknown, name: string, node: Arg, args: Arg[], final: unknown, receiver: unknown): unknown {
    this.setAt(node.pos, argString(node));
    const hasArgs = args.length > 1 || final !== MISSING;
    if (receiver === undefined || receiver === MISSING) {
      if (this.tmpl.internals.missingKey === 'error') this.errorf(`nil data; no entry for key ${goQuote(name)}`);
      return undefined;
    }
    if (receiver === null) return this.errorf(`nil pointer evaluating interface {}.${name}`);
    const sname = structName(receiver);
    if (sname !== undefined) {
      const obj = receiver as Record<string, unknown>;
      if (!(name in obj)) return this.errorf(`can't evaluate field ${name} in type ${sname}`);
      const m = obj[name];
      if (typeof m === 'function') return this.evalCall(dot, m as Fn, name, node, args, final, false);
      if (hasArgs) this.errorf(`${name} has arguments but cannot be invoked as function`);
      return m;
    }
    if (isMap(receiver)) {
      if (hasArgs) this.errorf(`${name} is not a method but has arguments`);
      if (Object.hasOwn(receiver, name)) return receiver[name];
      if (this.tmpl.internals.missingKey === 'error') this.errorf(`map has no entry for key ${goQuote(name)}`);
      return undefined;
    }
    return this.errorf(`can't evaluate field ${name} in type ${goType(receiver)}`);
  }

  private evalFunction(dot: unknown, id: Extract<Arg, { t: 'identifier' }>, cmd: Cmd, final: unknown): unknown {
    this.setAt(id.pos, id.name);
    const f = this.funcs[id.name];
    if (!f) return this.errorf(`"${id.name}" is not a defined function`);
    const cmdNode: Arg = { t: 'identifier', pos: cmd.pos, name: cmdString(cmd) };
    if (id.name === 'and' || id.name === 'or') {
      const argNodes = cmd.args.slice(1);
      if (argNodes.length === 0 && final === MISSING)
        this.errorf(`wrong number of args for ${id.name}: want at least 1 got 0`);
      let v: unknown;
      const n = argNodes.length + (final !== MISSING ? 1 : 0);
      for (let i = 0; i < n; i++) {
        v = i < argNodes.length ? this.evalArg(dot, argNodes[i]!) : final;
        if (isTrue(v) === (id.name === 'or')) return v;
      }
      return v;
    }
    return this.evalCall(dot, f, id.name, cmdNode, cmd.args, final, true, id);
  }

  private evalCall(
    dot: unknown,
    f: Fn,
    name: string,
    node: Arg,
    args: Arg[],
    final: unknown,
    builtin: boolean,
    id?: Arg,
  ): unknown {
    const argv = args.slice(1).map((a) => this.evalArg(dot, a));
    if (final !== MISSING) argv.push(final);
    const arity = f.arity ?? (builtin ? [0] : f.length);
    const [min, max] = typeof arity === 'number' ? [arity, arity] : [arity[0], arity[1] ?? Infinity];
    if (argv.length < min || argv.length > max) {
      if (id) this.setAt(id.pos, argString(id));
      this.errorf(
        `wrong number of args for ${name}: want ${max === Infinity ? 'at least ' : ''}${min} got ${argv.length}`,
      );
    }
    const call = builtin
      ? argv.map((a) => (a === undefined ? (['index', 'len', 'eq', 'ne', 'slice'].includes(name) ? a : null) : a))
      : argv;
    try {
      return f(...call);
    } catch (e) {
      if (e instanceof TemplateError || e instanceof Break || e instanceof Continue) throw e;
      this.setAt(node.pos, argString(node));
      const msg = e instanceof Error ? e.message : String(e);
      if (e instanceof CallError && msg.startsWith('wrong type for value')) this.errorf(msg);
      return this.errorf(`error calling ${name}: ${msg}`);
    }
  }

  private evalArg(dot: unknown, a: Arg): unknown {
    this.setAt(a.pos, argString(a));
    switch (a.t) {
      case 'dot':
        return dot;
      case 'nil':
        return null;
      case 'bool':
      case 'number':
      case 'string':
        return a.value;
      case 'field':
        return this.evalFieldChain(dot, dot, a, a.idents, [a], MISSING);
      case 'variable':
        return this.evalVariable(dot, a, [a], MISSING);
      case 'pipe':
        return this.evalPipeline(dot, a.pipe);
      case 'identifier':
        return this.evalFunction(dot, a, { pos: a.pos, args: [a] }, MISSING);
      case 'chain':
        return this.evalFieldChain(dot, this.evalArg(dot, a.node), a, a.fields, [a], MISSING);
    }
  }
}

const MISSING: unknown = Symbol('missing');

/** Parse and run `source` over `data` in one step. */
export function executeTemplate(source: string, data: unknown, opts?: TemplateOptions): string {
  return new Template(source, opts).execute(data);
}
