/**
 * The leak check: after every instance of a hull root was removed, nothing of it may be left on the host.
 *
 *  - no mount points under the root (/proc/self/mountinfo): storage pools' mounts included;
 *  - no loop device backed by a file under the root (a loop-backed storage pool's image);
 *  - no storage journal entry left under <root>/storage/journal (a volume operation not finished or rolled back);
 *  - no cgroup directory /sys/fs/cgroup/<hierarchy>/hull/<id> (v1, hybrid) or /sys/fs/cgroup/hull/<id> (pure v2)
 *    for any instance the root ever had;
 *  - no conmon/runc/crun/QEMU/VM monitor/port proxy (or hull exit-command) process whose argv mentions the root, and no live process
 *    in one of those instances' cgroups (zombies waiting for the host's init to reap them do not count);
 *  - no X server of a graphical container (Xvnc; it works in its instance dir, so its cwd is under the root), and
 *    no display socket (vnc.sock, x11/X<n>) left: they live in the instance dirs, which must all be gone;
 *  - networks: no network namespace file under <root>/netns, no bridge of the root (hl<root hash>…) and no veth
 *    enslaved to one, no iptables or ip6tables rule naming the root's CNI networks, bridges or instances, no aardvark-dns
 *    serving the root, no attachment record left under <root>/networks/attachments;
 *  - the state store lists no instances; <root>/containers and the runtimes' state dirs are empty;
 *  - the host's device files /dev/null, /dev/zero, /dev/random, /dev/urandom and /dev/tty keep the owner and mode
 *    they had when the test process loaded this module (a runtime that chowns a process's stdio must never reach
 *    the host's files: crun before 1.9 made /dev/null the container user's).
 *
 * Processes and cgroups go away asynchronously (a SIGKILLed container's init takes a moment), so the check is
 * retried for a short while before it reports.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, statfsSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

export interface Leak {
  kind: 'mount' | 'loop' | 'cgroup' | 'process' | 'instance' | 'file' | 'link' | 'iptables' | 'host-device';
  what: string;
}

const CGROUP_ROOT = '/sys/fs/cgroup';
const CGROUP2_SUPER_MAGIC = 0x63677270;

/** Mount points of this process's mount namespace (mountinfo's fifth field, octal escapes decoded). */
export function readMountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
}

export function mountLeaks(root: string): Leak[] {
  return readMountPoints()
    .filter((m) => m === root || m.startsWith(root + '/'))
    .map((m) => ({ kind: 'mount', what: m }));
}

/** Loop devices whose backing file is under the root (`losetup -J -l`). */
export function loopLeaks(root: string): Leak[] {
  const r = spawnSync('losetup', ['-J', '-l'], { encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout.trim()) return [];
  const devs = (JSON.parse(r.stdout) as { loopdevices?: { name: string; 'back-file'?: string | null }[] }).loopdevices;
  return (devs ?? [])
    .filter((d) => {
      const f = (d['back-file'] ?? '').replace(/ \(deleted\)$/, '');
      return f === root || f.startsWith(root + '/');
    })
    .map((d) => ({ kind: 'loop', what: `${d.name} (${d['back-file']})` }));
}

/**
 * Every hierarchy directory of the host: /sys/fs/cgroup itself on a pure cgroup v2 host (its subdirectories are
 * cgroups there), else /sys/fs/cgroup/<controller> (v1) and the cgroup2 mount at /sys/fs/cgroup/unified (hybrid).
 */
function cgroupHierarchies(): string[] {
  try {
    if (statfsSync(CGROUP_ROOT).type === CGROUP2_SUPER_MAGIC) return [CGROUP_ROOT];
    return readdirSync(CGROUP_ROOT, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => join(CGROUP_ROOT, d.name));
  } catch {
    return [];
  }
}

export function cgroupLeaks(ids: string[]): Leak[] {
  const out: Leak[] = [];
  for (const h of cgroupHierarchies()) {
    for (const id of ids) {
      const p = join(h, 'hull', id);
      if (existsSync(p)) out.push({ kind: 'cgroup', what: p });
    }
  }
  return out;
}

interface ProcInfo {
  pid: number;
  argv: string[];
  state: string;
  cgroup: string;
}

function readProc(pid: number): ProcInfo | null {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((a, i, all) => a !== '' || i < all.length - 1);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const state = /^State:\s+(\S)/m.exec(status)?.[1] ?? '?';
    const cgroup = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    return { pid, argv, state, cgroup };
  } catch {
    return null; // gone meanwhile
  }
}

