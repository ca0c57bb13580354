// The Containerfile front end: lexing, every instruction form, substitution, ARG scoping, stages,
// --target, cache keys, and .containerignore/.dockerignore matching. Pure parsing: no host needed.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ContainerfileError,
  compileIgnore,
  loadIgnore,
  parseContainerfile,
  parseDuration,
  parseIgnoreFile,
  type BuildPlan,
  type Instruction,
  type ParseOptions,
  type RunInstruction,
} from '../src/image/containerfile.js';
import { InvalidArgumentError } from '../src/common/errors.js';

const F = 'Containerfile';
const parse = (text: string, opts: Partial<ParseOptions> = {}): BuildPlan =>
  parseContainerfile(text, { file: F, platform: 'linux/amd64', buildPlatform: 'linux/amd64', ...opts });
/** The instructions of the last stage of `FROM scratch\n` + body. */
const body = (text: string, opts: Partial<ParseOptions> = {}): Instruction[] =>
  parse(`FROM scratch\n${text}`, opts).stages.at(-1)!.instructions;
const one = <K extends Instruction['kind']>(kind: K, text: string, opts: Partial<ParseOptions> = {}) => {
  const ins = body(text, opts);
  const i = ins.at(-1)!;
  assert.equal(i.kind, kind);
  return i as Instruction & { kind: K };
};
function fails(text: string, prefix: string, re: RegExp, opts: Partial<ParseOptions> = {}): void {
  assert.throws(
    () => parse(text, opts),
    (e: unknown) => {
      assert.ok(e instanceof ContainerfileError, `not a ContainerfileError: ${String(e)}`);
      assert.ok(e instanceof InvalidArgumentError);
      assert.equal(e.code, 'HULL_CONTAINERFILE');
      assert.ok(e.message.startsWith(prefix), `"${e.message}" should start with "${prefix}"`);
      assert.match(e.message, re);
      assert.ok(!e.message.includes('\n'), 'one line');
      return true;
    },
  );
}

describe('lexing', () => {
  test('comments, blank lines, continuations and line numbers', () => {
    const p = parse('# a comment\n\nFROM scratch\nRUN echo a \\\n  # inner comment\n    b \\\n\n  c\nUSER me\n');
    const [run, user] = p.stages[0]!.instructions;
    assert.equal(run!.line, 4);
    assert.equal(run!.endLine, 8);
    assert.deepEqual((run as { argv: string[] }).argv, ['/bin/sh', '-c', 'echo a     b   c']);
    assert.equal(user!.line, 9);
    assert.ok(p.warnings.some((w) => /empty continuation/.test(w)));
  });
  test('instruction keywords are case-insensitive; CRLF line ends', () => {
    const p = parse('from scratch\r\nrun echo hi\r\n');
    assert.equal(p.stages[0]!.instructions[0]!.kind, 'RUN');
  });
  test('# escape=` directive changes the continuation and escape character', () => {
    const p = parse('# escape=`\nFROM scratch\nRUN dir c:\\ `\n  /s\nWORKDIR c:\\\\x\nENV A=`$B\n');
    const [run, , env] = p.stages[0]!.instructions;
    assert.deepEqual((run as { argv: string[] }).argv.at(-1), 'dir c:\\   /s');
    assert.equal(p.escape, '`');
    assert.deepEqual((env as { env: unknown }).env, [['A', '$B']]);
  });
  test('# syntax= is accepted and ignored; directives after an instruction are comments', () => {
    const p = parse('# syntax=docker/dockerfile:1\nFROM scratch\n# escape=`\nRUN a \\\n b\n');
    assert.equal(p.escape, '\\');
    assert.equal(p.stages[0]!.instructions.length, 1);
  });
  test('a trailing continuation at end of file ends the instruction', () => {
    assert.equal(one('RUN', 'RUN echo \\').argv.at(-1), 'echo');
  });
});

