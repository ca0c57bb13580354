/**
 * seccomp policy: hull's default profile and the loading of user profiles (docker's format or the OCI
 * `linux.seccomp` format) into the OCI object that runc and crun apply.
 *
 * The default profile denies (EPERM) every system call it does not list. The list covers what
 * ordinary programs use; calls that only make sense with a capability (mount needs CAP_SYS_ADMIN,
 * reboot CAP_SYS_BOOT, ...) are allowed only when the container has that capability, and clone may not
 * create namespaces without CAP_SYS_ADMIN.
 */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { InvalidArgumentError, NotFoundError } from '../common/errors.js';
import { DEFAULT_CAPABILITIES, normalizeCapability } from './capabilities.js';
import type { LinuxSeccomp, LinuxSeccompArg, LinuxSyscall, SeccompAction, SeccompOperator } from './oci-spec.js';

const EPERM = 1;
const ENOSYS = 38;

/** Namespace flags of clone(2): NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET. */
const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;

const AF_VSOCK = 40;

/** System calls every container may make, grouped by what they are for. */
const ALLOWED: Record<string, string[]> = {
  processes: [
    'exit',
    'exit_group',
    'fork',
    'vfork',
    'execve',
    'execveat',
    'wait4',
    'waitid',
    'waitpid',
    'getpid',
    'getppid',
    'gettid',
    'set_tid_address',
    'set_robust_list',
    'get_robust_list',
    'rseq',
    'futex',
    'futex_time64',
    'futex_waitv',
    'membarrier',
    'restart_syscall',
    'prctl',
    'seccomp',
    'capget',
    'capset',
    'setsid',
    'getsid',
    'setpgid',
    'getpgid',
    'getpgrp',
    'pidfd_open',
    'pidfd_send_signal',
    'process_mrelease',
    'getrlimit',
    'ugetrlimit',
    'setrlimit',
    'prlimit64',
    'getrusage',
    'times',
    'umask',
    'uname',
    'sysinfo',
    // random bytes (glibc 2.36's arc4random aborts the program when the kernel refuses it)
    'getrandom',
    'landlock_create_ruleset',
    'landlock_add_rule',
    'landlock_restrict_self',
  ],
  scheduling: [
    'sched_yield',
    'sched_getaffinity',
    'sched_setaffinity',
    'sched_getattr',
    'sched_setattr',
    'sched_getparam',
    'sched_setparam',
    'sched_getscheduler',
    'sched_setscheduler',
    'sched_get_priority_max',
    'sched_get_priority_min',
    'sched_rr_get_interval',
    'sched_rr_get_interval_time64',
    'getpriority',
    'setpriority',
    'getcpu',
    'ioprio_get',
    'ioprio_set',
  ],
  credentials: [
    'getuid',
    'getuid32',
    'geteuid',
    'geteuid32',
    'getgid',
    'getgid32',
    'getegid',
    'getegid32',
    'getresuid',
    'getresuid32',
    'getresgid',
    'getresgid32',
    'getgroups',
    'getgroups32',
    'setuid',
    'setuid32',
    'setgid',
    'setgid32',
    'setreuid',
    'setreuid32',
    'setregid',
    'setregid32',
    'setresuid',
    'setresuid32',
    'setresgid',
    'setresgid32',
    'setgroups',
    'setgroups32',
    'setfsuid',
    'setfsuid32',
    'setfsgid',
    'setfsgid32',
  ],
  signals: [
    'kill',
    'tkill',
    'tgkill',
    'rt_sigaction',
    'rt_sigpending',
    'rt_sigprocmask',
    'rt_sigqueueinfo',
    'rt_sigreturn',
    'rt_sigsuspend',
    'rt_sigtimedwait',
    'rt_sigtimedwait_time64',
    'rt_tgsigqueueinfo',
    'sigaltstack',
    'sigprocmask',
    'sigreturn',
    'signalfd',
    'signalfd4',
    'pause',
  ],
  memory: [
    'brk',
    'mmap',
    'mmap2',
    'munmap',
    'mprotect',
    'mremap',
    'madvise',
    'mincore',
    'msync',
    'mlock',
    'mlock2',
    'mlockall',
    'munlock',
    'munlockall',
    'remap_file_pages',
    'memfd_create',
    'memfd_secret',
    'pkey_alloc',
    'pkey_free',
    'pkey_mprotect',
  ],
  fileDescriptors: [
    'open',
    'openat',
    'openat2',
    'creat',
    'close',
    'close_range',
    'read',
    'write',
    'readv',
    'writev',
    'pread64',
    'pwrite64',
    'preadv',
    'preadv2',
    'pwritev',
    'pwritev2',
    'lseek',
    '_llseek',
    'dup',
    'dup2',
    'dup3',
    'fcntl',
    'fcntl64',
    'flock',
    'ioctl',
    'pipe',
    'pipe2',
    'sendfile',
    'sendfile64',
    'splice',
    'tee',
    'vmsplice',
    'copy_file_range',
    'fsync',
    'fdatasync',
    'sync',
    'syncfs',
    'sync_file_range',
    'readahead',
    'fadvise64',
    'fadvise64_64',
    'fallocate',
    'truncate',
    'truncate64',
    'ftruncate',
    'ftruncate64',
    'io_setup',
    'io_destroy',
    'io_submit',
    'io_cancel',
    'io_getevents',
    'io_pgetevents',
    'io_pgetevents_time64',
  ],
  filesystem: [
    'stat',
    'stat64',
    'lstat',
    'lstat64',
    'fstat',
    'fstat64',
    'fstatat64',
    'newfstatat',
    'statx',
    'statfs',
    'statfs64',
    'fstatfs',
    'fstatfs64',
    'access',
    'faccessat',
    'faccessat2',
    'getcwd',
    'chdir',
    'fchdir',
    'getdents',
    'getdents64',
    'mkdir',
    'mkdirat',
    'rmdir',
    'rename',
    'renameat',
    'renameat2',
    'link',
    'linkat',
    'symlink',
    'symlinkat',
    'unlink',
    'unlinkat',
    'readlink',
    'readlinkat',
    'mknod',
    'mknodat',
    'chmod',
    'fchmod',
    'fchmodat',
    'fchmodat2',
    'chown',
    'chown32',
    'fchown',
    'fchown32',
    'lchown',
    'lchown32',
    'fchownat',
    'utime',
    'utimes',
    'utimensat',
    'utimensat_time64',
    'futimesat',
    'getxattr',
    'lgetxattr',
    'fgetxattr',
    'setxattr',
    'lsetxattr',
    'fsetxattr',
    'listxattr',
    'llistxattr',
    'flistxattr',
    'removexattr',
    'lremovexattr',
    'fremovexattr',
    'name_to_handle_at',
    'inotify_init',
    'inotify_init1',
    'inotify_add_watch',
    'inotify_rm_watch',
    'fanotify_mark',
  ],
  waiting: [
    'select',
    '_newselect',
    'pselect6',
    'pselect6_time64',
    'poll',
    'ppoll',
    'ppoll_time64',
    'epoll_create',
    'epoll_create1',
    'epoll_ctl',
    'epoll_ctl_old',
    'epoll_wait',
    'epoll_wait_old',
    'epoll_pwait',
    'epoll_pwait2',
    'eventfd',
    'eventfd2',
  ],
  time: [
    'clock_gettime',
    'clock_gettime64',
    'clock_getres',
    'clock_getres_time64',
    'clock_nanosleep',
    'clock_nanosleep_time64',
    'nanosleep',
    'gettimeofday',
    'time',
    'alarm',
    'getitimer',
    'setitimer',
    'timer_create',
    'timer_delete',
    'timer_gettime',
    'timer_gettime64',
    'timer_settime',
    'timer_settime64',
    'timer_getoverrun',
    'timerfd_create',
    'timerfd_gettime',
    'timerfd_gettime64',
    'timerfd_settime',
    'timerfd_settime64',
    // reading the clock's tuning is harmless; changing it needs CAP_SYS_TIME, which the kernel checks
    'adjtimex',
    'clock_adjtime',
    'clock_adjtime64',
  ],
  network: [
    'socketpair',
    'bind',
    'connect',
    'listen',
    'accept',
    'accept4',
    'getsockname',
    'getpeername',
    'getsockopt',
    'setsockopt',
    'send',
    'sendto',
    'sendmsg',
    'sendmmsg',
    'recv',
    'recvfrom',
    'recvmsg',
    'recvmmsg',
    'recvmmsg_time64',
    'shutdown',
    'socketcall',
  ],
  ipc: [
    'ipc',
    'msgget',
    'msgsnd',
    'msgrcv',
    'msgctl',
    'semget',
    'semop',
    'semtimedop',
    'semtimedop_time64',
    'semctl',
    'shmget',
    'shmat',
    'shmdt',
    'shmctl',
    'mq_open',
    'mq_unlink',
    'mq_notify',
    'mq_getsetattr',
    'mq_timedsend',
    'mq_timedsend_time64',
    'mq_timedreceive',
    'mq_timedreceive_time64',
  ],
};

