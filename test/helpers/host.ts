/**
 * What this host can do, probed by the tests themselves (independently of hull's own probes), so that a test
 * asserts the one outcome that is right here, or skips with the reason.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { probeRuntime, versionAtLeast } from '../../src/host/probe.js';
import { PURE_V2 } from './cgroup.js';

/**
 * The right outcome of --blkio-weight with `runtime` on this host: applied (to `file` when it is known before the
 * cgroup exists), or refused with `message`.
 */
export type BlkioExpectation = { outcome: 'applied'; file: string | null } | { outcome: 'refused'; message: RegExp };

const NO_WEIGHT = /^--blkio-weight is not supported: the host's block I\/O cgroup has no weight/;

/**
 * cgroup v1: the weight is CFQ's blkio.weight (shown on the root cgroup) or BFQ's blkio.bfq.weight (shown only
 * below the root; any blkio.bfq.* file on the root says BFQ's policy is there). runc writes whichever exists;
 * crun before 1.10 writes only blkio.weight, so with BFQ alone hull refuses the flag for it.
 * cgroup v2: the io controller (io.bfq.weight or io.weight below the root; either runtime picks the one there).
 */
export function blkioWeightExpectation(runtime: string): BlkioExpectation {
  if (PURE_V2 || !existsSync('/sys/fs/cgroup/blkio')) {
    const controllers = (readText('/sys/fs/cgroup/cgroup.controllers') ?? '').split(/\s+/);
    return controllers.includes('io') ? { outcome: 'applied', file: null } : { outcome: 'refused', message: NO_WEIGHT };
  }
  const files = readdirSync('/sys/fs/cgroup/blkio');
  const cfq = files.includes('blkio.weight');
  const bfq = files.some((f) => f.startsWith('blkio.bfq.'));
  if (!cfq && !bfq) return { outcome: 'refused', message: NO_WEIGHT };
  if (cfq) return { outcome: 'applied', file: 'blkio.weight' };
  const version = probeRuntime(runtime).version;
  if (runtime === 'crun' && !(version && versionAtLeast(version, 1, 10))) {
    return { outcome: 'refused', message: /^--blkio-weight is not supported with crun [^\n]*--runtime runc/ };
  }
  return { outcome: 'applied', file: 'blkio.bfq.weight' };
}

/** How a test names the expected outcome. */
export function describeBlkio(e: BlkioExpectation): string {
  return e.outcome === 'applied'
    ? `written to ${e.file ?? 'the io weight file'}`
    : 'refused in one line that names the flag';
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}
