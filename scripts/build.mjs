// Bundles the CLI into one ESM file (dist/hull.mjs): one file to load keeps hull's start-up short.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
await build({
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/hull.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  minify: true,
  // native addons stay in node_modules
  external: ['better-sqlite3', 'node-unix-socket'],
  define: { HULL_VERSION: JSON.stringify(pkg.version) },
  banner: { js: "import { createRequire as __hullCreateRequire } from 'node:module'; const require = __hullCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
