// The layout shows the architecture: lower layers never import higher ones, drivers never import each
// other, front ends reach everything through the engine, and the engine does not branch on the kind of an
// instance. This test enforces it, reading every import with the TypeScript compiler (not a regex), and
// tests its own reader on small synthetic sources first.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const REPO = resolve(import.meta.dirname, '..');
const SRC = join(REPO, 'src');

/** Rank of each top-level folder of src/: a file may import only from folders of equal or lower rank. */
const RANK: Record<string, number> = {
  common: 0,
  host: 1,
  image: 2,
  container: 2,
  vm: 2,
  network: 2,
  storage: 2,
  gpu: 2,
  engine: 3,
  cli: 4,
  api: 4,
};
/**
 * Peers of rank 2 stay apart: the drivers (container, vm, network, storage, gpu) and the image store do not
 * import each other; the engine composes them.
 */
const PEERS_APART = new Set(['image', 'container', 'vm', 'network', 'storage', 'gpu']);
/** Front ends import only the engine and the lowest layer (and their own folder). */
const FRONT_ENDS = new Set(['cli', 'api']);
const FRONT_END_MAY_IMPORT = new Set(['engine', 'common']);
/** The one file of another front end the CLI may import: the daemon's entry point (`hull daemon` starts it). */
const CLI_MAY_IMPORT = 'api/daemon.ts';
/** Files outside src/ that code may read through an import (data, not code). */
const OUTSIDE_ALLOWED = new Set(['package.json']);
/** The one place in engine/ that may name instance kinds: the driver registry (it names none today). */
const KIND_REGISTRY = 'engine/drivers.ts';
/** The package's own name: `hull/src/...` would reach src/ around the relative-path rules. */
const SELF = 'hull';

const SOURCE = /\.(ts|mts|cts|tsx)$/;

/** The instance kinds, read from `export type InstanceKind = 'container' | 'vm'` in src/common/instance.ts. */
function instanceKinds(): string[] {
  const path = join(SRC, 'common', 'instance.ts');
  const sf = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
  const kinds: string[] = [];
  sf.forEachChild((n) => {
    if (ts.isTypeAliasDeclaration(n) && n.name.text === 'InstanceKind' && ts.isUnionTypeNode(n.type)) {
      for (const t of n.type.types)
        if (ts.isLiteralTypeNode(t) && ts.isStringLiteral(t.literal)) kinds.push(t.literal.text);
    }
  });
  return kinds;
}
const KINDS = instanceKinds();

export interface ImportRef {
  /** the module specifier as written, or null when it is not a string the test can read */
  spec: string | null;
  form: string;
  line: number;
}

function scriptKind(fileName: string): ts.ScriptKind {
  return fileName.endsWith('.tsx') ? ts.ScriptKind.TSX : ts.ScriptKind.TS;
}

function parse(fileName: string, text: string): ts.SourceFile {
  return ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, scriptKind(fileName));
}

const literalText = (n: ts.Node | undefined): string | null =>
  n && (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) ? n.text : null;

/**
 * Every module a source file reaches, in every form: import declarations (side-effect, default, named,
 * namespace, type-only, over any number of lines), `export … from`, `import x = require()`, dynamic
 * `import()`, `import('x')` types, `require()`, and `createRequire(...)(...)` or a function made by
 * createRequire called later.
 */
export function importsOf(fileName: string, text: string): ImportRef[] {
  const sf = parse(fileName, text);
  const out: ImportRef[] = [];
  const line = (n: ts.Node) => sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
  // names bound to createRequire(...) (const req = createRequire(import.meta.url))
  const requireFns = new Set<string>(['require']);
  const isCreateRequireCall = (e: ts.Expression): boolean =>
    ts.isCallExpression(e) &&
    ((ts.isIdentifier(e.expression) && e.expression.text === 'createRequire') ||
      (ts.isPropertyAccessExpression(e.expression) && e.expression.name.text === 'createRequire'));
  const collect = (n: ts.Node): void => {
    if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.initializer && isCreateRequireCall(n.initializer))
      requireFns.add(n.name.text);
    n.forEachChild(collect);
  };
  collect(sf);
  const visit = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n)) {
      out.push({
        spec: literalText(n.moduleSpecifier),
        form: n.importClause ? (n.importClause.isTypeOnly ? 'import type' : 'import') : 'side-effect import',
        line: line(n),
      });
    } else if (ts.isExportDeclaration(n) && n.moduleSpecifier) {
      out.push({ spec: literalText(n.moduleSpecifier), form: 'export from', line: line(n) });
    } else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference)) {
      out.push({ spec: literalText(n.moduleReference.expression), form: 'import = require', line: line(n) });
    } else if (ts.isImportTypeNode(n)) {
      const arg = n.argument;
      out.push({
        spec: ts.isLiteralTypeNode(arg) ? literalText(arg.literal) : null,
        form: 'import type()',
        line: line(n),
      });
    } else if (ts.isCallExpression(n)) {
      const callee = n.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword) {
        out.push({ spec: literalText(n.arguments[0]), form: 'import()', line: line(n) });
      } else if ((ts.isIdentifier(callee) && requireFns.has(callee.text)) || isCreateRequireCall(callee)) {
        out.push({ spec: literalText(n.arguments[0]), form: 'require', line: line(n) });
      }
    }
    n.forEachChild(visit);
  };
  visit(sf);
  return out;
}

