/**
 * TypeScript types for the parts of the OCI runtime specification (v1.0.2, `config.json`) that hull
 * writes. Field names follow the specification exactly so that a spec object can be serialised with
 * JSON.stringify and handed to runc or crun as is.
 *
 * Reference: https://github.com/opencontainers/runtime-spec/blob/v1.0.2/config.md and config-linux.md.
 */

/** The OCI runtime-spec version hull writes. */
export const OCI_VERSION = '1.0.2';

/** The root of a `config.json`. */
export interface OciSpec {
  ociVersion: string;
  process: OciProcess;
  root: OciRoot;
  hostname?: string;
  mounts: OciMount[];
  linux: OciLinux;
  annotations?: Record<string, string>;
}

/** The container's process (also the shape of `runc exec --process FILE`). */
export interface OciProcess {
  terminal: boolean;
  consoleSize?: { height: number; width: number };
  user: OciUser;
  args: string[];
  env: string[];
  cwd: string;
  capabilities?: OciCapabilities;
  rlimits?: OciRlimit[];
  noNewPrivileges?: boolean;
  apparmorProfile?: string;
  oomScoreAdj?: number;
  selinuxLabel?: string;
}

/** POSIX user of the process, as numeric ids in the container's user namespace. */
export interface OciUser {
  uid: number;
  gid: number;
  additionalGids?: number[];
}

/** Capability sets, each a list of names like `CAP_CHOWN`. */
export interface OciCapabilities {
  bounding: string[];
  effective: string[];
  inheritable: string[];
  permitted: string[];
  ambient: string[];
}

/** One resource limit; `type` is like `RLIMIT_NOFILE`. */
export interface OciRlimit {
  type: string;
  hard: number;
  soft: number;
}

export interface OciRoot {
  path: string;
  readonly?: boolean;
}

export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export type OciNamespaceType = 'pid' | 'network' | 'mount' | 'ipc' | 'uts' | 'user' | 'cgroup';

export interface OciNamespace {
  type: OciNamespaceType;
  /** join an existing namespace (a /proc/PID/ns/... path) instead of creating one */
  path?: string;
}

export interface OciIdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

/** A device node the runtime creates in the container's /dev. */
export interface OciDevice {
  type: 'c' | 'b' | 'u' | 'p';
  path: string;
  major?: number;
  minor?: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

/** A device cgroup rule. Omitted major/minor mean "any" (`*`). */
export interface OciDeviceCgroup {
  allow: boolean;
  type?: 'a' | 'c' | 'b';
  major?: number;
  minor?: number;
  /** a combination of r, w and m */
  access?: string;
}

export interface OciMemory {
  /** bytes */
  limit?: number;
  reservation?: number;
  /** memory+swap in bytes; -1 unlimited */
  swap?: number;
  kernel?: number;
  kernelTCP?: number;
  swappiness?: number;
  disableOOMKiller?: boolean;
}

export interface OciCpu {
  shares?: number;
  /** microseconds of CPU time per period */
  quota?: number;
  /** microseconds */
  period?: number;
  realtimeRuntime?: number;
  realtimePeriod?: number;
  /** CPU list, e.g. "0-1,3" */
  cpus?: string;
  /** memory node list */
  mems?: string;
}

export interface OciPids {
  limit: number;
}

export interface OciBlockIO {
  weight?: number;
  leafWeight?: number;
}

export interface OciResources {
  devices?: OciDeviceCgroup[];
  memory?: OciMemory;
  cpu?: OciCpu;
  pids?: OciPids;
  blockIO?: OciBlockIO;
}

/** seccomp actions understood by runc and crun. */
export type SeccompAction =
  | 'SCMP_ACT_KILL'
  | 'SCMP_ACT_KILL_PROCESS'
  | 'SCMP_ACT_KILL_THREAD'
  | 'SCMP_ACT_TRAP'
  | 'SCMP_ACT_ERRNO'
  | 'SCMP_ACT_TRACE'
  | 'SCMP_ACT_ALLOW'
  | 'SCMP_ACT_LOG'
  | 'SCMP_ACT_NOTIFY';

export type SeccompOperator =
  | 'SCMP_CMP_NE'
  | 'SCMP_CMP_LT'
  | 'SCMP_CMP_LE'
  | 'SCMP_CMP_EQ'
  | 'SCMP_CMP_GE'
  | 'SCMP_CMP_GT'
  | 'SCMP_CMP_MASKED_EQ';

export interface LinuxSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: SeccompOperator;
}

export interface LinuxSyscall {
  names: string[];
  action: SeccompAction;
  errnoRet?: number;
  args?: LinuxSeccompArg[];
}

/** The `linux.seccomp` object. */
export interface LinuxSeccomp {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  /** e.g. SCMP_ARCH_X86_64 */
  architectures?: string[];
  flags?: string[];
  syscalls?: LinuxSyscall[];
}

export interface OciLinux {
  namespaces: OciNamespace[];
  uidMappings?: OciIdMapping[];
  gidMappings?: OciIdMapping[];
  devices?: OciDevice[];
  resources?: OciResources;
  cgroupsPath?: string;
  sysctl?: Record<string, string>;
  seccomp?: LinuxSeccomp;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  rootfsPropagation?: string;
  mountLabel?: string;
}
