/**
 * Host capability probes, each computed once per process and cached: which OCI runtimes are
 * installed and usable, the cgroup layout, namespace and seccomp support, hardware
 * virtualization, and the RLIMIT_NOFILE hard limit. Cheap file reads first; programs are run
 * only to learn runtime versions.
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { writeFileAtomic } from '../common/fsutil.js';
import { delimiter, join } from 'node:path';
import { detectCgroupLayout, type CgroupLayout } from './cgroups.js';
import { runProgramSync } from './proc.js';
import { hostPaths } from '../common/paths.js';

/** Find an executable in PATH (plus the sbin directories root normally has). */
export function findExecutable(name: string): string | null {
  if (name.includes('/')) return isExecutable(name) ? name : null;
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const d of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (!dirs.includes(d)) dirs.push(d);
  }
  for (const d of dirs) {
    const p = join(d, name);
    if (isExecutable(p)) return p;
  }
  return null;
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

/** What the probes found about one OCI runtime. */
export interface RuntimeProbe {
  name: string;
  /** absolute path of the binary, or null when not installed */
  path: string | null;
  version: string | null;
  /** whether hull can run containers with it on this host */
  usable: boolean;
  /** why not, when not usable */
  reason?: string;
  /**
   * the runtime needs a private mount namespace without /sys/fs/cgroup/unified (crun < 1.9
   * refuses hybrid cgroup hosts); hull runs it through a wrapper then
   */
  needsPureV1View: boolean;
}

/** The host's capabilities, as far as hull cares. */
export interface HostProbe {
  cgroupLayout: CgroupLayout;
  cgroupNamespace: boolean;
  userNamespace: boolean;
  seccomp: boolean;
  /** hardware-accelerated KVM (/dev/kvm plus kvm_intel or kvm_amd) */
  kvm: boolean;
  /** why KVM is not usable, when it is not */
  kvmReason?: string;
  /** hard RLIMIT_NOFILE of this process: rlimits in containers may not exceed it without CAP_SYS_RESOURCE */
  nofileHard: number;
  /** CAP_SYS_RESOURCE in the effective set */
  capSysResource: boolean;
}

let hostCache: HostProbe | null = null;
const runtimeCache = new Map<string, RuntimeProbe>();

/** Parse the hard limit of "Max open files" from /proc/self/limits text. */
export function parseNofileHard(limits: string): number {
  const line = limits.split('\n').find((l) => l.startsWith('Max open files'));
  const hard = line?.trim().split(/\s+/)[4];
  if (hard === undefined) return 1024;
  return hard === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(hard);
}

function probeKvm(): { kvm: boolean; reason?: string } {
  if (!existsSync('/dev/kvm')) return { kvm: false, reason: '/dev/kvm is missing' };
  if (existsSync('/sys/module/kvm_intel') || existsSync('/sys/module/kvm_amd')) return { kvm: true };
  if (existsSync('/sys/module/kvm_pvm'))
    return { kvm: false, reason: 'no hardware virtualization (/dev/kvm is served by kvm_pvm)' };
  return { kvm: false, reason: 'no hardware virtualization (neither kvm_intel nor kvm_amd is loaded)' };
}

function capEffective(): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readOr('/proc/self/status', ''));
  return m ? BigInt('0x' + m[1]) : 0n;
}

/** Probe the host once; later calls return the cached result. */
export function probeHost(): HostProbe {
  if (hostCache) return hostCache;
  const maxUserNs = Number(readOr('/proc/sys/user/max_user_namespaces', '0').trim());
  const kvm = probeKvm();
  hostCache = {
    cgroupLayout: detectCgroupLayout(),
    cgroupNamespace: existsSync('/proc/self/ns/cgroup'),
    userNamespace: existsSync('/proc/self/ns/user') && maxUserNs > 0,
    seccomp: /^Seccomp:/m.test(readOr('/proc/self/status', '')) && existsSync('/proc/sys/kernel/seccomp/actions_avail'),
    kvm: kvm.kvm,
    ...(kvm.reason ? { kvmReason: kvm.reason } : {}),
    nofileHard: parseNofileHard(readOr('/proc/self/limits', '')),
    capSysResource: (capEffective() & (1n << 24n)) !== 0n,
  };
  return hostCache;
}