/** Instance-kind literals the engine compares, switches on, lists or picks a driver by. */
export function kindBranches(
  fileName: string,
  text: string,
  kinds: readonly string[] = KINDS,
): { kind: string; line: number }[] {
  const sf = parse(fileName, text);
  const out: { kind: string; line: number }[] = [];
  const equality = new Set([
    ts.SyntaxKind.EqualsEqualsEqualsToken,
    ts.SyntaxKind.ExclamationEqualsEqualsToken,
    ts.SyntaxKind.EqualsEqualsToken,
    ts.SyntaxKind.ExclamationEqualsToken,
  ]);
  const visit = (n: ts.Node): void => {
    const text = literalText(n);
    if (text !== null && kinds.includes(text)) {
      let p = n.parent;
      while (
        p &&
        (ts.isParenthesizedExpression(p) ||
          ts.isAsExpression(p) ||
          ts.isSatisfiesExpression(p) ||
          ts.isTypeAssertionExpression(p))
      )
        p = p.parent;
      const branches =
        !!p &&
        ((ts.isBinaryExpression(p) && equality.has(p.operatorToken.kind)) ||
          ts.isCaseClause(p) ||
          ts.isArrayLiteralExpression(p) ||
          ts.isLiteralTypeNode(p) ||
          (ts.isCallExpression(p) && p.arguments.includes(n as ts.Expression)) ||
          ts.isElementAccessExpression(p) ||
          (ts.isPropertyAssignment(p) && p.name === n));
      if (branches) out.push({ kind: text, line: sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1 });
    }
    n.forEachChild(visit);
  };
  visit(sf);
  return out;
}

function layerOf(absPath: string): string | null {
  const rel = relative(SRC, absPath);
  if (rel.startsWith('..') || rel === '') return null;
  const parts = rel.split('/');
  return parts.length > 1 ? parts[0]! : null;
}

/** What breaks the rules in one file (`file` relative to src/). */
export function violationsOf(file: string, text: string): string[] {
  const abs = join(SRC, file);
  const from = layerOf(abs);
  if (!from || !(from in RANK)) return [`${file} is in no layer (add its folder to RANK in test/architecture.test.ts)`];
  const out: string[] = [];
  for (const imp of importsOf(file, text)) {
    const where = `${file}:${imp.line} (${imp.form})`;
    if (imp.spec === null) {
      out.push(`${where}: a module named by an expression, which cannot be checked; name it with a string`);
      continue;
    }
    let target: string;
    if (imp.spec.startsWith('.')) target = resolve(dirname(abs), imp.spec);
    else if (imp.spec.startsWith('/')) target = resolve(imp.spec);
    else if (imp.spec === SELF || imp.spec.startsWith(`${SELF}/`))
      target = resolve(REPO, imp.spec.slice(SELF.length + 1));
    else continue; // node: built-ins and packages
    const to = layerOf(target);
    if (to === null) {
      if (!OUTSIDE_ALLOWED.has(relative(REPO, target)))
        out.push(`${where}: imports ${imp.spec}, outside src/'s layers`);
      continue;
    }
    if (!(to in RANK)) {
      out.push(`${where}: imports ${imp.spec}, in src/${to}, which has no layer`);
      continue;
    }
    if (to === from) continue;
    if (RANK[to]! > RANK[from]!) out.push(`${where}: ${from} imports ${imp.spec} (${to}, a higher layer)`);
    else if (PEERS_APART.has(to) && PEERS_APART.has(from))
      out.push(`${where}: ${from} imports its peer ${imp.spec} (${to}); the engine composes them`);
    else if (from === 'cli' && relative(SRC, target).replace(/\.js$/, '.ts') === CLI_MAY_IMPORT) continue;
    else if (FRONT_ENDS.has(from) && !FRONT_END_MAY_IMPORT.has(to))
      out.push(
        `${where}: ${from} imports ${imp.spec} (${to}); front ends go through the engine (re-export what they need there)`,
      );
  }
  if (from === 'engine' && file !== KIND_REGISTRY) {
    for (const k of kindBranches(file, text))
      out.push(
        `${file}:${k.line}: the engine names the instance kind '${k.kind}'; ask the driver (a method or a capability) instead`,
      );
  }
  return out;
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : SOURCE.test(p) || /\.(js|mjs|cjs)$/.test(p) ? [p] : [];
  });
}

