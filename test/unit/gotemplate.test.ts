import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  executeTemplate as run,
  goStruct,
  sprintf,
  sprint,
  sprintln,
  TemplateError,
} from '../../src/common/gotemplate.js';
import { dockerBytes, dockerHumanSize, formatItems, parseFormat, tabwrite } from '../../src/cli/format.js';

// Expectations are what Go's text/template (and docker's template functions) print for the same input.
const data = {
  A: { B: 'b', N: null },
  L: [1, 'two', { k: 'v' }],
  M: { z: 1, a: 2 },
  S: 'hello world',
  F: 1.5,
  E: [],
  Labels: { 'com.example': 'x' },
};

const err = (src: string, d: unknown = data): string => {
  try {
    run(src, d);
  } catch (e) {
    assert.ok(e instanceof TemplateError, String(e));
    return e.message;
  }
  throw new Error(`${src} did not fail`);
};

describe('Go text/template', () => {
  const cases: [string, string][] = [
    ['{{.A.B}}', 'b'],
    ['{{ .A.B }}', 'b'],
    ['{{.Missing}}', '<no value>'],
    ['{{.A.Missing}}', '<no value>'],
    ['{{.Labels.nope}}', '<no value>'],
    ['{{index .Labels "com.example"}}', 'x'],
    ['{{.A.N}}', '<nil>'],
    ['{{.L}}', '[1 two map[k:v]]'],
    ['{{.M}}', 'map[a:2 z:1]'],
    ['{{.E}}', '[]'],
    ['{{.F}}', '1.5'],
    ['{{json .A}}', '{"B":"b","N":null}'],
    ['{{json .S}}', '"hello world"'],
    ['{{json "<&>"}}', '"<&>"'],
    ['{{range $i, $v := .L}}{{$i}}={{$v}} {{end}}', '0=1 1=two 2=map[k:v] '],
    ['{{range .M}}{{.}},{{end}}', '2,1,'],
    ['{{range $k, $v := .M}}{{$k}}:{{$v}};{{end}}', 'a:2;z:1;'],
    ['{{range $v := .L}}{{$v}};{{end}}', '1;two;map[k:v];'],
    ['{{range .E}}x{{else}}empty{{end}}', 'empty'],
    ['{{range .Missing}}x{{else}}none{{end}}', 'none'],
    ['{{range 3}}{{.}}{{end}}', '012'],
    ['{{range .L}}{{if eq (printf "%v" .) "1"}}{{continue}}{{end}}{{.}}{{break}}{{end}}', 'two'],
    ['{{range .L}}{{$}}{{break}}{{end}}'.replace('{{$}}', '{{$.S}}'), 'hello world'],
    ['{{if eq .A.B "b"}}yes{{else}}no{{end}}', 'yes'],
    ['{{if .E}}a{{else if .F}}f{{else}}no{{end}}', 'f'],
    ['{{if not .S}}a{{else if .E}}e{{else}}no{{end}}', 'no'],
    ['{{with .A}}{{.B}}{{end}}', 'b'],
    ['{{with .E}}x{{else}}empty{{end}}', 'empty'],
    ['{{with .E}}x{{else with .S}}{{.}}{{end}}', 'hello world'],
    ['{{- 3 -}}  {{4}}', '34'],
    ['a  {{- /* c */ -}}  b', 'ab'],
    ['a {{/* comment */}} b', 'a  b'],
    ['x\n  {{- .A.B}}\n', 'xb\n'],
    ['{{.S | upper}}', 'HELLO WORLD'],
    ['{{.S | printf "%s!"}}', 'hello world!'],
    ['{{title .S}}', 'Hello World'],
    ['{{lower "ABC"}}', 'abc'],
    ['{{split .S " "}}', '[hello world]'],
    ['{{join (split .S " ") ","}}', 'hello,world'],
    ['{{truncate .S 3}}|{{pad .S 1 2}}|{{pad "" 1 1}}|', 'hel| hello world  ||'],
    ['{{len .S}} {{len .L}} {{len .M}}', '11 3 2'],
    ['{{index .L 1}} {{index .M "a"}}', 'two 2'],
    ['{{index .M "q"}}', '<no value>'],
    ['{{slice .S 1 3}} {{slice .L 1}}', 'el [two map[k:v]]'],
    ['{{$x := 5}}{{$x}}{{$x = 6}}{{$x}}', '56'],
    ['{{$}}'.replace('{{$}}', '{{$.A.B}}'), 'b'],
    ['{{and 1 0}} {{and 1 2}} {{or 0 "" "z"}} {{or 0 ""}} {{not .E}}', '0 2 z  true'],
    ['{{print 1 2 "a" 3 "b" "c"}}', '1 2a3bc'],
    ['{{println 1 "a"}}', '1 a\n'],
    ['{{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1 2}} {{ne 1 2}}', 'true true true false true'],
    ['{{eq .S "x" "hello world"}}', 'true'],
    ['{{eq .Missing nil}}', 'true'],
    ['{{"quoted\\tstring"}} {{`raw\\t`}} {{true}} {{print nil}}', 'quoted\tstring raw\\t true <nil>'],
    ["{{0x1F}} {{1_000}} {{-3}} {{'a'}}", '31 1000 -3 97'],
    ['{{(index .L 2).k}}', 'v'],
    ['{{printf "%5.2f|%-6s|%q|%x|%d|%v" 3.14159 "ab" "q" 255 7 .L}}', ' 3.14|ab    |"q"|ff|7|[1 two map[k:v]]'],
    ['{{printf "%s" .Missing}}', '%!s(<nil>)'],
    ['{{.F | printf "%.3f"}}', '1.500'],
  ];
  for (const [src, want] of cases) test(src, () => assert.equal(run(src, data), want));

  test('structs: unknown fields are errors, methods take arguments, structs are always true', () => {
    const ctx = goStruct('*formatter.ContainerContext', {
      Names: 'web',
      Label: (k: string) => (k === 'a' ? 'x' : ''),
    });
    assert.equal(run('{{.Names}} {{.Label "a"}}|{{.Label "b"}}|', ctx), 'web x||');
    assert.equal(run('{{if .}}t{{end}}', goStruct('T', {})), 't');
    assert.equal(
      err('{{.Nope}}', ctx),
      'template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type *formatter.ContainerContext',
    );
    assert.equal(run('{{json .}}', ctx), '{"Names":"web"}');
  });

  test('missingkey=error', () => {
    assert.throws(
      () => run('{{.Foo}}', {}, { missingKey: 'error' }),
      (e: Error) => e.message === 'template: :1:2: executing "" at <.Foo>: map has no entry for key "Foo"',
    );
  });

  test('parse errors, worded as Go words them', () => {
    assert.equal(err('{{.Foo'), 'template: :1: unclosed action');
    assert.equal(err('{{.Foo}'), "template: :1: bad character U+007D '}'");
    assert.equal(err('{{foo}}'), 'template: :1: function "foo" not defined');
    assert.equal(err('{{if}}'), 'template: :1: missing value for if');
    assert.equal(err('{{end}}'), 'template: :1: unexpected {{end}}');
    assert.equal(err('{{else}}'), 'template: :1: unexpected {{else}}');
    assert.equal(err('{{if .A}}'), 'template: :1: unexpected EOF');
    assert.equal(err('a\n{{$y}}'), 'template: :2: undefined variable "$y"');
    assert.equal(err('{{.A | 3}}'), 'template: :1: non executable command in pipeline stage 2');
    assert.equal(err('{{"abc}}'), 'template: :1: unterminated quoted string');
    assert.equal(err('{{/* x }}'), 'template: :1: unclosed comment');
    assert.equal(err('{{break}}'), 'template: :1: {{break}} outside {{range}}');
  });

  test('execution errors, worded as Go words them', () => {
    assert.equal(err('{{.A.N.X}}'), 'template: :1:2: executing "" at <.A.N.X>: nil pointer evaluating interface {}.X');
    assert.equal(
      err('{{index .L 9}}'),
      'template: :1:2: executing "" at <index .L 9>: error calling index: index out of range: 9',
    );
    assert.equal(err('{{len 3}}'), 'template: :1:2: executing "" at <len 3>: error calling len: len of type int');
    assert.equal(err('{{len}}'), 'template: :1:2: executing "" at <len>: wrong number of args for len: want 1 got 0');
    assert.equal(err('x {{.S.X}}'), 'template: :1:4: executing "" at <.S.X>: can\'t evaluate field X in type string');
    assert.equal(
      err('{{eq .L 1}}'),
      'template: :1:2: executing "" at <eq .L 1>: error calling eq: invalid type for comparison',
    );
    assert.equal(
      err('{{eq .S 1}}'),
      'template: :1:2: executing "" at <eq .S 1>: error calling eq: incompatible types for comparison',
    );
    assert.equal(
      err('{{upper 5}}'),
      'template: :1:2: executing "" at <upper 5>: wrong type for value; expected string; got int',
    );
    assert.equal(
      err('{{range .S}}{{end}}'),
      'template: :1:8: executing "" at <.S>: range can\'t iterate over hello world',
    );
    assert.equal(err('{{3 4}}'), 'template: :1:2: executing "" at <3>: can\'t give argument to non-function 3');
    assert.equal(err('{{.A.B 1}}'), 'template: :1:2: executing "" at <.A.B>: B is not a method but has arguments');
  });
});

