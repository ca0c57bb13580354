/**
 * Persistent network namespaces: a namespace kept alive by a bind mount of its nsfs file onto a plain
 * file (what `ip netns add` does under /run/netns, and `unshare --net=FILE` does anywhere). hull keeps
 * them under its own root so that each root's namespaces are its own and the mount leak check sees them.
 * The engine makes one per instance before the instance's process exists; the CNI plugins configure it
 * and the container runtime (or, later, the VM's tap setup) joins it by path.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { runProgram } from './proc.js';

/** Whether `path` is the mount point of a network namespace (an nsfs mount) in hull's mount namespace. */
export function netnsMounted(path: string): boolean {
  let info: string;
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return false;
  }
  const escaped = path.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return info.split('\n').some((l) => {
    const f = l.split(' ');
    return f[4] === escaped && l.includes(' - nsfs ');
  });
}

/**
 * Create a new network namespace pinned at `path`: empty (its loopback is down; the loopback plugin brings it up), or
 * configured by the `ip -batch` commands `ipBatch`, run inside it by the same program start. A failed batch leaves
 * the namespace pinned (the caller's clean-up removes it, as after any failed attach).
 */
export async function createNetns(path: string, ipBatch?: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  if (netnsMounted(path)) return;
  writeFileSync(path, '', { mode: 0o600 });
  try {
    // with ipBatch, the same program start configures the new namespace: `ip -batch -` runs inside it
    await runProgram('unshare', [`--net=${path}`, ...(ipBatch ? ['ip', '-batch', '-'] : ['true'])], {
      ...(ipBatch ? { input: ipBatch } : {}),
      hint: 'hull needs to create network namespaces (run it as root)',
    });
  } catch (e) {
    rmSync(path, { force: true });
    throw e;
  }
}

/**
 * Release the namespace at `path`: unmount the pin (the kernel frees the namespace, and the veth ends in
 * it, once nothing else holds it) and remove the file. Idempotent.
 */
export async function removeNetns(path: string): Promise<void> {
  if (netnsMounted(path)) {
    const r = await runProgram('umount', [path], { allowFailure: true });
    // busy should not happen for an nsfs bind, but a lazy unmount still frees the path
    if (r.status !== 0) await runProgram('umount', ['-l', path], { allowFailure: true });
  }
  if (existsSync(path)) rmSync(path, { force: true });
}
