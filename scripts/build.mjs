// Bundles the CLI into one CommonJS file (dist/hull-bundle.cjs) behind a small launcher (dist/hull.mjs) that
// loads it with a V8 code cache: one file to read and no JavaScript to compile keeps hull's start-up short
// (Node 20 has no built-in compile cache).
import { build } from 'esbuild';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Everything is built into a staging directory and renamed into dist/ file by file: hull processes that
// start meanwhile (conmon's exit commands, VM monitors, a user's command during an upgrade) always find a
// whole launcher and bundle, never a missing or half-written one.
const stage = `dist/.staging-${process.pid}`;
for (const old of (() => {
  try {
    return readdirSync('dist');
  } catch {
    return [];
  }
})()) {
  const pid = Number(/^\.(?:staging|console-old)-(\d+)$/.exec(old)?.[1]);
  if (!pid) continue;
  try {
    process.kill(pid, 0);
  } catch {
    rmSync(join('dist', old), { recursive: true, force: true });
  } // a killed build's
}
mkdirSync(stage, { recursive: true });
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
/** One CommonJS bundle for Node 20; import.meta.url becomes the bundle's own file URL. */
const bundle = (entry, outfile, extra = {}) =>
  build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    sourcemap: 'linked',
    minify: true,
    banner: { js: "const __hullUrl = require('node:url').pathToFileURL(__filename).href;" },
    logLevel: 'warning',
    ...extra,
    define: { 'import.meta.url': '__hullUrl', ...(extra.define ?? {}) },
  });

await bundle('src/cli/main.ts', `${stage}/hull-bundle.cjs`, {
  // native addons stay in node_modules
  external: ['better-sqlite3', 'node-unix-socket'],
  define: { HULL_VERSION: JSON.stringify(pkg.version) },
});

// The VM monitor (src/vm/monitor.ts) runs as its own long-lived process per VM: a separate, small bundle so
// that it does not load the CLI (its RSS counts as the VM's host overhead).
await bundle('src/vm/monitor-main.ts', `${stage}/vm-monitor.cjs`);
// The userland port proxy (src/network/proxy-main.ts): one small long-lived process per instance that publishes
// ports on the host's IPv6 addresses.
await bundle('src/network/proxy-main.ts', `${stage}/port-proxy.cjs`);

// The web console (web/, Preact + Vite): static files the daemon serves on its --listen address, built into
// dist/console with hashed assets; xterm.js, noVNC and uPlot become chunks that pages load when they need them.
{
  const { build: viteBuild } = await import('vite');
  await viteBuild({
    configFile: 'web/vite.config.mjs',
    logLevel: 'warn',
    build: { outDir: join(process.cwd(), stage, 'console') },
  });
}

// A script compiled with a code cache cannot run import() on Node 20: the bundle must load packages with require.
const bundled = readFileSync(`${stage}/hull-bundle.cjs`, 'utf8');
const dynamic = bundled.match(/\bimport\((["'][^"']+["'])\)/g);
if (dynamic) {
  console.error(
    `build: dist/hull-bundle.cjs still has dynamic imports of external modules: ${dynamic.join(', ')}; load them with createRequire`,
  );
  rmSync(stage, { recursive: true, force: true });
  process.exit(1);
}

writeFileSync(
  `${stage}/hull.mjs`,
  `// hull's entry point: runs dist/hull-bundle.cjs with a V8 code cache (made by npm run build).
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { createRequire, Module } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import vm from 'node:vm';

const dir = dirname(fileURLToPath(import.meta.url));
const file = join(dir, 'hull-bundle.cjs');
const cacheFile = join(dir, 'hull-bundle.cache');
let cachedData;
try { cachedData = readFileSync(cacheFile); } catch { cachedData = undefined; }
const script = new vm.Script(Module.wrap(readFileSync(file, 'utf8')), {
  filename: file,
  cachedData,
});
if (cachedData === undefined || script.cachedDataRejected) {
  // (re)make the cache when this process ends, so that it holds the functions a command really compiled
  process.once('exit', () => {
    try {
      const tmp = cacheFile + '.' + process.pid;
      writeFileSync(tmp, script.createCachedData());
      renameSync(tmp, cacheFile);
    } catch { /* a read-only install only loses the speed-up */ }
  });
}
const module = { exports: {}, filename: file, id: file, loaded: false };
script.runInThisContext().call(module.exports, module.exports, createRequire(file), module, file, dir);
`,
);

// Into place: the bundles and maps first, the launcher last; the old code cache goes (a stale one would only
// be rejected, but this keeps the warm-up below meaningful).
const names = readdirSync(stage).sort((a, b) => Number(a === 'hull.mjs') - Number(b === 'hull.mjs'));
for (const name of names) {
  if (name === 'console') {
    // a directory: the old one aside first (a rename cannot replace a non-empty directory), then removed
    const old = join('dist', `.console-old-${process.pid}`);
    try {
      renameSync(join('dist', 'console'), old);
    } catch {
      /* none yet */
    }
    renameSync(join(stage, name), join('dist', name));
    rmSync(old, { recursive: true, force: true });
    continue;
  }
  renameSync(join(stage, name), join('dist', name));
}
rmSync(stage, { recursive: true, force: true });
rmSync('dist/hull-bundle.cache', { force: true });

// Warm the cache with a command that opens a state store, in a throw-away root.
const root = mkdtempSync(join(tmpdir(), 'hull-build-'));
spawnSync(process.execPath, ['dist/hull.mjs', '--root', root, 'ps', '-a'], { stdio: 'ignore' });
rmSync(root, { recursive: true, force: true });