export function processLeaks(root: string, ids: string[]): Leak[] {
  const out: Leak[] = [];
  const idSet = new Set(ids);
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    const p = readProc(pid);
    if (!p || p.state === 'Z' || p.argv.length === 0) continue;
    const prog = basename(p.argv[0]!);
    const mentionsRoot = p.argv.some((a) => a === root || a.includes(root + '/') || a.endsWith('=' + root));
    const isHull = p.argv.some((a) => a.endsWith('hull.mjs'));
    // VMs: QEMU (its disk lives in the root), hull's VM monitor (its argv is the instance dir) and the
    // volumes' virtiofsd (its socket is in the instance dir)
    // the userland port proxy of IPv6 published ports (its argv names an attachment record under the root)
    const isProxy = p.argv.some((a) => a.endsWith('port-proxy.cjs') || a.endsWith('proxy-main.ts'));
    const isVm =
      prog.startsWith('qemu-system') ||
      prog === 'virtiofsd' ||
      p.argv.some((a) => a.endsWith('vm-monitor.cjs') || a.endsWith('monitor-main.ts'));
    if (mentionsRoot && (['conmon', 'runc', 'crun', 'aardvark-dns'].includes(prog) || isHull || isVm || isProxy)) {
      out.push({ kind: 'process', what: `${pid} ${p.argv.join(' ').slice(0, 200)}` });
      continue;
    }
    // a graphical container's Xvnc names the root nowhere in its argv (its sockets are relative): its cwd does
    if (prog === 'Xvnc') {
      let cwd = '';
      try {
        cwd = readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        /* gone meanwhile */
      }
      if (cwd === root || cwd.startsWith(root + '/')) {
        out.push({ kind: 'process', what: `${pid} (Xvnc in ${cwd}) ${p.argv.join(' ').slice(0, 160)}` });
        continue;
      }
    }
    const m = /\/hull\/([0-9a-f]{64})/.exec(p.cgroup);
    if (m && idSet.has(m[1]!))
      out.push({
        kind: 'process',
        what: `${pid} (in the cgroup of ${m[1]!.slice(0, 12)}) ${p.argv.join(' ').slice(0, 120)}`,
      });
  }
  return out;
}

export function fileLeaks(root: string): Leak[] {
  const out: Leak[] = [];
  const containers = join(root, 'containers');
  if (existsSync(containers))
    for (const d of readdirSync(containers)) out.push({ kind: 'file', what: join(containers, d) });
  // VM root disks are cached per image under <root>/vm/disks; no half-built ones may stay behind
  const disks = join(root, 'vm', 'disks');
  if (existsSync(disks))
    for (const d of readdirSync(disks)) if (!d.endsWith('.ext4')) out.push({ kind: 'file', what: join(disks, d) });
  // VM templates (vm/template.ts) are made in <key>.tmp-<pid> and renamed: none may stay behind
  const templates = join(root, 'vm', 'templates');
  if (existsSync(templates))
    for (const d of readdirSync(templates))
      if (d.includes('.tmp-')) out.push({ kind: 'file', what: join(templates, d) });
  // VMs' root disks in storage pools (engine/vm-disks.ts) go with their instances: the default pool's, and those
  // of the pools still mounted
  const vmDisks = [join(root, 'volumes', '.vm-disks')];
  const mnt = join(root, 'storage', 'mnt');
  if (existsSync(mnt)) for (const p of readdirSync(mnt)) vmDisks.push(join(mnt, p, 'vm-disks'));
  for (const dir of vmDisks)
    if (existsSync(dir)) for (const f of readdirSync(dir)) out.push({ kind: 'file', what: join(dir, f) });
  const journal = join(root, 'storage', 'journal');
  if (existsSync(journal)) for (const f of readdirSync(journal)) out.push({ kind: 'file', what: join(journal, f) });
  const run = join(root, 'run');
  for (const rt of ['runc', 'crun']) {
    const dir = join(run, rt);
    if (!existsSync(dir)) continue;
    for (const d of readdirSync(dir)) if (/^[0-9a-f]{64}$/.test(d)) out.push({ kind: 'file', what: join(dir, d) });
  }
  return out;
}

