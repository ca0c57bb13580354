/**
 * The container policy: turns an instance's resolved configuration into an OCI runtime spec
 * (`config.json`) with the isolation users expect from docker: private namespaces, docker's default
 * mounts, capabilities, seccomp profile, masked and read-only /proc and /sys paths, a device
 * allowlist, resource limits and rlimits that the host can actually grant.
 */
import {
  type Dirent,
  existsSync,
  lstatSync,
  readFileSync,
  readdirSync,
  realpathSync,
  type Stats,
  statSync,
} from 'node:fs';
import { availableParallelism, hostname as osHostname } from 'node:os';
import { posix } from 'node:path';
import { HostSupportError, InvalidArgumentError, NotFoundError } from '../common/errors.js';
import type {
  ContainerOptions,
  ExecOptions,
  IdMapping,
  InstanceConfig,
  JoinedNamespaces,
  Resources,
} from '../common/instance.js';
import { mergeEnv } from '../common/parse.js';
import { ALL_CAPABILITIES, hostCapabilities, normalizeCapability, resolveCapabilities } from './capabilities.js';
import {
  OCI_VERSION,
  type LinuxSeccomp,
  type OciCapabilities,
  type OciDevice,
  type OciDeviceCgroup,
  type OciMount,
  type OciNamespace,
  type OciProcess,
  type OciResources,
  type OciRlimit,
  type OciSpec,
} from './oci-spec.js';
import { defaultSeccompProfile, loadSeccompProfile } from './seccomp.js';
import { resolveUser } from './users.js';
import { containerOptions, parseDeviceCgroupRule } from './options.js';

/** PATH given to a container whose environment has none (docker's). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The most open files a container gets by default (docker's 1048576), capped by the host. */
export const DEFAULT_NOFILE = 1048576;

/** Smallest memory limit accepted (docker's). */
export const MIN_MEMORY = 6 * 1024 * 1024;

/** CFS period used for --cpus, in microseconds. */
export const CPU_PERIOD = 100_000;

/** /proc and /sys paths hidden from unprivileged containers. */
export const MASKED_PATHS: readonly string[] = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

/** /proc paths made read-only in unprivileged containers. */
export const READONLY_PATHS: readonly string[] = [
  '/proc/bus',
  '/proc/fs',
  '/proc/irq',
  '/proc/sys',
  '/proc/sysrq-trigger',
];

/** Options every tmpfs mount (--tmpfs, --mount type=tmpfs) starts from, as docker's; the user's options override. */
export const TMPFS_DEFAULT_OPTIONS: readonly string[] = ['noexec', 'nosuid', 'nodev'];

/**
 * Sysctls docker sets in a container with its own network namespace: any group may open ICMP echo
 * sockets, so `ping` works without CAP_NET_RAW or a setuid binary.
 */
export const NETNS_SYSCTLS: Readonly<Record<string, string>> = { 'net.ipv4.ping_group_range': '0 2147483647' };

