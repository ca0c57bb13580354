/**
 * The graphical test image: a Debian root with x11-apps (xclock, xeyes), made with mmdebstrap
 * (--variant=minbase --include=x11-apps bookworm) and cached as /var/cache/hull-test/x11-root-<key>.tar
 * ($HULL_TEST_CACHE) per package list; tests `hull import` it.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const PACKAGES = ['x11-apps'];
const SUITE = 'bookworm';
const CACHE = process.env.HULL_TEST_CACHE ?? '/var/cache/hull-test';

/** The cached Debian root with x11-apps (made when missing); a string when the archive cannot be reached. */
export function x11Root(): { tar: string } | { skip: string } {
  const key = createHash('sha256').update(JSON.stringify({ SUITE, PACKAGES })).digest('hex').slice(0, 16);
  const tar = join(CACHE, `x11-root-${key}.tar`);
  if (existsSync(tar)) return { tar };
  mkdirSync(CACHE, { recursive: true });
  const tmp = `${tar}.tmp-${process.pid}`;
  const r = spawnSync(
    'mmdebstrap',
    ['--quiet', '--variant=minbase', '--format=tar', `--include=${PACKAGES.join(',')}`, SUITE, tmp],
    { encoding: 'utf8', timeout: 600_000 },
  );
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    if (
      /Failed to fetch|Could not resolve|Temporary failure|Connection (failed|refused|timed out)|unable to connect/i.test(
        r.stderr,
      )
    )
      return {
        skip: `the Debian archive cannot be reached to make the X11 image: ${r.stderr.trim().split('\n').pop()}`,
      };
    throw new Error(`mmdebstrap failed (${r.status ?? r.signal}):\n${r.stderr.slice(-2000)}`);
  }
  renameSync(tmp, tar);
  return { tar };
}