/** Parse "runc version 1.1.5" / "crun version 1.8.1" from `--version` output. */
export function parseRuntimeVersion(out: string): string | null {
  return /version\s+([0-9][^\s]*)/.exec(out)?.[1] ?? null;
}

/** True when version `v` (e.g. 1.8.1, 1.1.5+ds1) is at least major.minor. */
export function versionAtLeast(v: string, major: number, minor: number): boolean {
  const [a, b] = v.split(/[.+~-]/).map(Number);
  return (a ?? 0) > major || ((a ?? 0) === major && (b ?? 0) >= minor);
}

/**
 * Probe an OCI runtime (runc or crun): installed, version, and whether hull can use it on this
 * host's cgroup layout. Cached per process.
 */
export function probeRuntime(name: string): RuntimeProbe {
  const cached = runtimeCache.get(name);
  if (cached) return cached;
  const path = findExecutable(name);
  let result: RuntimeProbe;
  if (!path) {
    result = {
      name,
      path: null,
      version: null,
      usable: false,
      reason: `${name} is not installed`,
      needsPureV1View: false,
    };
  } else {
    let version: string | null = null;
    let reason: string | undefined;
    try {
      version =
        cachedVersion(path) ?? parseRuntimeVersion(runProgramSync(path, ['--version'], { timeoutMs: 5000 }).stdout);
      if (version) rememberVersion(path, version);
    } catch (e) {
      reason = `${name} --version failed: ${(e as Error).message}`;
    }
    const layout = probeHost().cgroupLayout;
    // crun learned hybrid hosts in 1.9; older ones need the unified mount out of sight
    const needsPureV1View = layout === 'hybrid' && name === 'crun' && !(version && versionAtLeast(version, 1, 9));
    if (!reason && needsPureV1View && (!findExecutable('unshare') || !findExecutable('umount'))) {
      reason = `${name} ${version} does not support hybrid cgroups and unshare/umount are missing to hide the unified mount`;
    }
    result = { name, path, version, usable: !reason, needsPureV1View, ...(reason ? { reason } : {}) };
  }
  runtimeCache.set(name, result);
  return result;
}

/**
 * Runtime versions survive the process in a small cache under /run (gone at reboot), keyed by the binary's
 * path, size and mtime, so that an upgrade is noticed: spawning `crun --version` on every hull command costs
 * several milliseconds of the start-up path.
 */
const VERSION_CACHE = hostPaths.runtimeVersions;

function binaryKey(path: string): string | null {
  try {
    const st = statSync(path);
    return `${path}:${st.size}:${st.mtimeMs}`;
  } catch {
    return null;
  }
}

function readVersionCache(): Record<string, string> {
  try {
    return JSON.parse(readFileSync(VERSION_CACHE, 'utf8')) as Record<string, string>;
  } catch {
    return {};
  }
}

function cachedVersion(path: string): string | null {
  const key = binaryKey(path);
  return key ? (readVersionCache()[key] ?? null) : null;
}

function rememberVersion(path: string, version: string): void {
  const key = binaryKey(path);
  if (!key) return;
  const cache = readVersionCache();
  if (cache[key] === version) return;
  cache[key] = version;
  try {
    writeFileAtomic(VERSION_CACHE, JSON.stringify(cache));
  } catch {
    // a read-only /run only costs the spawn next time
  }
}

/** The usable runtimes among runc and crun, in hull's order of preference. */
export function availableRuntimes(): RuntimeProbe[] {
  return ['runc', 'crun'].map(probeRuntime).filter((r) => r.usable);
}

/** Forget cached results (tests). */
export function resetProbeCache(): void {
  hostCache = null;
  runtimeCache.clear();
}