/** Device cgroup rules of an unprivileged container: deny all, then the usual character devices. */
const DEFAULT_DEVICE_RULES: readonly OciDeviceCgroup[] = [
  { allow: false, access: 'rwm' },
  // mknod of any device is allowed (CAP_MKNOD); using one still needs a rule below.
  { allow: true, type: 'c', access: 'm' },
  { allow: true, type: 'b', access: 'm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, // null
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }, // zero
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' }, // full
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' }, // random
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' }, // urandom
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' }, // tty
  { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' }, // console (the terminal)
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' }, // ptmx
  { allow: true, type: 'c', major: 136, access: 'rwm' }, // pts/*
];

/** rlimit names users give (`nofile`) and the OCI type (`RLIMIT_NOFILE`). */
const RLIMITS = [
  'as',
  'core',
  'cpu',
  'data',
  'fsize',
  'locks',
  'memlock',
  'msgqueue',
  'nice',
  'nofile',
  'nproc',
  'rss',
  'rtprio',
  'rttime',
  'sigpending',
  'stack',
];

/** The rows of /proc/self/limits, by rlimit name. */
const LIMITS_ROWS: Record<string, string> = {
  'Max cpu time': 'cpu',
  'Max file size': 'fsize',
  'Max data size': 'data',
  'Max stack size': 'stack',
  'Max core file size': 'core',
  'Max resident set': 'rss',
  'Max processes': 'nproc',
  'Max open files': 'nofile',
  'Max locked memory': 'memlock',
  'Max address space': 'as',
  'Max file locks': 'locks',
  'Max pending signals': 'sigpending',
  'Max msgqueue size': 'msgqueue',
  'Max nice priority': 'nice',
  'Max realtime priority': 'rtprio',
  'Max realtime timeout': 'rttime',
};

/** What the host offers, as far as the spec depends on it. {@link probeHostFacts} reads it. */
export interface HostFacts {
  /** CPUs hull may use */
  cpuCount: number;
  /** online CPU list, e.g. "0-1" */
  onlineCpus: string;
  /** online memory nodes, e.g. "0" */
  onlineMems: string;
  /** the memory cgroup accounts swap (memory.memsw.* / memory.swap.max) */
  swapAccounting: boolean;
  /** the blkio/io cgroup has a weight knob */
  blkioWeight: boolean;
  /** hard rlimits of hull's process by name (nofile, nproc...); Infinity for unlimited */
  rlimits: Record<string, number>;
  /** capabilities hull can hand on (its bounding set) */
  capabilities: string[];
}

/** Input of {@link buildRuntimeSpec}. */
export interface SpecInput {
  id: string;
  config: InstanceConfig;
  /** absolute path of the mounted root filesystem */
  rootfs: string;
  /** e.g. '/hull/<id>' (cgroupfs style), computed by the driver */
  cgroupsPath: string;
  /** whether to add a cgroup namespace (the host supports it) */
  cgroupNamespace: boolean;
  /** current RLIMIT_NOFILE hard limit of the host */
  hostNofileHard: number;
  /** bind mounts made by the driver, e.g. /etc/hosts, /etc/resolv.conf, /etc/hostname */
  extraMounts?: OciMount[];
  /** a network namespace the engine made and configured (hull networks): joined instead of a fresh one */
  netnsPath?: string;
  /** --init: the host's static init binary (tini), bound read-only at INIT_PATH; it runs the command as its child */
  initBinary?: string;
  /** host facts; read from /proc and /sys when left out */
  host?: HostFacts;
  /** the host's device nodes a privileged container gets; read from /dev when left out */
  hostDevices?: OciDevice[];
  /** namespaces of another instance to join (container:X modes), resolved by the engine */
  joined?: JoinedNamespaces;
  /** the hostname when it comes from elsewhere (the instance whose network it joins) */
  hostname?: string;
  /** --ipc shareable: the host directory (a tmpfs) to bind at /dev/shm */
  shm?: string;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

/** The current process's cgroup v2 path (from /proc/self/cgroup), or "/". */
function ownUnifiedCgroup(): string {
  const line = (readText('/proc/self/cgroup') ?? '').split('\n').find((l) => l.startsWith('0::'));
  return line ? line.slice(3) || '/' : '/';
}

/** Hard rlimits of this process from /proc/self/limits, by name; Infinity for unlimited. */
export function readHostRlimits(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of (readText('/proc/self/limits') ?? '').split('\n')) {
    for (const [row, name] of Object.entries(LIMITS_ROWS)) {
      if (!line.startsWith(row)) continue;
      const fields = line.slice(row.length).trim().split(/\s+/);
      const hard = fields[1];
      if (hard) out[name] = hard === 'unlimited' ? Infinity : Number(hard);
    }
  }
  return out;
}

/** Read the host facts the spec depends on from /proc and /sys. */
export function probeHostFacts(): HostFacts {
  const v1 = existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes');
  const unified = `/sys/fs/cgroup${ownUnifiedCgroup()}`.replace(/\/$/, '');
  const swapAccounting = v1
    ? existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes')
    : v2SwapAccounting(unified);
  return {
    cpuCount: availableParallelism(),
    onlineCpus: readText('/sys/devices/system/cpu/online') ?? `0-${availableParallelism() - 1}`,
    onlineMems: readText('/sys/devices/system/node/online') ?? '0',
    swapAccounting,
    blkioWeight: blkioWeightSupported(unified),
    rlimits: readHostRlimits(),
    capabilities: hostCapabilities(),
  };
}

/**
 * Whether cgroup v2 accounts swap (memory.swap.max). The root cgroup has no memory.* files, so a cgroup that
 * has the memory controller answers: ours, systemd's init.scope, or any child of the root. With none to ask
 * (hull runs in the root cgroup, as under a minimal init, and no child has been made yet) the kernel does
 * unless it has no swap support or was booted with swap accounting off.
 */
function v2SwapAccounting(unified: string): boolean {
  let children: string[] = [];
  try {
    children = readdirSync('/sys/fs/cgroup', { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => `/sys/fs/cgroup/${d.name}`);
  } catch {
    /* no cgroup2 mount */
  }
  for (const dir of [unified, '/sys/fs/cgroup/init.scope', ...children]) {
    if (existsSync(`${dir}/memory.swap.max`)) return true;
    if (existsSync(`${dir}/memory.max`)) return false; // the memory controller is there, swap accounting is not
  }
  const memory = (readText('/sys/fs/cgroup/cgroup.controllers') ?? '').split(/\s+/).includes('memory');
  return (
    memory &&
    existsSync('/proc/swaps') &&
    !/(^|\s)(swapaccount=0|cgroup\.memory=\S*noswap)/.test(readText('/proc/cmdline') ?? '')
  );
}

/**
 * Whether the block I/O cgroup has a weight knob. The weight files are not shown on the root cgroup
 * with BFQ, so on v1 any blkio.bfq.* file (BFQ's policy is registered) counts, as does CFQ's blkio.weight.
 */
function blkioWeightSupported(unified: string): boolean {
  if (existsSync('/sys/fs/cgroup/blkio')) {
    try {
      return readdirSync('/sys/fs/cgroup/blkio').some((f) => f === 'blkio.weight' || f.startsWith('blkio.bfq.'));
    } catch {
      return false;
    }
  }
  if (existsSync(`${unified}/io.weight`) || existsSync(`${unified}/io.bfq.weight`)) return true;
  return (
    unified === '/sys/fs/cgroup' && (readText('/sys/fs/cgroup/cgroup.controllers') ?? '').split(/\s+/).includes('io')
  );
}

/** Parse a CPU or memory-node list ("0-3,6") into numbers; null when malformed. */
export function parseCpuList(list: string): Set<number> | null {
  const out = new Set<number>();
  if (list.trim() === '') return out;
  for (const part of list.split(',')) {
    const m = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
    if (!m) return null;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi - lo > 65536) return null;
    for (let i = lo; i <= hi; i++) out.add(i);
  }
  return out;
}

function checkCpuList(flag: string, list: string, online: string): void {
  const wanted = parseCpuList(list);
  if (!wanted || wanted.size === 0)
    throw new InvalidArgumentError(`invalid ${flag} value ${JSON.stringify(list)}: expected a list like 0-1,3`);
  const available = parseCpuList(online) ?? new Set<number>();
  const missing = [...wanted].filter((n) => !available.has(n));
  if (missing.length > 0) {
    throw new InvalidArgumentError(
      `${flag} ${list}: ${missing.join(',')} not available on this host (online: ${online})`,
    );
  }
}

/** Format a byte count for messages. */
function bytes(n: number): string {
  if (n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  return `${n} bytes`;
}

/** Map hull's resource settings to OCI cgroup resources with docker's semantics and checks. */
export function buildResources(res: Resources, host: HostFacts): OciResources {
  const out: OciResources = {};
  const memory: NonNullable<OciResources['memory']> = {};
  if (res.memory !== undefined && res.memory !== 0) {
    if (!Number.isInteger(res.memory))
      throw new InvalidArgumentError(`memory limit ${res.memory} must be a whole number of bytes`);
    if (res.memory < MIN_MEMORY) {
      throw new InvalidArgumentError(`memory limit ${bytes(res.memory)} is too small: the minimum is 6 MiB`);
    }
    memory.limit = res.memory;
  }
  const swap = res.memorySwap;
  // without a memory limit, unlimited swap (-1) is what there is already (docker accepts it alone)
  if (swap !== undefined && swap !== 0 && !(swap === -1 && memory.limit === undefined)) {
    if (memory.limit === undefined)
      throw new InvalidArgumentError('--memory-swap needs --memory: set the memory limit too');
    if (swap !== -1 && (!Number.isInteger(swap) || swap < memory.limit)) {
      throw new InvalidArgumentError(
        `--memory-swap ${bytes(swap)} is below --memory ${bytes(memory.limit)}: it is the total of memory and swap`,
      );
    }
    if (!host.swapAccounting) {
      throw new HostSupportError(
        '--memory-swap is not supported: the host kernel does not account swap (boot it with swapaccount=1), or leave --memory-swap out',
      );
    }
    memory.swap = swap;
  } else if (memory.limit !== undefined && host.swapAccounting) {
    // docker: with --memory alone, the container may use as much swap as memory.
    memory.swap = memory.limit * 2;
  }
  if (Object.keys(memory).length > 0) out.memory = memory;

  const cpu: NonNullable<OciResources['cpu']> = {};
  if (res.cpus !== undefined && res.cpus !== 0) {
    const max = host.cpuCount;
    if (!Number.isFinite(res.cpus) || res.cpus < 0.01 || res.cpus > max) {
      throw new InvalidArgumentError(
        `--cpus ${res.cpus} is out of range: it must be between 0.01 and ${max} (this host has ${max} CPUs)`,
      );
    }
    cpu.quota = Math.round(res.cpus * CPU_PERIOD);
    cpu.period = CPU_PERIOD;
  }
  if (res.cpuShares !== undefined && res.cpuShares !== 0) {
    if (!Number.isInteger(res.cpuShares) || res.cpuShares < 2 || res.cpuShares > 262144) {
      throw new InvalidArgumentError(`--cpu-shares ${res.cpuShares} is out of range: it must be between 2 and 262144`);
    }
    cpu.shares = res.cpuShares;
  }
  if (res.cpusetCpus) {
    checkCpuList('--cpuset-cpus', res.cpusetCpus, host.onlineCpus);
    cpu.cpus = res.cpusetCpus;
  }
  if (res.cpusetMems) {
    checkCpuList('--cpuset-mems', res.cpusetMems, host.onlineMems);
    cpu.mems = res.cpusetMems;
  }
  if (Object.keys(cpu).length > 0) out.cpu = cpu;

  if (res.pidsLimit !== undefined && res.pidsLimit > 0) {
    if (!Number.isInteger(res.pidsLimit))
      throw new InvalidArgumentError(`--pids-limit ${res.pidsLimit} must be a whole number`);
    out.pids = { limit: res.pidsLimit };
  }
  if (res.blkioWeight !== undefined && res.blkioWeight !== 0) {
    if (!Number.isInteger(res.blkioWeight) || res.blkioWeight < 10 || res.blkioWeight > 1000) {
      throw new InvalidArgumentError(
        `--blkio-weight ${res.blkioWeight} is out of range: it must be between 10 and 1000`,
      );
    }
    if (!host.blkioWeight) {
      throw new HostSupportError(
        "--blkio-weight is not supported: the host's block I/O cgroup has no weight (needs the BFQ scheduler); leave it out",
      );
    }
    out.blockIO = { weight: res.blkioWeight };
  }
  return out;
}

/**
 * The rlimits of a container: RLIMIT_NOFILE = min(1048576, host hard) by default, then the user's
 * ulimits. A limit the host cannot grant (above hull's own hard limit) is refused here, since the
 * runtime would fail with a bare EPERM otherwise. -1 means unlimited (the host's hard limit).
 */
export function buildRlimits(ulimits: ContainerOptions['ulimits'], hostHard: Record<string, number>): OciRlimit[] {
  const byType = new Map<string, OciRlimit>();
  const nofile = Math.min(DEFAULT_NOFILE, hostHard.nofile ?? DEFAULT_NOFILE);
  byType.set('nofile', { type: 'RLIMIT_NOFILE', soft: nofile, hard: nofile });
  for (const u of ulimits) {
    const name = u.type
      .trim()
      .toLowerCase()
      .replace(/^rlimit_/, '');
    if (!RLIMITS.includes(name))
      throw new InvalidArgumentError(`unknown ulimit ${u.type}: expected one of ${RLIMITS.join(', ')}`);
    const max = hostHard[name] ?? Infinity;
    const value = (v: number, which: string): number => {
      if (v === -1) return Number.isFinite(max) ? max : Number.MAX_SAFE_INTEGER;
      if (!Number.isInteger(v) || v < 0)
        throw new InvalidArgumentError(`ulimit ${name}: ${which} limit ${v} must be a non-negative whole number or -1`);
      return v;
    };
    const soft = value(u.soft, 'soft');
    const hard = value(u.hard, 'hard');
    if (soft > hard)
      throw new InvalidArgumentError(`ulimit ${name}: soft limit ${u.soft} is above hard limit ${u.hard}`);
    if (hard > max) {
      throw new InvalidArgumentError(
        `ulimit ${name}: hard limit ${u.hard} is above the host's maximum of ${max}; choose ${max} or less`,
      );
    }
    byType.set(name, { type: `RLIMIT_${name.toUpperCase()}`, soft, hard });
  }
  return [...byType.values()];
}

function hasEnv(env: readonly string[], key: string): boolean {
  return env.some((e) => e.startsWith(`${key}=`));
}

function checkCwd(cwd: string): string {
  if (!cwd.startsWith('/'))
    throw new InvalidArgumentError(
      `the working directory ${JSON.stringify(cwd)} is invalid: it must be an absolute path`,
    );
  return posix.normalize(cwd).replace(/(.)\/+$/, '$1');
}

/** Is container id `id` inside one of the mappings? */
function mapped(mappings: readonly IdMapping[], id: number): boolean {
  return mappings.some((m) => id >= m.containerID && id < m.containerID + m.size);
}

function checkMappings(kind: string, mappings: readonly IdMapping[]): void {
  if (mappings.length === 0) throw new InvalidArgumentError(`user namespace needs at least one ${kind} mapping`);
  for (const m of mappings) {
    if (![m.containerID, m.hostID, m.size].every((n) => Number.isInteger(n) && n >= 0) || m.size === 0) {
      throw new InvalidArgumentError(
        `invalid ${kind} mapping ${m.containerID}:${m.hostID}:${m.size}: ids must be whole numbers and the size at least 1`,
      );
    }
  }
}

/** The capabilities a container gets, limited to what the host can grant. Explicitly added ones the host lacks are an error. */
function containerCapabilities(config: ContainerOptions, host: HostFacts): string[] {
  const wanted = resolveCapabilities(config.capAdd, config.capDrop, config.privileged);
  const available = new Set(host.capabilities);
  if (!config.privileged) {
    for (const name of config.capAdd) {
      const cap = normalizeCapability(name);
      if (cap !== 'ALL' && !available.has(cap)) {
        throw new HostSupportError(
          `capability ${cap} cannot be granted: hull itself runs without it on this host; remove --cap-add ${name}`,
        );
      }
    }
  }
  return wanted.filter((c) => available.has(c));
}

function capabilitySets(caps: readonly string[]): OciCapabilities {
  // inheritable stays empty (docker 23+): exec'd files do not keep capabilities through fI.
  return { bounding: [...caps], effective: [...caps], permitted: [...caps], inheritable: [], ambient: [] };
}

function seccompFor(config: ContainerOptions, caps: readonly string[]): LinuxSeccomp | undefined {
  const profile = config.seccomp.trim();
  if (config.privileged || profile === 'unconfined') return undefined;
  if (profile === '' || profile === 'default') return defaultSeccompProfile(caps);
  return loadSeccompProfile(profile, caps);
}

/** Where --init's binary appears inside the container (docker's path). */
export const INIT_PATH = '/sbin/docker-init';

function requireInit(path: string | undefined): string {
  if (!path)
    throw new HostSupportError(
      '--init needs a static tini on the host (/usr/bin/tini-static): apt-get install tini, or drop --init',
    );
  return path;
}

/** The mounts every container gets. */
function defaultMounts(opts: {
  /** --shm-size in bytes; 64 MiB when unset (docker's default) */
  shmSize?: number;
  privileged: boolean;
  userns: boolean;
  privateNetns: boolean;
  gid5Mapped: boolean;
}): OciMount[] {
  const sysRo = opts.privileged ? [] : ['ro'];
  const ptsOptions = ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'];
  if (opts.gid5Mapped) ptsOptions.push('gid=5'); // tty group
  const mounts: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ptsOptions },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: [
        'nosuid',
        'noexec',
        'nodev',
        'mode=1777',
        `size=${Math.ceil((opts.shmSize ?? 64 * 1024 * 1024) / 1024)}k`,
      ],
    },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
  ];
  if (opts.userns && !opts.privateNetns) {
    // sysfs can only be mounted by the owner of the network namespace: bind the host's instead.
    mounts.push({
      destination: '/sys',
      type: 'bind',
      source: '/sys',
      options: ['rbind', 'nosuid', 'noexec', 'nodev', ...sysRo],
    });
  } else {
    mounts.push({
      destination: '/sys',
      type: 'sysfs',
      source: 'sysfs',
      options: ['nosuid', 'noexec', 'nodev', ...sysRo],
    });
  }
  mounts.push({
    destination: '/sys/fs/cgroup',
    type: 'cgroup',
    source: 'cgroup',
    options: ['nosuid', 'noexec', 'nodev', 'relatime', opts.privileged ? 'rw' : 'ro'],
  });
  return mounts;
}