/** The names src/common/paths.ts gives paths under the root and under an instance dir (its `join(x, '…')` literals and constants). */
function layoutNames(pathsText: string): Set<string> {
  const names = new Set<string>();
  for (const m of pathsText.matchAll(/\bjoin\(\s*\w+\s*,\s*'([^']+)'/g)) names.add(m[1]!.split('/')[0]!);
  for (const m of pathsText.matchAll(/^export const [A-Z_]+ = '([^']+)';/gm)) names.add(m[1]!);
  for (const m of pathsText.matchAll(/\[([^\]]*)\]\.map\(\(f\) => join\(dir, f\)\)/g))
    for (const n of m[1]!.matchAll(/'([^']+)'/g)) names.add(n[1]!);
  return names;
}

/**
 * `join(...)`/`resolve(...)` calls in `text` that put one of `names` as a literal right after the root or an instance
 * dir (a first argument whose text names a root or a dir: `root`, `this.root`, `engine.root`, `hullRoot`, `dir`,
 * `ctx.dir`, `exits`, …), as `line: call`.
 */
export function literalLayoutJoins(fileName: string, text: string, names: Set<string>): string[] {
  const sf = parse(fileName, text);
  const out: string[] = [];
  const base = /(^|\.)(\w*[rR]oot|dir|\w*Dir|exits)$/;
  const visit = (n: ts.Node): void => {
    if (ts.isCallExpression(n) && n.arguments.length >= 2) {
      const callee = n.expression.getText(sf);
      if (/(^|\.)(join|resolve)$/.test(callee) && base.test(n.arguments[0]!.getText(sf))) {
        const lit = literalText(n.arguments[1]);
        if (lit !== null && names.has(lit.split('/')[0]!))
          out.push(`${sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1}: ${n.getText(sf)}`);
      }
    }
    n.forEachChild(visit);
  };
  visit(sf);
  return out;
}