describe('FROM and stages', () => {
  test('image, scratch, AS name, --platform', () => {
    const p = parse('FROM --platform=linux/arm64 alpine:3.19 AS Base\nFROM scratch\nFROM base as next\n');
    assert.deepEqual(
      p.stages.map((s) => s.base),
      [{ kind: 'image', ref: 'alpine:3.19' }, { kind: 'scratch' }, { kind: 'stage', index: 0 }],
    );
    assert.equal(p.stages[0]!.name, 'base');
    assert.equal(p.stages[0]!.platform, 'linux/arm64');
    assert.equal(p.stages[2]!.name, 'next');
    assert.equal(p.target, 2);
    assert.deepEqual(
      p.stages.map((s) => s.used),
      [true, false, true],
    );
  });
  test('global ARGs and platform args in FROM', () => {
    const p = parse('ARG TAG=3.19\nARG REG\nFROM ${REG:-docker.io}/library/alpine:$TAG-$TARGETARCH\n', {
      buildArgs: { TAG: '3.20' },
    });
    assert.deepEqual(p.stages[0]!.base, { kind: 'image', ref: 'docker.io/library/alpine:3.20-amd64' });
    assert.deepEqual(p.globalArgs, [{ name: 'TAG', value: '3.20' }, { name: 'REG' }]);
    assert.match(p.stages[0]!.cacheKey, /"TAG":"3.20"/);
  });
  test('a stage inherits ENV, WORKDIR and SHELL from its base stage, not ARGs', () => {
    const p = parse(
      'FROM scratch AS a\nARG X=1\nENV E=e\nWORKDIR /w\nSHELL ["/bin/bash", "-c"]\nFROM a\nWORKDIR sub\nENV F=$E$X\nRUN hi\n',
    );
    const [wd, env, run] = p.stages[1]!.instructions;
    assert.equal((wd as { path: string }).path, '/w/sub');
    assert.deepEqual((env as { env: unknown }).env, [['F', 'e']]);
    assert.deepEqual((run as { argv: string[] }).argv, ['/bin/bash', '-c', 'hi']);
  });
  test('baseConfig supplies the image ENV, WORKDIR and SHELL', () => {
    const p = parse('FROM alpine\nENV PATH=/app/bin:$PATH\nWORKDIR x\n', {
      baseConfig: (ref) => (ref === 'alpine' ? { Env: ['PATH=/usr/bin:/bin'], WorkingDir: '/srv' } : undefined),
    });
    assert.equal(p.stages[0]!.baseConfigResolved, true);
    const [env, wd] = p.stages[0]!.instructions;
    assert.deepEqual((env as { env: unknown }).env, [['PATH', '/app/bin:/usr/bin:/bin']]);
    assert.equal((wd as { path: string }).path, '/srv/x');
    assert.equal(parse('FROM alpine\n').stages[0]!.baseConfigResolved, false);
  });
  test('scratch has the default PATH for substitution', () => {
    assert.deepEqual(one('ENV', 'ENV P=$PATH').env, [
      ['P', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    ]);
  });
});

describe('target and unused stages', () => {
  const text =
    'FROM scratch AS deps\nFROM scratch AS tools\nFROM scratch AS build\nCOPY --from=deps /a /a\nFROM scratch AS test\nCOPY --from=tools /t /t\nFROM build AS final\n';
  test('without a target, the last stage; unneeded stages are unused', () => {
    const p = parse(text);
    assert.equal(p.target, 4);
    assert.deepEqual(
      p.stages.map((s) => [s.name, s.used]),
      [
        ['deps', true],
        ['tools', false],
        ['build', true],
        ['test', false],
        ['final', true],
      ],
    );
    assert.deepEqual(p.stages[2]!.dependsOn, [0]);
  });
  test('--target cuts the plan at the stage', () => {
    const p = parse(text, { target: 'test' });
    assert.equal(p.target, 3);
    assert.equal(p.stages.length, 4);
    assert.deepEqual(
      p.stages.map((s) => s.used),
      [false, true, false, true],
    );
  });
  test('unknown target lists the stages', () => {
    fails(
      text,
      `${F}:1: `,
      /target stage "tets" not found \(did you mean "test"\?\); the stages are: deps, tools, build, test, final/,
      { target: 'tets' },
    );
    fails('FROM scratch\n', `${F}:1: `, /no stage has a name/, { target: 'x' });
  });
});

describe('RUN, CMD, ENTRYPOINT', () => {
  test('shell and exec forms', () => {
    assert.deepEqual(one('RUN', 'RUN echo $HOME').command, { form: 'shell', text: 'echo $HOME' });
    assert.deepEqual(one('RUN', 'RUN ["echo", "$HOME"]').argv, ['echo', '$HOME']);
    assert.deepEqual(one('CMD', 'CMD ["nginx", "-g", "daemon off;"]').argv, ['nginx', '-g', 'daemon off;']);
    assert.deepEqual(one('CMD', 'CMD []').argv, []);
    assert.deepEqual(one('ENTRYPOINT', 'ENTRYPOINT exec top -b').argv, ['/bin/sh', '-c', 'exec top -b']);
    assert.deepEqual(one('ENTRYPOINT', 'SHELL ["/bin/ash", "-eo", "pipefail", "-c"]\nENTRYPOINT top').argv, [
      '/bin/ash',
      '-eo',
      'pipefail',
      '-c',
      'top',
    ]);
  });
  test('malformed JSON falls back to shell form with a warning', () => {
    const p = parse("FROM scratch\nCMD ['a']\n");
    assert.deepEqual((p.stages[0]!.instructions[0] as { argv: string[] }).argv, ['/bin/sh', '-c', "['a']"]);
    assert.ok(p.warnings.some((w) => w.startsWith(`${F}:2: CMD starts with "["`)));
  });
  test('RUN gets the ARGs in scope and proxy build args; cache key has the ARGs but not proxies', () => {
    const r = one('RUN', 'ARG V=1\nARG UNSET\nENV SHADOW=x\nARG SHADOW=y\nRUN make', {
      buildArgs: { http_proxy: 'http://p', V: '2' },
    });
    assert.deepEqual(r.args, { V: '2', http_proxy: 'http://p' });
    assert.match(r.cacheKey, /args=\{"V":"2"\}$/);
    assert.doesNotMatch(r.cacheKey, /proxy/);
  });
  test('here-strings and shifts are not heredocs', () => {
    assert.equal(one('RUN', 'RUN cat <<< "$x" && echo $((1<<2)) a<<b').argv.length, 3);
  });
  test('RUN here-documents: alone, the text is the script; with a command, the shell reads them; <<- strips tabs', () => {
    const alone = body('RUN <<EOF\necho one\necho $HOME\nEOF\nRUN true\n');
    assert.deepEqual(
      alone.map((i) => i.kind),
      ['RUN', 'RUN'],
    );
    assert.deepEqual((alone[0] as RunInstruction).argv, ['/bin/sh', '-c', 'echo one\necho $HOME\n']);
    assert.equal(alone[1]!.line, 6);
    const withCmd = one('RUN', 'RUN cat <<EOF > /a && cat <<-"END" > /b\nA\nEOF\n\t\tB\n\tEND\n');
    assert.equal(withCmd.argv[2], 'cat <<EOF > /a && cat <<-"END" > /b\nA\nEOF\nB\nEND\n');
    const shebang = one('RUN', 'RUN <<EOF\n#!/bin/busybox sh\necho hi\nEOF\n');
    assert.match(
      shebang.argv[2]!,
      /^f=\$\(mktemp\) && cat > "\$f" <<'HULL_HEREDOC_END'\n#!\/bin\/busybox sh\necho hi\nHULL_HEREDOC_END\n/,
    );
  });
  test('COPY here-documents: sources named <<NAME with their text; $VARs substituted unless the delimiter is quoted', () => {
    const c = one('COPY', 'ARG V=1\nCOPY <<A <<"B" /etc/\nv=$V ${V:-x}\nA\nraw=$V\nB\n');
    assert.deepEqual(c.sources, ['<<A', '<<B']);
    assert.deepEqual(c.heredocs, { A: 'v=1 1\n', B: 'raw=$V\n' });
    assert.equal(c.destPath, '/etc/');
  });
  test('RUN does not substitute', () => {
    assert.equal(
      one('RUN', 'ARG X=1\nRUN echo ${X}').command.form === 'shell' && one('RUN', 'ARG X=1\nRUN echo ${X}').argv[2],
      'echo ${X}',
    );
  });
});

describe('COPY and ADD', () => {
  test('forms and flags', () => {
    const c = one('COPY', 'WORKDIR /app\nCOPY --chown=app:app --chmod=0644 --link a "b c" ./');
    assert.deepEqual(c.sources, ['a', 'b c']);
    assert.equal(c.dest, './');
    assert.equal(c.destPath, '/app/');
    assert.equal(c.destIsDir, true);
    assert.equal(c.chown, 'app:app');
    assert.equal(c.chmod, 0o644);
    assert.equal(c.link, true);
    const j = one('COPY', 'ARG D=/opt\nCOPY ["x y", "$D/z"]');
    assert.deepEqual([j.sources, j.dest, j.destIsDir, j.destPath], [['x y'], '/opt/z', false, '/opt/z']);
    const a = one('ADD', 'ADD --checksum=sha256:abc123 --keep-git-dir=true https://example.com/f.tgz /f.tgz');
    assert.deepEqual([a.sources, a.checksum, a.keepGitDir], [['https://example.com/f.tgz'], 'sha256:abc123', true]);
  });
  test('--from a stage by name or index, or an image', () => {
    const p = parse(
      'FROM scratch AS one\nFROM scratch\nCOPY --from=one /a /a\nCOPY --from=0 /b /b\nCOPY --from=busybox:1.36 /bin/sh /sh\n',
    );
    const ins = p.stages[1]!.instructions as Array<{ from?: unknown }>;
    assert.deepEqual(
      ins.map((i) => i.from),
      [{ stage: 0 }, { stage: 0 }, { image: 'busybox:1.36' }],
    );
    assert.deepEqual(p.stages[1]!.dependsOn, [0]);
    assert.equal(p.stages[0]!.used, true);
  });
  test('the cache key covers sources, dest and flags', () => {
    const a = one('COPY', 'COPY a /d').cacheKey;
    const b = one('COPY', 'COPY --chmod=600 a /d').cacheKey;
    assert.notEqual(a, b);
    assert.equal(a, one('COPY', 'COPY   a   /d').cacheKey);
  });
});

describe('ENV, ARG, LABEL, MAINTAINER', () => {
  test('ENV forms', () => {
    assert.deepEqual(one('ENV', 'ENV A=1 B="two words" C=\'$lit\' D=a\\ b E=').env, [
      ['A', '1'],
      ['B', 'two words'],
      ['C', '$lit'],
      ['D', 'a b'],
      ['E', ''],
    ]);
    assert.deepEqual(one('ENV', 'ENV A   hello   world').env, [['A', 'hello   world']]);
  });
  test('all pairs of one ENV see the scope before it', () => {
    assert.deepEqual(one('ENV', 'ENV abc=hello\nENV abc=bye def=$abc').env, [
      ['abc', 'bye'],
      ['def', 'hello'],
    ]);
  });
  test('ENV overrides ARG of the same name', () => {
    assert.deepEqual(one('ENV', 'ARG X=arg\nENV X=env\nARG X=arg2\nENV Y=$X').env, [['Y', 'env']]);
  });
  test('ARG defaults, build args, multiple names, platform args', () => {
    const a = one('ARG', 'ARG A=1 B C=${A}x TARGETOS BUILDARCH', { buildArgs: { B: 'b' } });
    assert.deepEqual(a.args, [
      { name: 'A', default: '1', value: '1' },
      { name: 'B', value: 'b' },
      { name: 'C', default: '1x', value: '1x' },
      { name: 'TARGETOS', value: 'linux' },
      { name: 'BUILDARCH', value: 'amd64' },
    ]);
  });
  test('global ARG is visible in a stage only when redeclared', () => {
    const p = parse('ARG V=g\nFROM scratch\nENV A=${V:-none}\nARG V\nENV B=$V\nFROM scratch\nARG V=local\nENV C=$V\n');
    assert.deepEqual((p.stages[0]!.instructions[0] as { env: unknown }).env, [['A', 'none']]);
    assert.deepEqual((p.stages[0]!.instructions[2] as { env: unknown }).env, [['B', 'g']]);
    assert.deepEqual((p.stages[1]!.instructions[1] as { env: unknown }).env, [['C', 'local']]);
    const q = parse('ARG V=g\nFROM scratch\nARG V\nENV B=$V\n', { buildArgs: { V: 'cli' } });
    assert.deepEqual((q.stages[0]!.instructions[1] as { env: unknown }).env, [['B', 'cli']]);
  });
  test('ARGs do not cross stages', () => {
    const p = parse('FROM scratch\nARG X=1\nFROM scratch\nENV Y=${X:-unset}\n');
    assert.deepEqual((p.stages[1]!.instructions[0] as { env: unknown }).env, [['Y', 'unset']]);
  });
  test('unconsumed build args are a warning', () => {
    assert.ok(
      parse('FROM scratch\n', { buildArgs: { NOPE: '1', HTTP_PROXY: 'x' } }).warnings.some((w) =>
        /not consumed by any ARG: NOPE$/.test(w),
      ),
    );
  });
  test('the cache key names the build args a step used', () => {
    assert.match(one('ENV', 'ARG V\nENV X=$V', { buildArgs: { V: '7' } }).cacheKey, /args=\{"V":"7"\}$/);
  });
  test('LABEL and MAINTAINER', () => {
    assert.deepEqual(one('LABEL', 'LABEL a=1 "b.c"="x y" d=\'z\'').labels, [
      ['a', '1'],
      ['b.c', 'x y'],
      ['d', 'z'],
    ]);
    assert.deepEqual(one('LABEL', 'MAINTAINER Jo <jo@x.org>').labels, [['maintainer', 'Jo <jo@x.org>']]);
  });
});

describe('WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL, SHELL, ONBUILD, HEALTHCHECK', () => {
  test('WORKDIR is relative to the previous one', () => {
    const ins = body('WORKDIR /a\nWORKDIR b\nWORKDIR ../c/./d\nARG D=e\nWORKDIR $D\n');
    assert.deepEqual(
      ins.filter((i) => i.kind === 'WORKDIR').map((i) => (i as { path: string }).path),
      ['/a', '/a/b', '/a/c/d', '/a/c/d/e'],
    );
  });
  test('USER', () => {
    assert.equal(one('USER', 'ARG U=1000\nUSER $U:$U').user, '1000:1000');
  });
  test('EXPOSE', () => {
    assert.deepEqual(one('EXPOSE', 'EXPOSE 80 80/tcp 53/UDP 9000-9002/sctp').ports, [
      '80/tcp',
      '80/tcp',
      '53/udp',
      '9000/sctp',
      '9001/sctp',
      '9002/sctp',
    ]);
  });
  test('VOLUME', () => {
    assert.deepEqual(one('VOLUME', 'VOLUME /a /b').paths, ['/a', '/b']);
    assert.deepEqual(one('VOLUME', 'VOLUME ["/a b", "/c"]').paths, ['/a b', '/c']);
  });
  test('STOPSIGNAL', () => {
    for (const s of ['SIGTERM', 'TERM', '9', 'SIGRTMIN+3'])
      assert.equal(one('STOPSIGNAL', `STOPSIGNAL ${s}`).signal, s);
  });
  test('SHELL', () => {
    assert.deepEqual(one('SHELL', 'SHELL ["powershell", "-command"]').shell, ['powershell', '-command']);
  });
  test('ONBUILD stores its trigger', () => {
    assert.equal(one('ONBUILD', 'ONBUILD RUN make $X').trigger, 'RUN make $X');
  });
  test("the base image's ONBUILD triggers run first in the stage, at the FROM line", () => {
    const baseConfig = (ref: string) =>
      ref === 'parent' ? { Env: ['X=1'], OnBuild: ['ENV Y=$X', 'RUN echo $Y'] } : undefined;
    const ins = parse('FROM parent\nRUN echo own\n', { baseConfig }).stages[0]!.instructions;
    assert.deepEqual(
      ins.map((i) => [i.kind, i.line]),
      [
        ['ENV', 1],
        ['RUN', 1],
        ['RUN', 2],
      ],
    );
    fails('FROM parent\n', `${F}:1: `, /ONBUILD trigger "RUM x" of parent: unknown instruction "RUM"/, {
      baseConfig: () => ({ OnBuild: ['RUM x'] }),
    });
    fails('FROM parent\n', `${F}:1: `, /ONBUILD FROM trigger/, { baseConfig: () => ({ OnBuild: ['FROM x'] }) });
  });
  test('HEALTHCHECK', () => {
    assert.deepEqual(one('HEALTHCHECK', 'HEALTHCHECK NONE').healthcheck, { test: ['NONE'] });
    assert.deepEqual(
      one(
        'HEALTHCHECK',
        'HEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms --start-interval=2s --retries=3 CMD ["curl", "-f", "x"]',
      ).healthcheck,
      {
        test: ['CMD', 'curl', '-f', 'x'],
        interval: 30e9,
        timeout: 90e9,
        startPeriod: 500e6,
        startInterval: 2e9,
        retries: 3,
      },
    );
    assert.deepEqual(one('HEALTHCHECK', 'HEALTHCHECK cmd curl -f http://localhost/ || exit 1').healthcheck.test, [
      'CMD-SHELL',
      'curl -f http://localhost/ || exit 1',
    ]);
  });
  test('Go durations', () => {
    const table: Array<[string, number | undefined]> = [
      ['0', 0],
      ['1h', 3600e9],
      ['1.5s', 1.5e9],
      ['1m30s', 90e9],
      ['10us', 1e4],
      ['5', undefined],
      ['s', undefined],
      ['1x', undefined],
      ['', undefined],
    ];
    for (const [v, ns] of table) assert.equal(parseDuration(v), ns, v);
  });
});

describe('substitution', () => {
  const cases: Array<[string, string]> = [
    ['$V', 'v'],
    ['${V}', 'v'],
    ['pre${V}post', 'prevpost'],
    ['$Vx', ''],
    ['${UNSET:-d}', 'd'],
    ['${EMPTY:-d}', 'd'],
    ['${EMPTY-d}', ''],
    ['${UNSET-d}', 'd'],
    ['${V:-d}', 'v'],
    ['${V:+alt}', 'alt'],
    ['${EMPTY:+alt}', ''],
    ['${EMPTY+alt}', 'alt'],
    ['${UNSET:+alt}', ''],
    ['${UNSET:-${V}2}', 'v2'],
    ['\\$V', '$V'],
    ['"$V"', 'v'],
    ["'$V'", '$V'],
    ['"\\$V"', '$V'],
    ['a\\ b', 'a b'],
    ['$', '$'],
    ['$1', ''],
    ['$/x', '$/x'],
    ['100%', '100%'],
  ];
  for (const [input, want] of cases) {
    test(`${input} → ${JSON.stringify(want)}`, () => {
      assert.deepEqual(one('LABEL', `ARG V=v\nARG EMPTY=\nLABEL x=${input}`).labels, [['x', want]]);
    });
  }
  test('${VAR:?message} fails with the message', () => {
    fails('FROM scratch\nARG NEED\nWORKDIR ${NEED:?set NEED}\n', `${F}:3: `, /NEED: set NEED/);
  });
});

describe('errors', () => {
  const table: Array<[string, string, RegExp]> = [
    ['', `${F}:1: `, /no instructions/],
    ['# just a comment\n', `${F}:1: `, /no instructions/],
    ['ARG A\n', `${F}:1: `, /no FROM instruction/],
    ['RUN x\nFROM scratch\n', `${F}:1: `, /RUN comes before the first FROM/],
    ['FROM scratch\nRUN a \\\n  b\nFORM x\n', `${F}:4: `, /unknown instruction "FORM" \(did you mean FROM\?\)/],
    ['FROM scratch\nCOPPY a b\n', `${F}:2: `, /did you mean COPY\?/],
    ['FROM scratch\nFROBNICATE\n', `${F}:2: `, /unknown instruction "FROBNICATE"; see/],
    ['# escape=x\nFROM scratch\n', `${F}:1: `, /invalid escape character/],
    ['# escape=`\n# escape=\\\nFROM scratch\n', `${F}:2: `, /given twice/],
    ['FROM\n', `${F}:1: `, /FROM takes an image/],
    ['FROM a b\n', `${F}:1: `, /FROM takes an image/],
    [
      'FROM Alpine\n',
      `${F}:1: `,
      /FROM: invalid reference format: repository name \(library\/Alpine\) must be lowercase/,
    ],
    ['ARG B\nFROM $B\n', `${F}:2: `, /names no image/],
    ['FROM scratch AS 1x\n', `${F}:1: `, /invalid stage name "1x"/],
    ['FROM scratch AS a\nFROM scratch AS A\n', `${F}:2: `, /already used on line 1/],
    ['FROM --platform=amd64 scratch\n', `${F}:1: `, /not a platform/],
    ['FROM --plat=x scratch\n', `${F}:1: `, /FROM does not take --plat \(did you mean --platform\?\)/],
    ['FROM scratch\nRUN --mount=type=cache,target=/x make\n', `${F}:2: `, /RUN --mount is not supported yet/],
    ['FROM scratch\nRUN --network=none make\n', `${F}:2: `, /RUN --network is not supported yet/],
    ['FROM scratch\nRUN\n', `${F}:2: `, /RUN needs a command/],
    [
      'FROM scratch\nADD <<-"EOF" /x\nhi\nEOF\n',
      `${F}:2: `,
      /ADD with a here-document is not supported; use COPY <<EOF DEST/,
    ],
    [
      'FROM scratch\nRUN cat <<EOF > /x\nnever closed\n',
      `${F}:2: `,
      /here-document <<EOF is never closed: end it with a line that says EOF/,
    ],
    ['FROM scratch\nCMD\n', `${F}:2: `, /CMD needs a command.*CMD \[\]/],
    ['FROM scratch\nCOPY a\n', `${F}:2: `, /at least one source and a destination/],
    ['FROM scratch\nCOPY a b /dir\n', `${F}:2: `, /directory destination ending in "\/"/],
    ['FROM scratch\nCOPY https://x.org/f /f\n', `${F}:2: `, /use ADD for URLs/],
    ['FROM scratch\nCOPY --chmod=rwx a /b\n', `${F}:2: `, /not an octal mode/],
    ['FROM scratch\nCOPY --chown= a /b\n', `${F}:2: `, /not USER\[:GROUP\]/],
    ['FROM scratch\nCOPY --form=x a /b\n', `${F}:2: `, /did you mean --from\?/],
    ['FROM scratch\nCOPY --from=0 a /b\n', `${F}:2: `, /names this stage itself/],
    ['FROM scratch\nCOPY --from=3 a /b\n', `${F}:2: `, /not defined before this one/],
    [
      'FROM scratch\nCOPY --from=later a /b\nFROM scratch AS later\n',
      `${F}:2: `,
      /defined later in the file; move stage "later"/,
    ],
    ['FROM scratch AS builder\nFROM scratch\nCOPY --from=buidler a /b\n', `${F}:3: `, /did you mean "builder"/],
    ['FROM scratch\nCOPY --from=Bad:Ref a /b\n', `${F}:2: `, /COPY --from: invalid reference format/],
    ['FROM scratch\nADD --from=x a /b\n', `${F}:2: `, /ADD does not take --from/],
    ['FROM scratch\nADD --checksum=md5:x a /b\n', `${F}:2: `, /not a digest/],
    ['FROM scratch\nENV\n', `${F}:2: `, /ENV needs NAME=VALUE/],
    ['FROM scratch\nENV A\n', `${F}:2: `, /ENV A has no value/],
    ['FROM scratch\nENV A=1 B\n', `${F}:2: `, /"B" is not NAME=VALUE/],
    ['FROM scratch\nENV =1\n', `${F}:2: `, /empty name/],
    ['FROM scratch\nENV A="unterminated\n', `${F}:2: `, /unterminated double quote/],
    ["FROM scratch\nLABEL a='x\n", `${F}:2: `, /unterminated single quote/],
    ['FROM scratch\nENV A=${B\n', `${F}:2: `, /missing "}"/],
    ['FROM scratch\nENV A=${}\n', `${F}:2: `, /bad substitution/],
    ['FROM scratch\nENV A=${B/x/y}\n', `${F}:2: `, /unsupported substitution/],
    ['FROM scratch\nARG\n', `${F}:2: `, /ARG needs a name/],
    ['FROM scratch\nARG 9x=1\n', `${F}:2: `, /invalid ARG name "9x"/],
    ['FROM scratch\nWORKDIR\n', `${F}:2: `, /WORKDIR needs a path/],
    ['FROM scratch\nUSER\n', `${F}:2: `, /USER needs one user/],
    ['FROM scratch\nEXPOSE\n', `${F}:2: `, /EXPOSE needs a port/],
    ['FROM scratch\nEXPOSE 80/xtp\n', `${F}:2: `, /unknown protocol "xtp"/],
    ['FROM scratch\nEXPOSE 70000\n', `${F}:2: `, /ports run from 1 to 65535/],
    ['FROM scratch\nEXPOSE 90-80\n', `${F}:2: `, /ends before it starts/],
    ['FROM scratch\nEXPOSE 127.0.0.1:80:80\n', `${F}:2: `, /does not take host addresses/],
    ['FROM scratch\nVOLUME\n', `${F}:2: `, /VOLUME needs a path/],
    ['FROM scratch\nVOLUME [""]\n', `${F}:2: `, /empty path/],
    ['FROM scratch\nSTOPSIGNAL SIGNOPE\n', `${F}:2: `, /is not a signal/],
    ['FROM scratch\nSTOPSIGNAL 99\n', `${F}:2: `, /is not a signal/],
    ['FROM scratch\nSHELL /bin/bash -c\n', `${F}:2: `, /SHELL must be a non-empty JSON array/],
    ['FROM scratch\nSHELL []\n', `${F}:2: `, /SHELL must be a non-empty JSON array/],
    ['FROM scratch\nONBUILD\n', `${F}:2: `, /ONBUILD needs an instruction/],
    ['FROM scratch\nONBUILD ONBUILD RUN x\n', `${F}:2: `, /ONBUILD ONBUILD is not allowed/],
    ['FROM scratch\nONBUILD FROM x\n', `${F}:2: `, /ONBUILD FROM is not allowed/],
    ['FROM scratch\nONBUILD RUM x\n', `${F}:2: `, /did you mean RUN\?/],
    ['FROM scratch\nMAINTAINER\n', `${F}:2: `, /MAINTAINER needs a name/],
    ['FROM scratch\nHEALTHCHECK\n', `${F}:2: `, /HEALTHCHECK needs CMD or NONE/],
    ['FROM scratch\nHEALTHCHECK --interval=5s NONE\n', `${F}:2: `, /NONE takes no options/],
    ['FROM scratch\nHEALTHCHECK CMD\n', `${F}:2: `, /HEALTHCHECK CMD needs a command/],
    ['FROM scratch\nHEALTHCHECK --interval=5 CMD x\n', `${F}:2: `, /not a duration/],
    ['FROM scratch\nHEALTHCHECK --timeout=10us CMD x\n', `${F}:2: `, /shorter than 1ms/],
    ['FROM scratch\nHEALTHCHECK --retries=-1 CMD x\n', `${F}:2: `, /not a whole number/],
    ['FROM scratch\nHEALTHCHECK --retries CMD x\n', `${F}:2: `, /--retries needs a value/],
    ['FROM scratch\nCOPY --chmod=644 --chmod=600 a /b\n', `${F}:2: `, /given twice/],
    ['FROM scratch\nCOPY --link=maybe a /b\n', `${F}:2: `, /must be true or false/],
  ];
  for (const [text, prefix, re] of table) {
    test(`${JSON.stringify(text)} → ${re.source}`, () => fails(text, prefix, re));
  }
  test('the line of a continued instruction is where it starts', () => {
    fails(
      'FROM scratch\n\nRUN a \\\n  b \\\n  c\n\nEXPOSE \\\n  80 \\\n  nope\n',
      `${F}:7: `,
      /EXPOSE nope is not a port/,
    );
  });
  test('the file name is the one given', () => {
    fails('FROM scratch\nBAD\n', 'sub/Dockerfile.dev:2: ', /unknown instruction/, { file: 'sub/Dockerfile.dev' });
  });
});

describe('.containerignore / .dockerignore', () => {
  test('pattern file parsing and cleaning', () => {
    assert.deepEqual(parseIgnoreFile('# comment\n\n  /foo/  \n./bar/../baz\n! keep\n**/*.log\n/\n'), [
      'foo',
      'baz',
      '!keep',
      '**/*.log',
      '/',
    ]);
  });
  const cases: Array<[string[], string, boolean]> = [
    [['node_modules'], 'node_modules', true],
    [['node_modules'], 'node_modules/x/y.js', true],
    [['node_modules'], 'src/node_modules', false],
    [['**/node_modules'], 'src/node_modules/a', true],
    [['**/node_modules'], 'node_modules', true],
    [['*.md'], 'README.md', true],
    [['*.md'], 'docs/a.md', false],
    [['**/*.md'], 'docs/deep/a.md', true],
    [['docs/**'], 'docs/a/b', true],
    [['docs/**'], 'docsx', false],
    [['a/**/b'], 'a/b', true],
    [['a/**/b'], 'a/x/y/b', true],
    [['?.txt'], 'a.txt', true],
    [['?.txt'], 'ab.txt', false],
    [['[a-c].txt'], 'b.txt', true],
    [['[a-c].txt'], 'd.txt', false],
    [['*', '!keep'], 'keep', false],
    [['*', '!keep'], 'other', true],
    [['*.log', '!important.log'], 'important.log', false],
    [['*.log', '!important.log', 'important*'], 'important.log', true],
    [['/secret'], 'secret', true],
    [['./a/../secret'], 'secret', true],
    [['a.b'], 'axb', false],
    [['dir'], './dir/f', true],
    [['file\\*'], 'file*', true],
    [['file\\*'], 'filex', false],
    [[], 'anything', false],
  ];
  for (const [patterns, path, want] of cases) {
    test(`${JSON.stringify(patterns)} ${path} → ${want}`, () => {
      assert.equal(compileIgnore(parseIgnoreFile(patterns.join('\n')))(path), want);
    });
  }
  const dir = mkdtempSync('/tmp/hull-test-ignore-');
  after(() => rmSync(dir, { recursive: true, force: true }));
  test('loadIgnore prefers .containerignore over .dockerignore, and ignores nothing without either', () => {
    assert.equal(loadIgnore(dir)('x'), false);
    writeFileSync(join(dir, '.dockerignore'), 'x\n');
    assert.equal(loadIgnore(dir)('x'), true);
    writeFileSync(join(dir, '.containerignore'), 'y\n');
    assert.equal(loadIgnore(dir)('x'), false);
    assert.equal(loadIgnore(dir)('y/z'), true);
  });
});