/** The user's bind and tmpfs mounts, checked. */
function userMounts(config: InstanceConfig): OciMount[] {
  return config.mounts.map((m) => {
    if (!m.target.startsWith('/'))
      throw new InvalidArgumentError(`invalid mount target ${JSON.stringify(m.target)}: it must be an absolute path`);
    const destination = posix.normalize(m.target).replace(/(.)\/+$/, '$1');
    if (destination === '/')
      throw new InvalidArgumentError('invalid mount target /: the root filesystem cannot be a mount target');
    if (m.type === 'bind') {
      if (!m.source.startsWith('/'))
        throw new InvalidArgumentError(
          `invalid bind mount source ${JSON.stringify(m.source)}: it must be an absolute path`,
        );
      try {
        statSync(m.source);
      } catch {
        throw new NotFoundError(`invalid mount config for type "bind": bind source path does not exist: ${m.source}`);
      }
      return {
        destination,
        type: 'bind',
        source: m.source,
        options: [m.nonRecursive ? 'bind' : 'rbind', m.propagation ?? 'rprivate', ...(m.readonly ? ['ro'] : [])],
      };
    }
    return {
      destination,
      type: 'tmpfs',
      source: 'tmpfs',
      options: mergeTmpfsOptions(TMPFS_DEFAULT_OPTIONS, m.options),
    };
  });
}

