/**
 * The programs the VM driver runs besides QEMU: hull's guest agent (packed into the initramfs) and the
 * per-VM monitor process. Both are found next to this file (the TypeScript source under tsx, or hull's
 * bundle in dist/), so this file stays in src/vm/.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { HostSupportError } from '../common/errors.js';
import { hullEnv } from '../common/env.js';
import { builtProgram } from '../host/programs.js';

function here(): string {
  return dirname(fileURLToPath(import.meta.url));
}

/** hull's guest agent binary (built by scripts/setup.sh); $HULL_VM_AGENT overrides. */
export function agentBinary(): string {
  const agent = hullEnv('HULL_VM_AGENT');
  if (agent) return agent;
  const built = builtProgram('hull-agent');
  if (built) return built;
  throw new HostSupportError(
    "hull's guest agent (guest/hull-agent) is not built; run scripts/setup.sh (it builds it with musl-gcc)",
  );
}

/** The argv that runs the monitor: the bundled script next to hull's bundle, or the TypeScript source through tsx. */
export function monitorCommand(dir: string): string[] {
  const self = fileURLToPath(import.meta.url);
  if (self.endsWith('.ts')) {
    // tsx's loader by path (the monitor's cwd is the instance dir, where `--import tsx` would not resolve)
    const tsx = join(dirname(createRequire(self).resolve('tsx/package.json')), 'dist', 'loader.mjs');
    return [process.execPath, '--import', pathToFileURL(tsx).href, join(here(), 'monitor-main.ts'), dir];
  }
  return [process.execPath, join(here(), 'vm-monitor.cjs'), dir];
}