describe("Go's fmt", () => {
  const cases: [string, unknown[], string][] = [
    ['%d|%5d|%-5d|%05d|%+d|% d', [42, 42, 42, -42, 5, 5], '42|   42|42   |-0042|+5| 5'],
    ['%x|%X|%#x|%o|%b|%c|%U', [255, 255, 255, 8, 5, 65, 0x1f600], 'ff|FF|0xff|10|101|A|U+1F600'],
    [
      '%s|%10s|%-10s|%.2s|%q|%x',
      ['go', 'go', 'go', 'golang', 'a"b\n', 'hi'],
      'go|        go|go        |go|"a\\"b\\n"|6869',
    ],
    [
      '%f|%.2f|%8.3f|%-8.1f|%08.3f',
      [3.14159, 3.14159, 3.14159, 3.14159, -3.14159],
      '3.141590|3.14|   3.142|3.1     |-003.142',
    ],
    ['%e|%E|%.2e', [123456.789, 0.000123, 1500], '1.234568e+05|1.230000E-04|1.50e+03'],
    [
      '%g|%g|%.3g|%g|%v',
      [0.000012345, 1e21, 1234.5678, 100000.5, 1234567.5],
      '1.2345e-05|1e+21|1.23e+03|100000.5|1.2345675e+06',
    ],
    ['%t|%v|%v|%v|%v', [true, null, [1, 'a'], { b: 1, a: [true] }, 'x'], 'true|<nil>|[1 a]|map[a:[true] b:1]|x'],
    ['%s|%d|%t', [[1, 2], 'x', 1], '[%!s(int=1) %!s(int=2)]|%!d(string=x)|%!t(int=1)'],
    ['%d %d', [1], '1 %!d(MISSING)'],
    ['%d', [1, 'a'], '1%!(EXTRA string=a)'],
    ['100%%|%z', [1], '100%|%!z(int=1)'],
    ['%T %T %T %T', ['a', 1, 1.5, [1]], 'string int float64 []interface {}'],
    ['%*d|%.*f', [5, 1, 1, 2.25], '    1|2.2'],
  ];
  for (const [f, args, want] of cases)
    test(`Sprintf(${JSON.stringify(f)})`, () => assert.equal(sprintf(f, ...args), want));

  test('Sprint and Sprintln', () => {
    assert.equal(sprint('a', 1, 2, 'b'), 'a1 2b');
    assert.equal(sprintln('a', 1), 'a 1\n');
  });
});