/** Mount flags that come in pairs: a later one of a pair replaces the earlier (`exec` after `noexec`). */
const FLAG_PAIRS: readonly [string, string][] = [
  ['exec', 'noexec'],
  ['suid', 'nosuid'],
  ['dev', 'nodev'],
  ['rw', 'ro'],
  ['sync', 'async'],
  ['atime', 'noatime'],
  ['diratime', 'nodiratime'],
];

/**
 * Docker's MergeTmpfsOptions: `options` over `defaults`; a flag replaces its opposite, `key=value` replaces
 * the same key, and nothing is listed twice.
 */
export function mergeTmpfsOptions(defaults: readonly string[], options: readonly string[]): string[] {
  const out: string[] = [];
  for (const opt of [...defaults, ...options]) {
    const o = opt.trim();
    if (o === '') continue;
    const pair = FLAG_PAIRS.find((p) => p.includes(o));
    const key = o.includes('=') ? o.slice(0, o.indexOf('=') + 1) : null;
    const clash = (x: string) => x === o || (pair?.includes(x) ?? false) || (key !== null && x.startsWith(key));
    const i = out.findIndex(clash);
    if (i >= 0) out.splice(i, 1);
    out.push(o);
  }
  return out;
}

/**
 * Combine mount lists: a later mount at the same destination replaces an earlier one (so `--tmpfs
 * /dev/shm` replaces the default /dev/shm), and mounts other than the defaults are ordered parents
 * before children.
 */