/** System calls allowed only when the container has a capability, keyed by that capability. */
const ALLOWED_WITH_CAPABILITY: Record<string, string[]> = {
  CAP_SYS_ADMIN: [
    'mount',
    'umount',
    'umount2',
    'mount_setattr',
    'move_mount',
    'open_tree',
    'fsopen',
    'fsconfig',
    'fsmount',
    'fspick',
    'pivot_root',
    'unshare',
    'setns',
    'clone',
    'clone3',
    'sethostname',
    'setdomainname',
    'quotactl',
    'quotactl_fd',
    'lookup_dcookie',
    'fanotify_init',
    'bpf',
    'perf_event_open',
    'syslog',
  ],
  CAP_SYS_PTRACE: ['ptrace', 'process_vm_readv', 'process_vm_writev', 'process_madvise', 'kcmp', 'pidfd_getfd'],
  CAP_SYS_BOOT: ['reboot'],
  CAP_SYS_CHROOT: ['chroot'],
  CAP_SYS_MODULE: ['init_module', 'finit_module', 'delete_module'],
  CAP_SYS_PACCT: ['acct'],
  CAP_SYS_RAWIO: ['iopl', 'ioperm'],
  CAP_SYS_TIME: ['settimeofday', 'stime', 'clock_settime', 'clock_settime64'],
  CAP_SYS_TTY_CONFIG: ['vhangup'],
  CAP_SYS_NICE: ['get_mempolicy', 'set_mempolicy', 'set_mempolicy_home_node', 'mbind', 'move_pages', 'migrate_pages'],
  CAP_SYSLOG: ['syslog'],
  CAP_BPF: ['bpf'],
  CAP_PERFMON: ['perf_event_open'],
  CAP_DAC_READ_SEARCH: ['open_by_handle_at'],
};