describe('the import reader (self-test on synthetic sources)', () => {
  const specs = (text: string, name = 'x.ts') => importsOf(name, text).map((i) => i.spec);

  test('every import form is found', () => {
    const text = [
      "import './side-effect.js';",
      "import def from './default.js';",
      "import * as ns from './namespace.js';",
      'import {',
      '  a,',
      '  b,',
      "} from './multi-line.js';",
      "import type { T } from './type-only.js';",
      "import { type U, v } from './inline-type.js';",
      "export * from './export-star.js';",
      "export { w } from './export-named.js';",
      "export type { X } from './export-type.js';",
      "import eq = require('./import-equals.js');",
      "const lazy = await import('./dynamic.js');",
      "const r = require('./require.js');",
      "const c = createRequire(import.meta.url)('./create-require.js');",
      'const req = createRequire(import.meta.url);',
      "const d = req('./bound-require.js');",
      "const m = module.createRequire(import.meta.url)('./module-create-require.js');",
      "let t: import('./import-type.js').T;",
      "type Y = typeof import('./typeof-import.js');",
      'const tpl = import(`./template.js`);',
    ].join('\n');
    assert.deepEqual(specs(text), [
      './side-effect.js',
      './default.js',
      './namespace.js',
      './multi-line.js',
      './type-only.js',
      './inline-type.js',
      './export-star.js',
      './export-named.js',
      './export-type.js',
      './import-equals.js',
      './dynamic.js',
      './require.js',
      './create-require.js',
      './bound-require.js',
      './module-create-require.js',
      './import-type.js',
      './typeof-import.js',
      './template.js',
    ]);
  });

  test('a module named by an expression is reported, not skipped', () => {
    assert.deepEqual(specs("const n = './x.js'; await import(n); require(n);"), [null, null]);
  });

  test('strings and comments that only look like imports are not imports', () => {
    assert.deepEqual(
      specs("// import x from './comment.js'\nconst s = \"import y from './string.js'\";\n/* require('./block.js') */"),
      [],
    );
  });

  test('.mts, .cts and .tsx files are read the same way', () => {
    for (const name of ['a.mts', 'a.cts', 'a.tsx'])
      assert.deepEqual(specs("import './m.js';\nexport { q } from './n.js';", name), ['./m.js', './n.js']);
  });

  test('the rules catch each kind of breach', () => {
    const breach = (file: string, text: string, re: RegExp) => {
      const v = violationsOf(file, text);
      assert.ok(
        v.some((l) => re.test(l)),
        `${file}: expected ${re}, got ${JSON.stringify(v)}`,
      );
    };
    breach('host/x.ts', "import '../engine/engine.js';", /higher layer/);
    breach('common/x.ts', "export * from '../host/proc.js';", /higher layer/);
    breach('image/x.ts', "import type { VmDriver } from '../vm/driver.js';", /peer/);
    breach('vm/x.ts', "const s = await import('../image/store.js');", /peer/);
    breach('container/x.ts', "import n = require('../network/manager.js');", /peer/);
    breach('network/x.mts', "const c = createRequire(import.meta.url)('../container/driver.js');", /peer/);
    breach('cli/x.ts', "import { probeHost } from '../host/probe.js';", /front ends go through the engine/);
    breach(
      'cli/commands/x.cts',
      "let t: import('../../image/store.js').ImageRecord;",
      /front ends go through the engine/,
    );
    breach('api/x.ts', "import '../vm/driver.js';", /front ends go through the engine/);
    breach('api/docker/x.ts', "import { main } from '../../cli/main.js';", /front ends go through the engine/);
    breach('cli/commands/x.ts', "import { Router } from '../../api/http.js';", /front ends go through the engine/);
    // the one exception: `hull daemon` starts the API's daemon
    assert.deepEqual(violationsOf('cli/commands/daemon.ts', "import { runDaemon } from '../../api/daemon.js';"), []);
    breach('engine/x.ts', "import '../../test/helpers/hull.js';", /outside src/);
    breach('engine/x.ts', "import 'hull/src/cli/main.js';", /higher layer/);
    breach('engine/x.ts', "const m = 'x'; await import(m);", /cannot be checked/);
    breach('engine/x.ts', "if (rec.kind === 'vm') {}", /names the instance kind 'vm'/);
    breach('engine/x.ts', "switch (k) { case 'container': break; }", /'container'/);
    breach('engine/x.ts', "for (const k of ['container', 'vm'] as const) {}", /'container'/);
    breach('engine/x.ts', "engine.driver('vm');", /'vm'/);
    breach('engine/x.ts', "type V = Extract<R, { kind: 'vm' }>;", /'vm'/);
    breach('x.ts', '', /in no layer/);
    assert.deepEqual(
      violationsOf(
        'cli/x.ts',
        "import { Engine } from '../engine/engine.js';\nimport type { X } from '../common/instance.js';\nimport { y } from './y.js';",
      ),
      [],
    );
    assert.deepEqual(violationsOf('cli/commands/x.ts', "createRequire(import.meta.url)('../../../package.json');"), []);
    // naming a kind is fine where nothing branches on it (the kind of what a build step creates)
    assert.deepEqual(violationsOf('engine/x.ts', "createInstance(engine, { kind: 'container', image });"), []);
    assert.deepEqual(violationsOf(KIND_REGISTRY, "if (k === 'vm') {}"), []);
  });
});