function combineMounts(defaults: OciMount[], rest: OciMount[]): OciMount[] {
  const depth = (m: OciMount) => m.destination.split('/').filter(Boolean).length;
  const latest = new Map<string, OciMount>();
  for (const m of [...defaults, ...rest]) latest.set(m.destination, m);
  const keptDefaults = defaults.filter((m) => latest.get(m.destination) === m);
  const restKept = rest.filter((m) => latest.get(m.destination) === m);
  const sorted = restKept
    .map((m, i) => ({ m, i }))
    .sort((a, b) => depth(a.m) - depth(b.m) || a.i - b.i)
    .map((x) => x.m);
  return [...keptDefaults, ...sorted];
}

/** Device nodes every container gets from the runtime itself (OCI runtime spec "Default Devices"). */
const RUNTIME_DEFAULT_DEVICES = new Set([
  '/dev/null',
  '/dev/zero',
  '/dev/full',
  '/dev/random',
  '/dev/urandom',
  '/dev/tty',
  '/dev/console',
  '/dev/ptmx',
]);
/** Directories of /dev that are not the host's devices (a container has its own of these). */
const SKIPPED_DEV_DIRS = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev']);

/**
 * Every character and block device node under the host's `dir` (/dev), for a privileged container (as docker's
 * --privileged): its path, type, numbers and mode. Skips the container's own /dev directories (pts, shm, mqueue)
 * and the devices every container gets from the runtime anyway.
 */