/** Per machine architecture: the seccomp architectures a container may use and their own calls. */
const ARCHES: Record<string, { architectures: string[]; syscalls: string[] }> = {
  x64: {
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: ['arch_prctl', 'modify_ldt', 'set_thread_area', 'get_thread_area'],
  },
  ia32: {
    architectures: ['SCMP_ARCH_X86'],
    syscalls: ['modify_ldt', 'set_thread_area', 'get_thread_area'],
  },
  arm64: {
    architectures: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
    syscalls: ['arm_fadvise64_64', 'arm_sync_file_range', 'sync_file_range2', 'breakpoint', 'cacheflush', 'set_tls'],
  },
};

/** personality(2) values programs use: PER_LINUX, PER_LINUX32, UNAME26 variants, and the query. */
const PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/**
 * hull's default seccomp profile for a container with the given capabilities (names like
 * `CAP_SYS_ADMIN`, any spelling normalizeCapability accepts). `arch` is node's process.arch.
 */
export function defaultSeccompProfile(caps: readonly string[], arch: string = process.arch): LinuxSeccomp {
  const has = new Set(caps.map(normalizeCapability));
  const archInfo = ARCHES[arch];
  const allowed = new Set(Object.values(ALLOWED).flat());
  for (const name of archInfo?.syscalls ?? []) allowed.add(name);
  for (const [cap, names] of Object.entries(ALLOWED_WITH_CAPABILITY)) {
    if (has.has(cap)) for (const name of names) allowed.add(name);
  }
  const syscalls: LinuxSyscall[] = [{ names: [...allowed].sort(), action: 'SCMP_ACT_ALLOW' }];

  // socket(2) for every address family but vsock, which is not namespaced and reaches the host.
  syscalls.push({
    names: ['socket'],
    action: 'SCMP_ACT_ALLOW',
    args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_NE' }],
  });
  for (const value of PERSONALITIES) {
    syscalls.push({ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }] });
  }
  if (!has.has('CAP_SYS_ADMIN')) {
    // Threads and processes yes, namespaces no. clone3 passes its flags in a struct that seccomp
    // cannot inspect: ENOSYS makes glibc fall back to clone.
    syscalls.push({
      names: ['clone'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
    });
    syscalls.push({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS });
  }
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    architectures: archInfo ? [...archInfo.architectures] : [],
    syscalls,
  };
}