/** The hash hull puts into the names of a root's bridges (hl<hash>…) and CNI networks (hull-<hash>-NAME). */
export function rootHash(root: string): string {
  return createHash('sha256').update(resolve(root)).digest('hex').slice(0, 6);
}

/** Network namespaces, bridges, veths, iptables rules and attachment records of the root. */
export function networkLeaks(root: string, ids: string[]): Leak[] {
  const out: Leak[] = [];
  const netns = join(root, 'netns');
  if (existsSync(netns)) for (const f of readdirSync(netns)) out.push({ kind: 'file', what: join(netns, f) });
  const att = join(root, 'networks', 'attachments');
  if (existsSync(att)) for (const d of readdirSync(att)) out.push({ kind: 'file', what: join(att, d) });
  const prefix = `hl${rootHash(root)}`;
  const links = spawnSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' });
  if (links.status === 0) {
    for (const l of JSON.parse(links.stdout || '[]') as { ifname: string; master?: string }[]) {
      if (l.ifname.startsWith(prefix)) out.push({ kind: 'link', what: `bridge ${l.ifname}` });
      else if (l.master?.startsWith(prefix)) out.push({ kind: 'link', what: `${l.ifname} (a port of ${l.master})` });
    }
  }
  const marks = [prefix, `hull-${rootHash(root)}-`, ...ids];
  // ip6tables too: dual-stack networks have the plugins' and hull's rules there as well
  for (const prog of ['iptables', 'ip6tables'])
    for (const table of ['filter', 'nat']) {
      const r = spawnSync(prog, ['-w', '-t', table, '-S'], { encoding: 'utf8' });
      for (const line of r.status === 0 ? r.stdout.split('\n') : []) {
        if (marks.some((m) => line.includes(m))) out.push({ kind: 'iptables', what: `${prog} ${table}: ${line}` });
      }
    }
  return out;
}

/** The host device files whose owner and mode hull must never change. */
export const HOST_DEVICES = ['/dev/null', '/dev/zero', '/dev/random', '/dev/urandom', '/dev/tty'];

/** `uid:gid mode` of each host device file (null when it does not exist). */
export function hostDeviceModes(): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const d of HOST_DEVICES) {
    try {
      const st = statSync(d);
      out[d] = `${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)}`;
    } catch {
      out[d] = null;
    }
  }
  return out;
}

/** Recorded once, when the test process first loads the leak check. */
const HOST_DEVICES_AT_START = hostDeviceModes();

/** The host device files whose owner or mode differ from the start of the test process. */
export function hostDeviceLeaks(): Leak[] {
  const now = hostDeviceModes();
  return HOST_DEVICES.filter((d) => now[d] !== HOST_DEVICES_AT_START[d]).map((d) => ({
    kind: 'host-device',
    what: `${d} changed from ${HOST_DEVICES_AT_START[d] ?? 'absent'} to ${now[d] ?? 'absent'} (owner mode)`,
  }));
}

/**
 * Everything of `root` that is still there. `ids`: every instance id the root ever had; `listIds`: what the
 * state store lists now (should be nothing). Retries for up to `settleMs` while only processes/cgroups remain.
 */
export async function checkLeaks(
  root: string,
  ids: string[],
  listIds: () => Promise<string[]>,
  settleMs = 5000,
): Promise<Leak[]> {
  const deadline = Date.now() + settleMs;
  for (;;) {
    const leaks: Leak[] = [
      ...(await listIds()).map((id): Leak => ({ kind: 'instance', what: id })),
      ...mountLeaks(root),
      ...loopLeaks(root),
      ...cgroupLeaks(ids),
      ...processLeaks(root, ids),
      ...fileLeaks(root),
      ...networkLeaks(root, ids),
      ...hostDeviceLeaks(),
    ];
    if (leaks.length === 0 || Date.now() > deadline) return leaks;
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function formatLeaks(leaks: Leak[]): string {
  return leaks.map((l) => `  ${l.kind}: ${l.what}`).join('\n');
}
