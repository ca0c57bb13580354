/**
 * hull's own small programs built by scripts/setup.sh into guest/ (the VM guest agent, the exec terminal helper):
 * found by walking up from this module (the TypeScript source under tsx, or hull's bundle in dist/) to the
 * checkout's guest/ directory.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The path of guest/`name`, or undefined when it is not built. */
export function builtProgram(name: string): string | undefined {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const p = join(d, 'guest', name);
    if (existsSync(p)) return p;
    d = dirname(d);
  }
  return undefined;
}

/** The static init for --init (Debian's tini package ships it); undefined when it is not installed. */
export function initBinary(): string | undefined {
  return ['/usr/bin/tini-static', '/usr/local/bin/tini-static'].find((p) => existsSync(p));
}