describe('the source tree', () => {
  test('the instance kinds are read from src/common/instance.ts', () => {
    assert.ok(KINDS.length >= 2, `found ${JSON.stringify(KINDS)}`);
  });

  test('every folder of src/ has a layer', () => {
    for (const d of readdirSync(SRC)) {
      if (statSync(join(SRC, d)).isDirectory())
        assert.ok(d in RANK, `src/${d} has no layer in test/architecture.test.ts`);
    }
  });

  test('layers, peers, front ends and kind branches', () => {
    const violations = files(SRC).flatMap((f) => violationsOf(relative(SRC, f), readFileSync(f, 'utf8')));
    assert.deepEqual(violations, []);
  });

  test('the web console (web/src) reaches hull only through its API: it imports its own files and browser packages', () => {
    const WEB = join(REPO, 'web', 'src');
    const PACKAGES =
      /^(preact(\/hooks)?|@xterm\/xterm(\/css\/xterm\.css)?|@xterm\/addon-fit|@novnc\/novnc|uplot(\/dist\/uPlot\.min\.css)?)$/;
    const bad = files(WEB).flatMap((f) =>
      importsOf(f, readFileSync(f, 'utf8'))
        .filter((i) =>
          i.spec === null
            ? true // a module named by an expression
            : i.spec.startsWith('.')
              ? !resolve(dirname(f), i.spec).startsWith(WEB + '/')
              : !PACKAGES.test(i.spec),
        )
        .map((i) => `${relative(REPO, f)}:${i.line} imports ${i.spec ?? '(an expression)'}`),
    );
    assert.deepEqual(bad, []);
  });

  test('paths under the root and an instance dir are named only in src/common/paths.ts', () => {
    const pathsFile = join(SRC, 'common', 'paths.ts');
    const names = layoutNames(readFileSync(pathsFile, 'utf8'));
    for (const n of [
      'hull.db',
      'containers',
      'images',
      'layers',
      'run',
      'netns',
      'networks',
      'vm',
      'auth.json',
      'build-cache.db',
      'instance.json',
      'config.json',
      'ctr.log',
      'exits',
      'vm.json',
      'disk.qcow2',
      'conmon.pid',
    ]) {
      assert.ok(names.has(n), `src/common/paths.ts names ${n}`);
    }
    // the reader itself, on synthetic sources
    const found = (text: string) => literalLayoutJoins('x.ts', text, names).map((l) => l.replace(/^\d+: /, ''));
    assert.deepEqual(
      found(
        "join(root, 'containers', id); join(this.root, \"hull.db\"); path.join(ctx.dir, `ctr.log`);\njoin(\n  engine.root,\n  'networks/attachments');",
      ),
      [
        "join(root, 'containers', id)",
        'join(this.root, "hull.db")',
        'path.join(ctx.dir, `ctr.log`)',
        "join(\n  engine.root,\n  'networks/attachments')",
      ],
    );
    assert.deepEqual(
      found(
        "join(work, 'containers'); join(root, name); join(root, 'blkio.weight'); rootPaths(root).db; const s = \"join(root, 'vm')\";",
      ),
      [],
    );
    const breaches: string[] = [];
    for (const f of files(SRC)) {
      if (f === pathsFile || !SOURCE.test(f)) continue;
      for (const b of literalLayoutJoins(f, readFileSync(f, 'utf8'), names)) breaches.push(`${relative(SRC, f)}:${b}`);
    }
    assert.deepEqual(
      breaches,
      [],
      "these files join a name of the root's or an instance dir's layout themselves; use rootPaths()/instancePaths() of src/common/paths.ts",
    );
  });

  test('HULL_* variables are read only through src/common/env.ts, and each is documented there', () => {
    const envFile = join(SRC, 'common', 'env.ts');
    const documented = new Set(
      [...readFileSync(envFile, 'utf8').matchAll(/^ \*   (HULL_[A-Z_]+)\s/gm)].map((m) => m[1]!),
    );
    const direct: string[] = [];
    const used = new Set<string>();
    for (const f of files(SRC)) {
      if (f === envFile) continue;
      const text = readFileSync(f, 'utf8');
      if (/process\.env(\.HULL_|\[\s*['"`]HULL_)/.test(text)) direct.push(relative(SRC, f));
      for (const m of text.matchAll(/hullEnv(?:Number)?\(\s*'(HULL_[A-Z_]+)'/g)) used.add(m[1]!);
    }
    assert.deepEqual(direct, [], 'these files read HULL_* variables without src/common/env.ts');
    assert.deepEqual(
      [...used].filter((n) => !documented.has(n)),
      [],
      'variables read but not documented in src/common/env.ts',
    );
    assert.deepEqual(
      [...documented].filter((n) => !used.has(n)),
      [],
      'variables documented but never read',
    );
  });
});