export function hostDevices(dir = '/dev'): OciDevice[] {
  const out: OciDevice[] = [];
  const walk = (d: string): void => {
    let entries: Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = posix.join(d, e.name);
      if (e.isDirectory()) {
        if (!SKIPPED_DEV_DIRS.has(e.name)) walk(p);
        continue;
      }
      if (!e.isCharacterDevice() && !e.isBlockDevice()) continue;
      if (RUNTIME_DEFAULT_DEVICES.has(p)) continue;
      let st: Stats;
      try {
        st = lstatSync(p);
      } catch {
        continue; // gone meanwhile
      }
      out.push(deviceNode(p, st));
    }
  };
  walk(dir);
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/** The OCI device of a host device node (its type, numbers, mode and owner). */
function deviceNode(path: string, st: Stats): OciDevice {
  // rdev as glibc's makedev encodes it
  const major = Number((BigInt(st.rdev) >> 8n) & 0xfffn) | Number((BigInt(st.rdev) >> 32n) & ~0xfffn);
  const minor = Number(BigInt(st.rdev) & 0xffn) | Number((BigInt(st.rdev) >> 12n) & ~0xffn);
  return {
    type: st.isCharacterDevice() ? 'c' : 'b',
    path,
    major,
    minor,
    fileMode: st.mode & 0o777,
    uid: st.uid,
    gid: st.gid,
  };
}

/**
 * --device HOST[:CONTAINER[:PERMISSIONS]] as docker's DevicesFromPath: the host's node (a symbolic link followed)
 * at the container's path, allowed in the device cgroup with the permissions; a directory gives every device
 * node under it, at the same place under the container's path.
 */
export function devicesFromPath(
  pathOnHost: string,
  pathInContainer: string,
  permissions: string,
): { devices: OciDevice[]; rules: OciDeviceCgroup[] } {
  const devices: OciDevice[] = [];
  let resolved = pathOnHost;
  let why = 'no such file or directory';
  try {
    resolved = realpathSync(pathOnHost);
    const st = statSync(resolved);
    if (st.isCharacterDevice() || st.isBlockDevice()) devices.push({ ...deviceNode(pathInContainer, st) });
    else if (st.isDirectory()) {
      const walk = (d: string): void => {
        for (const e of readdirSync(d, { withFileTypes: true })) {
          const p = posix.join(d, e.name);
          if (e.isDirectory()) walk(p);
          else if (e.isCharacterDevice() || e.isBlockDevice()) {
            try {
              devices.push(deviceNode(pathInContainer + p.slice(resolved.length), lstatSync(p)));
            } catch {
              /* gone meanwhile */
            }
          }
        }
      };
      walk(resolved);
      why = 'not a device node';
    } else why = 'not a device node';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') why = (e as Error).message;
  }
  if (devices.length === 0)
    throw new NotFoundError(
      `error gathering device information while adding custom device ${JSON.stringify(pathOnHost)}: ${why}`,
    );
  const rules = devices.map((d) => ({
    allow: true,
    type: d.type as 'c' | 'b',
    major: d.major,
    minor: d.minor,
    access: permissions,
  }));
  return { devices, rules };
}

/**
 * Build the OCI runtime spec of a container. Throws InvalidArgumentError, NotFoundError or
 * HostSupportError for settings that cannot work, before any runtime is started.
 */
