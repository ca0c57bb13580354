// The web console's build (npm run build runs it through scripts/build.mjs): hashed assets under /assets/, no
// inline scripts (the daemon's CSP forbids them), xterm.js, noVNC and uPlot split into chunks loaded per page.
import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default {
  root: here,
  base: '/',
  logLevel: 'warn',
  plugins: [preact({ prefreshEnabled: false, devToolsEnabled: false })],
  build: {
    outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    // the polyfill would be an inline script; every browser the console supports has modulepreload
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    target: 'es2022',
    chunkSizeWarningLimit: 700,
  },
};
