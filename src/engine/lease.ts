/**
 * The daemon's lease on a root: while a `hull daemon` runs, it (not conmon's exit command, not a detached
 * `hull system health-monitor`) applies the restart policies and runs the healthchecks of the root's instances.
 * The lease is a file, ROOT/run/daemon.lease, naming the daemon's pid and its start time (a pid alone may be
 * reused); a lease whose process is gone (a daemon killed with -9) is no lease. Made with link(2), so that of two
 * daemons on one root only one holds it.
 */
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConflictError } from '../common/errors.js';
import { rootPaths } from '../common/paths.js';
import { processStartTime, sameProcessAlive } from '../host/proc.js';

interface Lease {
  pid: number;
  start: string;
}

function readLease(path: string): Lease | null {
  try {
    const l = JSON.parse(readFileSync(path, 'utf8')) as Partial<Lease>;
    return typeof l.pid === 'number' && typeof l.start === 'string' ? { pid: l.pid, start: l.start } : null;
  } catch {
    return null;
  }
}

/** The pid of the live daemon that holds the root's lease, or null when none does. */
export function daemonLeaseHolder(root: string): number | null {
  const l = readLease(rootPaths(root).daemonLease);
  return l && sameProcessAlive(l.pid, l.start) ? l.pid : null;
}

/** Whether another process (a daemon) supervises the root's instances now. */
export function supervisedElsewhere(root: string): boolean {
  const pid = daemonLeaseHolder(root);
  return pid !== null && pid !== process.pid;
}

/**
 * Take the root's lease for this process; returns its release. A lease held by another live daemon is a
 * ConflictError; a stale one is replaced.
 */
export function acquireDaemonLease(root: string): () => void {
  const path = rootPaths(root).daemonLease;
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}`;
  writeFileSync(tmp, JSON.stringify({ pid: process.pid, start: processStartTime(process.pid) ?? '' }));
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, path);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 2) throw e;
        const holder = daemonLeaseHolder(root);
        if (holder !== null && holder !== process.pid)
          throw new ConflictError(
            `another hull daemon (pid ${holder}) supervises the instances of ${root}; stop it first or use another --root`,
          );
        rmSync(path, { force: true });
      }
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  return () => {
    if (readLease(path)?.pid === process.pid) rmSync(path, { force: true });
  };
}