export function buildRuntimeSpec(input: SpecInput): OciSpec {
  const { config } = input;
  const copts = containerOptions(config);
  const host = input.host ?? probeHostFacts();
  if (config.command.length === 0) throw new InvalidArgumentError('no command specified');

  const privateNetns = config.network !== 'host';
  const joined = input.joined ?? {};
  const joinedPath = (kind: 'network' | 'pid' | 'ipc', mode: string | undefined): string | undefined => {
    if (!mode?.startsWith('container:')) return undefined;
    const path = joined[kind];
    if (!path)
      throw new InvalidArgumentError(
        `--${kind === 'network' ? 'network' : kind} ${mode}: the instance to join is not running`,
      );
    return path;
  };
  const netnsJoined = joinedPath('network', config.network);
  const pidnsJoined = joinedPath('pid', copts.pidMode);
  const ipcnsJoined = joinedPath('ipc', copts.ipcMode);
  const utsHost = copts.utsMode === 'host';
  const userns = copts.userns;
  if (userns) {
    checkMappings('uid', userns.uidMappings);
    checkMappings('gid', userns.gidMappings);
  }

  // Identity and environment.
  const user = resolveUser(input.rootfs, config.user, copts.groupAdd ?? []);
  const hostname =
    input.hostname ??
    (utsHost ? osHostname() : config.hostname || (privateNetns ? input.id.slice(0, 12) : osHostname()));
  const env = mergeEnv([`HOSTNAME=${hostname}`], config.tty ? ['TERM=xterm'] : [], config.env);
  if (!hasEnv(env, 'PATH')) env.unshift(`PATH=${DEFAULT_PATH}`);
  if (!hasEnv(env, 'HOME')) env.push(`HOME=${user.home}`);

  const caps = containerCapabilities(copts, host);
  const process: OciProcess = {
    terminal: config.tty,
    user: {
      uid: user.uid,
      gid: user.gid,
      ...(user.additionalGids.length > 0 ? { additionalGids: user.additionalGids } : {}),
    },
    // --init: tini runs the command, reaps orphans and forwards signals (docker's `docker-init -- CMD`)
    args: config.init ? [INIT_PATH, '--', ...config.command] : [...config.command],
    env,
    cwd: checkCwd(config.workdir || '/'),
    capabilities: capabilitySets(caps),
    rlimits: buildRlimits(copts.ulimits, { ...host.rlimits, nofile: input.hostNofileHard }),
    noNewPrivileges: copts.noNewPrivileges,
  };

  // Namespaces.
  // --pid/--ipc/--uts host: the host's namespace (none of its own); container:X: X's (as docker)
  const namespaces: OciNamespace[] = [];
  if (copts.pidMode !== 'host') namespaces.push(pidnsJoined ? { type: 'pid', path: pidnsJoined } : { type: 'pid' });
  const netnsPath = netnsJoined ?? input.netnsPath;
  if (privateNetns) namespaces.push(netnsPath ? { type: 'network', path: netnsPath } : { type: 'network' });
  if (copts.ipcMode !== 'host') namespaces.push(ipcnsJoined ? { type: 'ipc', path: ipcnsJoined } : { type: 'ipc' });
  if (!utsHost) namespaces.push({ type: 'uts' });
  namespaces.push({ type: 'mount' });
  if (input.cgroupNamespace) namespaces.push({ type: 'cgroup' });
  if (userns) namespaces.push({ type: 'user' });

  const mounts = combineMounts(
    defaultMounts({
      ...(copts.shmSize !== undefined ? { shmSize: copts.shmSize } : {}),
      privileged: copts.privileged,
      userns: userns !== null,
      // a namespace made by the engine belongs to the host's user namespace, so (as with the host's) the
      // container's user namespace cannot mount a sysfs for it
      privateNetns: privateNetns && !netnsPath,
      gid5Mapped: !userns || mapped(userns.gidMappings, 5),
    }).filter((m) => !(m.destination === '/dev/shm' && copts.ipcMode === 'none')),
    [
      // --ipc host: the host's /dev/shm; shareable: its own on the host; container:X: X's (docker's)
      ...[copts.ipcMode === 'host' ? '/dev/shm' : ipcnsJoined ? joined.shm : input.shm]
        .filter((source) => source !== undefined)
        .map((source) => ({ destination: '/dev/shm', type: 'bind', source, options: ['rbind', 'rprivate'] })),
      // with --read-only, docker's /etc/hosts, /etc/resolv.conf and /etc/hostname are read-only too
      ...(input.extraMounts ?? []).map((m) =>
        config.readOnly && m.type === 'bind' && !m.options?.includes('ro')
          ? { ...m, options: [...(m.options ?? []), 'ro'] }
          : m,
      ),
      ...(config.init
        ? [
            {
              destination: INIT_PATH,
              type: 'bind',
              source: requireInit(input.initBinary),
              options: ['rbind', 'ro', 'nosuid', 'nodev'],
            },
          ]
        : []),
      ...userMounts(config),
    ],
  );

  const resources = buildResources(config.resources, host);
  resources.devices = copts.privileged ? [{ allow: true, access: 'rwm' }] : DEFAULT_DEVICE_RULES.map((r) => ({ ...r }));
  // --device and --device-cgroup-rule (docker's): the nodes, and rules after the defaults
  const userDevices: OciDevice[] = [];
  for (const d of copts.devices ?? []) {
    const found = devicesFromPath(d.pathOnHost, d.pathInContainer, d.permissions);
    userDevices.push(...found.devices);
    if (!copts.privileged) resources.devices.push(...found.rules);
  }
  if (!copts.privileged)
    for (const r of copts.deviceCgroupRules ?? []) resources.devices.push({ allow: true, ...parseDeviceCgroupRule(r) });

  const spec: OciSpec = {
    ociVersion: OCI_VERSION,
    process,
    root: { path: input.rootfs, readonly: config.readOnly },
    ...(utsHost ? {} : { hostname }),
    mounts,
    linux: {
      namespaces,
      resources,
      cgroupsPath: input.cgroupsPath,
      maskedPaths: copts.privileged ? [] : [...MASKED_PATHS],
      readonlyPaths: copts.privileged ? [] : [...READONLY_PATHS],
    },
  };
  // --privileged: every device node of the host (the device cgroup above allows them all)
  if (copts.privileged) spec.linux.devices = input.hostDevices ?? hostDevices();
  if (userDevices.length > 0) {
    const byPath = new Map((spec.linux.devices ?? []).map((d) => [d.path, d]));
    for (const d of userDevices) byPath.set(d.path, d);
    spec.linux.devices = [...byPath.values()];
  }
  if (userns) {
    spec.linux.uidMappings = userns.uidMappings.map((m) => ({ ...m }));
    spec.linux.gidMappings = userns.gidMappings.map((m) => ({ ...m }));
  }
  // in a network namespace of its own (fresh, or one the engine made) as docker; the host's is left alone. Not
  // with a user namespace: the kernel refuses a range beyond the mapped gids, and the runtime cannot write to a
  // namespace the engine made (it belongs to the host's user namespace)
  if (privateNetns && !userns && !netnsJoined) spec.linux.sysctl = { ...NETNS_SYSCTLS };
  // --sysctl (checked against docker's namespaced list by configure): net.* not in the host's network namespace
  for (const [key, value] of Object.entries(copts.sysctls ?? {})) {
    if (key.startsWith('net.') && !privateNetns)
      throw new InvalidArgumentError(`sysctl "${key}" not allowed in host network namespace: leave out --network host`);
    spec.linux.sysctl = { ...(spec.linux.sysctl ?? {}), [key]: value };
  }
  if (copts.runtime === 'crun' && (spec.linux.readonlyPaths?.length ?? 0) > 0) readonlyPathsAsMounts(spec);
  const seccomp = seccompFor(copts, caps);
  if (seccomp) spec.linux.seccomp = seccomp;
  return spec;
}