describe("docker's --format conventions", () => {
  const headers = { ID: 'CONTAINER ID', Names: 'NAMES', Status: 'STATUS' };
  const rows = [
    goStruct('C', { ID: 'abc', Names: 'web', Status: 'Up 2 seconds' }),
    goStruct('C', { ID: 'abcdef123456', Names: 'db', Status: 'Exited (0) 1 second ago' }),
  ];
  const fmt = (f: string) => {
    const p = parseFormat(f);
    assert.notEqual(p.kind, 'default');
    return formatItems(p as Exclude<typeof p, { kind: 'default' }>, rows, headers);
  };

  test('table and json keywords', () => {
    assert.equal(parseFormat(undefined).kind, 'default');
    assert.equal(parseFormat('table').kind, 'default');
    assert.equal(
      fmt('json'),
      '{"ID":"abc","Names":"web","Status":"Up 2 seconds"}\n{"ID":"abcdef123456","Names":"db","Status":"Exited (0) 1 second ago"}\n',
    );
  });

  test('a template per item, \\t and \\n written literally become tab and newline', () => {
    assert.equal(fmt('{{.Names}}\\t{{.ID}}'), 'web\tabc\ndb\tabcdef123456\n');
    assert.equal(fmt('  {{.Names}}  '), 'web\ndb\n');
  });

  test('table TEMPLATE: docker headers, columns as tabwriter (minwidth 10, padding 3)', () => {
    assert.equal(
      fmt('table {{.ID}}\\t{{.Names}}\\t{{.Status}}'),
      'CONTAINER ID   NAMES     STATUS\nabc            web       Up 2 seconds\nabcdef123456   db        Exited (0) 1 second ago\n',
    );
    assert.equal(fmt('table {{.Names | upper}}'), 'NAMES\nWEB\nDB\n');
  });

  test('a bad template is one error in docker words', () => {
    assert.throws(
      () => parseFormat('{{.ID'),
      /^TemplateFormatError: template parsing error: template: :1: unclosed action$/,
    );
    assert.throws(
      () => fmt('{{.Nope}}'),
      /template parsing error: template: :1:2: executing "" at <.Nope>: can't evaluate field Nope in type C/,
    );
  });

  test('tabwriter: column blocks end where a line has fewer cells', () => {
    assert.equal(tabwrite('a\tb\tc\nlonger cell\tx\n'), 'a             b         c\nlonger cell   x\n');
    assert.equal(tabwrite('aa\tb\nno tabs here\nc\td\n'), 'aa        b\nno tabs here\nc         d\n');
  });

  test("docker's size units", () => {
    assert.equal(dockerBytes(64 * 1024 * 1024), '64MiB');
    assert.equal(dockerBytes(1.5 * 1024 * 1024), '1.5MiB');
    assert.equal(dockerBytes(1234567), '1.177MiB');
    assert.equal(dockerHumanSize(1234), '1.23kB');
    assert.equal(dockerHumanSize(0), '0B');
    assert.equal(dockerHumanSize(4_400_000), '4.4MB');
  });
});