const ACTIONS: readonly SeccompAction[] = [
  'SCMP_ACT_KILL',
  'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_KILL_THREAD',
  'SCMP_ACT_TRAP',
  'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE',
  'SCMP_ACT_ALLOW',
  'SCMP_ACT_LOG',
  'SCMP_ACT_NOTIFY',
];
const OPERATORS: readonly SeccompOperator[] = [
  'SCMP_CMP_NE',
  'SCMP_CMP_LT',
  'SCMP_CMP_LE',
  'SCMP_CMP_EQ',
  'SCMP_CMP_GE',
  'SCMP_CMP_GT',
  'SCMP_CMP_MASKED_EQ',
];
const FLAGS = ['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'];

/** docker's names for node's process.arch values, as used in a profile's includes/excludes.arches. */
const DOCKER_ARCH: Record<string, string> = {
  x64: 'amd64',
  ia32: 'x86',
  arm64: 'arm64',
  arm: 'arm',
  s390x: 's390x',
  ppc64: 'ppc64le',
  riscv64: 'riscv64',
};
/** seccomp's name for node's process.arch values, to pick the archMap entry. */
const SCMP_ARCH: Record<string, string> = {
  x64: 'SCMP_ARCH_X86_64',
  ia32: 'SCMP_ARCH_X86',
  arm64: 'SCMP_ARCH_AARCH64',
  arm: 'SCMP_ARCH_ARM',
  s390x: 'SCMP_ARCH_S390X',
  ppc64: 'SCMP_ARCH_PPC64LE',
  riscv64: 'SCMP_ARCH_RISCV64',
};

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Compare dotted kernel versions ("5.15" vs "6.18.0-foo"): true when `have` >= `want`. */
function kernelAtLeast(have: string, want: string): boolean {
  const parse = (s: string) =>
    s
      .split(/[^0-9]+/)
      .filter(Boolean)
      .slice(0, 3)
      .map(Number);
  const a = parse(have);
  const b = parse(want);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

/** Options of {@link loadSeccompProfile} that describe the host; tests override them. */
export interface ProfileHost {
  /** node's process.arch */
  arch?: string;
  /** kernel release, as os.release() */
  kernel?: string;
}

/**
 * Read a seccomp profile from a JSON file, in docker's format (`names`/`name`, `archMap`,
 * `includes`/`excludes` on capabilities, architectures and kernel versions) or the OCI format, and
 * return the OCI `linux.seccomp` object for a container with capabilities `caps`.
 * Throws NotFoundError for a missing file and InvalidArgumentError for a malformed one.
 */
export function loadSeccompProfile(
  path: string,
  caps: readonly string[] = DEFAULT_CAPABILITIES,
  host: ProfileHost = {},
): LinuxSeccomp {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NotFoundError(`seccomp profile not found: ${path}`);
    throw new InvalidArgumentError(`cannot read seccomp profile ${path}: ${(e as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new InvalidArgumentError(`seccomp profile ${path} is not valid JSON: ${(e as Error).message}`);
  }
  return convertSeccompProfile(data, caps, host, path);
}

/**
 * Convert a parsed profile (docker or OCI format) to the OCI object; `source` names it in errors.
 * Exported for callers that hold the JSON already.
 */
export function convertSeccompProfile(
  data: unknown,
  caps: readonly string[],
  host: ProfileHost = {},
  source = 'seccomp profile',
): LinuxSeccomp {
  const bad = (what: string) => new InvalidArgumentError(`invalid seccomp profile ${source}: ${what}`);
  if (!isObject(data)) throw bad('expected a JSON object');
  const arch = host.arch ?? process.arch;
  const kernel = host.kernel ?? release();
  const has = new Set(caps.map(normalizeCapability));

  const action = (v: unknown, where: string): SeccompAction => {
    if (typeof v !== 'string' || !ACTIONS.includes(v as SeccompAction)) {
      throw bad(`${where}: unknown action ${JSON.stringify(v)} (expected one of ${ACTIONS.join(', ')})`);
    }
    if (v === 'SCMP_ACT_NOTIFY') throw bad(`${where}: SCMP_ACT_NOTIFY needs a seccomp agent, which hull does not run`);
    return v as SeccompAction;
  };
  const errno = (v: unknown, where: string): number | undefined => {
    if (v === undefined || v === null) return undefined;
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 4095)
      throw bad(`${where}: errnoRet must be an integer from 0 to 4095`);
    return v as number;
  };
  const stringList = (v: unknown, where: string): string[] => {
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw bad(`${where} must be a list of strings`);
    return v as string[];
  };

  const out: LinuxSeccomp = { defaultAction: action(data.defaultAction, 'defaultAction') };
  const defaultErrno = errno(data.defaultErrnoRet, 'defaultErrnoRet');
  if (defaultErrno !== undefined) out.defaultErrnoRet = defaultErrno;

  // Architectures: a plain list (both formats) or docker's archMap, of which the native entry counts.
  if (
    data.architectures !== undefined &&
    data.architectures !== null &&
    data.archMap !== undefined &&
    data.archMap !== null
  ) {
    throw bad("both 'architectures' and 'archMap' are given; use one");
  }
  if (data.architectures !== undefined && data.architectures !== null) {
    out.architectures = stringList(data.architectures, 'architectures');
  } else if (data.archMap !== undefined && data.archMap !== null) {
    if (!Array.isArray(data.archMap)) throw bad('archMap must be a list');
    const native = SCMP_ARCH[arch];
    for (const entry of data.archMap) {
      if (!isObject(entry) || typeof entry.architecture !== 'string')
        throw bad('each archMap entry needs an architecture');
      if (entry.architecture !== native) continue;
      const subs =
        entry.subArchitectures === null || entry.subArchitectures === undefined
          ? []
          : stringList(entry.subArchitectures, 'subArchitectures');
      out.architectures = [entry.architecture, ...subs];
    }
  }
  for (const a of out.architectures ?? [])
    if (!a.startsWith('SCMP_ARCH_')) throw bad(`unknown architecture ${a} (expected SCMP_ARCH_...)`);

  if (data.flags !== undefined && data.flags !== null) {
    out.flags = stringList(data.flags, 'flags');
    for (const f of out.flags) if (!FLAGS.includes(f)) throw bad(`unknown flag ${f}`);
  }
  if (data.listenerPath) throw bad('listenerPath (seccomp notify) is not supported');

  const syscalls = data.syscalls ?? [];
  if (!Array.isArray(syscalls)) throw bad('syscalls must be a list');
  out.syscalls = [];
  syscalls.forEach((rule: unknown, i: number) => {
    const where = `syscalls[${i}]`;
    if (!isObject(rule)) throw bad(`${where} must be an object`);
    if (rule.name !== undefined && rule.names !== undefined)
      throw bad(`${where}: both 'name' and 'names' are given; use one`);
    const names =
      rule.names !== undefined
        ? stringList(rule.names, `${where}.names`)
        : typeof rule.name === 'string'
          ? [rule.name]
          : null;
    if (!names || names.length === 0) throw bad(`${where} names no system call`);
    if (!applies(rule, where)) return;
    const entry: LinuxSyscall = { names, action: action(rule.action, where) };
    const ret = errno(rule.errnoRet, where);
    if (ret !== undefined) entry.errnoRet = ret;
    if (rule.args !== undefined && rule.args !== null) entry.args = args(rule.args, where);
    out.syscalls!.push(entry);
  });
  return out;

  /** docker's includes/excludes: every included capability present, no excluded one, arch and kernel match. */
  function applies(rule: Json, where: string): boolean {
    const inc = rule.includes ?? {};
    const exc = rule.excludes ?? {};
    if (!isObject(inc) || !isObject(exc)) throw bad(`${where}: includes and excludes must be objects`);
    const capsOf = (v: unknown, w: string) =>
      v === undefined || v === null
        ? []
        : stringList(v, w).map((c) => {
            try {
              return normalizeCapability(c);
            } catch {
              throw bad(`${w}: unknown capability ${c}`);
            }
          });
    const archesOf = (v: unknown, w: string) => (v === undefined || v === null ? [] : stringList(v, w));
    const dockerArch = DOCKER_ARCH[arch] ?? arch;
    const incCaps = capsOf(inc.caps, `${where}.includes.caps`);
    const excCaps = capsOf(exc.caps, `${where}.excludes.caps`);
    const incArches = archesOf(inc.arches, `${where}.includes.arches`);
    const excArches = archesOf(exc.arches, `${where}.excludes.arches`);
    if (!incCaps.every((c) => has.has(c))) return false;
    if (excCaps.some((c) => has.has(c))) return false;
    if (incArches.length > 0 && !incArches.includes(dockerArch)) return false;
    if (excArches.includes(dockerArch)) return false;
    if (inc.minKernel !== undefined && inc.minKernel !== null) {
      if (typeof inc.minKernel !== 'string' || !/^\d+(\.\d+)*$/.test(inc.minKernel))
        throw bad(`${where}: minKernel must look like "4.8"`);
      if (!kernelAtLeast(kernel, inc.minKernel)) return false;
    }
    return true;
  }

  function args(v: unknown, where: string): LinuxSeccompArg[] {
    if (!Array.isArray(v)) throw bad(`${where}.args must be a list`);
    return v.map((a: unknown, j: number) => {
      const w = `${where}.args[${j}]`;
      if (!isObject(a)) throw bad(`${w} must be an object`);
      if (!Number.isInteger(a.index) || (a.index as number) < 0 || (a.index as number) > 5)
        throw bad(`${w}: index must be 0 to 5`);
      if (typeof a.value !== 'number' || a.value < 0) throw bad(`${w}: value must be a non-negative number`);
      if (a.valueTwo !== undefined && (typeof a.valueTwo !== 'number' || a.valueTwo < 0))
        throw bad(`${w}: valueTwo must be a non-negative number`);
      if (typeof a.op !== 'string' || !OPERATORS.includes(a.op as SeccompOperator))
        throw bad(`${w}: unknown op ${JSON.stringify(a.op)}`);
      const arg: LinuxSeccompArg = { index: a.index as number, value: a.value, op: a.op as SeccompOperator };
      if (a.valueTwo !== undefined) arg.valueTwo = a.valueTwo as number;
      return arg;
    });
  }
}