/**
 * crun (1.8) remounts readonlyPaths read-only without the nosuid, nodev and noexec they had, where runc (1.1)
 * and so docker keep them (`/proc/sys ro,nosuid,nodev,noexec`). For crun the paths become read-only bind
 * mounts with the flags spelled out. crun resolves a bind source before the container's /proc exists, so the
 * source is the host's /proc: these paths show the same either way (/proc/sys answers for the namespaces of
 * the process reading it; /proc/bus, /proc/fs, /proc/irq and /proc/sysrq-trigger are not per namespace).
 */
function readonlyPathsAsMounts(spec: OciSpec): void {
  for (const path of spec.linux.readonlyPaths ?? []) {
    if (!existsSync(path)) continue; // as the runtimes skip a missing one (/proc/sysrq-trigger without magic SysRq)
    spec.mounts.push({
      destination: path,
      type: 'bind',
      source: path,
      options: ['rbind', 'rprivate', 'ro', 'nosuid', 'nodev', 'noexec'],
    });
  }
  spec.linux.readonlyPaths = [];
}

/**
 * The process of an `exec` into a running container built from `base`: the command, the
 * container's environment with `opts.env` over it, the user (resolved against `rootfs` when given),
 * the container's capabilities (all the host can grant with `opts.privileged`), rlimits and
 * noNewPrivileges, and a terminal when `opts.tty`. `groupAdd` (the container's --group-add) applies to an
 * `opts.user` as it did to the container's user.
 */
export function buildExecProcess(
  base: OciSpec,
  opts: ExecOptions,
  rootfs: string,
  groupAdd: readonly string[] = [],
): OciProcess {
  if (opts.command.length === 0) throw new InvalidArgumentError('no command specified');
  const b = base.process;
  let user = { ...b.user };
  let home: string | undefined;
  if (opts.user) {
    const u = resolveUser(rootfs, opts.user, groupAdd);
    user = { uid: u.uid, gid: u.gid, ...(u.additionalGids.length > 0 ? { additionalGids: u.additionalGids } : {}) };
    home = u.home;
  }
  let env = mergeEnv(
    b.env,
    opts.tty && !hasEnv(b.env, 'TERM') ? ['TERM=xterm'] : [],
    home ? [`HOME=${home}`] : [],
    opts.env,
  );
  if (!hasEnv(env, 'PATH')) env = [`PATH=${DEFAULT_PATH}`, ...env];

  let capabilities = b.capabilities;
  if (opts.privileged) {
    const available = new Set(hostCapabilities());
    capabilities = capabilitySets(ALL_CAPABILITIES.filter((c) => available.has(c)));
  }
  const proc: OciProcess = {
    terminal: opts.tty,
    user,
    args: [...opts.command],
    env,
    cwd: checkCwd(opts.workdir || b.cwd || '/'),
  };
  if (capabilities) proc.capabilities = { ...capabilities };
  if (b.rlimits) proc.rlimits = b.rlimits.map((r) => ({ ...r }));
  if (b.noNewPrivileges !== undefined) proc.noNewPrivileges = b.noNewPrivileges;
  return proc;
}
