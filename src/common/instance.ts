/**
 * The one instance interface (Incus' habit): the engine composes drivers through it and does not
 * branch on the kind beyond picking the driver. Every driver implements the required methods; what
 * only some kinds can do is an optional method, announced in `capabilities` (a console, booting disk
 * images, network changes that reach a running instance).
 *
 * This file sits in the lowest layer so that drivers (src/container, src/vm) and the engine can
 * both import it without a lower layer importing a higher one.
 */

export type InstanceKind = 'container' | 'vm';

/** Lifecycle states kept by the engine. */
export type InstanceState = 'created' | 'running' | 'paused' | 'exited' | 'removing';

/** The runtime's own view of an instance, as reported by a driver. */
export type RuntimeStatus = 'created' | 'running' | 'paused' | 'stopped' | 'unknown';

export interface BindMount {
  type: 'bind';
  source: string;
  target: string;
  readonly: boolean;
  /** -v: a missing host directory is made (docker's -v); --mount refuses a missing source */
  createHostPath?: boolean;
  /** --mount bind-propagation: rprivate (default), private, rshared, shared, rslave or slave */
  propagation?: string;
  /** --mount bind-nonrecursive: submounts of the source are not carried along */
  nonRecursive?: boolean;
  /**
   * a volume (engine/volumes.ts): its name ('' until the engine names an anonymous one), the source then being
   * its data directory, filled in when the instance is made
   */
  volume?: string;
  /** an anonymous volume (`-v /path`, an image's VOLUME): removed with the instance by rm -v and --rm */
  anonymous?: boolean;
  /** --mount volume-opt=KEY=VALUE: how a volume made on first use is made (size, pool, type) */
  volumeOptions?: Record<string, string>;
  /** --mount volume-nocopy: no copy of the image's files into a new empty volume */
  noCopy?: boolean;
}

export interface TmpfsMount {
  type: 'tmpfs';
  target: string;
  /** mount options such as size=64m,mode=1777 */
  options: string[];
}

export type MountSpec = BindMount | TmpfsMount;

/** Resource limits. Sizes are bytes; undefined means "not set". */
export interface Resources {
  memory?: number;
  /** total memory+swap in bytes; -1 for unlimited swap */
  memorySwap?: number;
  /** fractional CPUs, e.g. 0.5 */
  cpus?: number;
  cpuShares?: number;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: number;
  blkioWeight?: number;
}

export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface UsernsConfig {
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
}

export interface RestartPolicy {
  name: 'no' | 'on-failure' | 'always' | 'unless-stopped';
  /** for on-failure:N; 0 means unlimited */
  maxRetries: number;
}

/** VM settings (--isolation vm); unset fields take the driver's defaults. */
export interface VmOptions {
  /** 'auto' (the host probe decides), 'kvm' or 'tcg' */
  accel?: string;
  /** 'virtio' (para-virtualized, default) or 'emulated' (IDE disk, UART channel) */
  deviceModel?: 'virtio' | 'emulated';
  /** a kernel image of the user's (its virtio drivers built in); default: Debian's cloud kernel */
  kernel?: string;
  /** an initramfs of the user's, unpacked before hull's (hull's agent stays /init) */
  initrd?: string;
  /**
   * a full OS disk image to boot instead of an OCI image (hull vm create --disk): imported (copied into the pool
   * as rootDisk) and never written to, unless diskInPlace
   */
  disk?: string;
  /** --disk-in-place: boot `disk` itself, written to by the guest (no copy in a pool; rm leaves it) */
  diskInPlace?: boolean;
  /** --pool: the storage pool of the root disk (absent for VMs made before disks lived in pools) */
  pool?: string;
  /** --disk-size: the root disk's size in bytes (an image VM's filesystem is grown to it; a full OS grows its own) */
  diskSize?: number;
  /** where the VM's writable root disk lives (in `pool`), set by the engine at create; absent: disk.qcow2 in the instance dir */
  rootDisk?: string;
  /** its format as the user stated it; checked against what qemu-img finds */
  diskFormat?: DiskFormat;
  /** --sysctl: written to the guest's /proc/sys by the agent before the command starts (any key: its own kernel) */
  sysctls?: Record<string, string>;
  /** --display: a graphics card whose screen QEMU serves over VNC ('vnc'), or none; absent: none */
  display?: DisplayType;
  /** false (--no-template): boot the kernel instead of restoring a saved VM template */
  template?: boolean;
  /** a disk VM's firmware: 'bios' (SeaBIOS, default) or 'uefi' (OVMF) */
  firmware?: 'bios' | 'uefi';
  /**
   * a disk VM's cloud-init data, read from --cloud-init, --network-config and --ssh-key at create (hull makes
   * the NoCloud seed from them; src/vm/cloudinit.ts)
   */
  cloudInit?: { userData?: string; networkConfig?: string; sshKeys?: string[] };
}

/** What a graphical display is served as: VNC ('vnc'), or no display ('none'). */
export type DisplayType = 'vnc' | 'none';

/** An instance's graphical display (InstanceDriver.display): where its VNC server listens. */
export interface InstanceDisplay {
  type: 'vnc';
  /** the VNC server's unix socket (raw RFB); may be longer than sun_path: connect through the instance dir's fd */
  socket: string;
}

/** docker's healthcheck, resolved (defaults filled in); durations in milliseconds. */
export interface HealthcheckConfig {
  /** ['CMD', ...argv] or ['CMD-SHELL', command line] */
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  /** failures during this time after the start do not count towards retries */
  startPeriodMs: number;
  /** consecutive failures that make the instance unhealthy */
  retries: number;
}

/** One rlimit (--ulimit). */
export interface Ulimit {
  type: string;
  soft: number;
  hard: number;
}

/** A container's own settings (kind 'container'), resolved by the container driver's configure(). */
export interface ContainerOptions {
  /** OCI runtime to use (runc, crun) */
  runtime: string;
  privileged: boolean;
  capAdd: string[];
  capDrop: string[];
  /** --security-opt no-new-privileges[=true|false]; default false (docker's); records keep what they were made with */
  noNewPrivileges: boolean;
  /** 'default' (hull's profile), 'unconfined', or a path to a JSON profile */
  seccomp: string;
  userns: UsernsConfig | null;
  /** rlimits; never above the hard limit (no CAP_SYS_RESOURCE on some hosts) */
  ulimits: Ulimit[];
  /** --group-add: extra supplementary groups, names (looked up in the image's /etc/group) or gids; absent in older records */
  groupAdd?: string[];
  /** --device: host device nodes (or directories of them) given to the container */
  devices?: DeviceMapping[];
  /** --device-cgroup-rule: extra device cgroup rules, docker's syntax ('c 1:3 mr') */
  deviceCgroupRules?: string[];
  /** --pid: 'private' (default), 'host' or 'container:<id>' */
  pidMode?: string;
  /** --ipc: 'private' (default), 'shareable', 'none', 'host' or 'container:<id>' */
  ipcMode?: string;
  /** --uts: 'private' (default) or 'host' */
  utsMode?: string;
  /** --sysctl: namespaced kernel parameters set in the container */
  sysctls?: Record<string, string>;
  /** --shm-size: bytes of the /dev/shm tmpfs; absent: 64 MiB (docker's default) */
  shmSize?: number;
  /** --display: the application gets a virtual X display of its own (an Xvnc per instance); absent: none */
  display?: 'vnc';
}

/** --device HOST[:CONTAINER[:PERMISSIONS]] */
export interface DeviceMapping {
  pathOnHost: string;
  pathInContainer: string;
  /** device cgroup permissions, some of r, w, m */
  permissions: string;
}

/**
 * What an instance runs: the image's config merged with the user's flags, fully resolved.
 * Stored with the instance record (JSON) so that `start` after a restart of hull has all it needs.
 * The common part applies to every kind; `container` and `vm` hold what only that kind has (a record
 * carries the section of its own kind).
 */
export interface InstanceConfig {
  /** the reference the user typed, e.g. busybox or busybox:latest */
  image: string;
  /** image id (sha256:... of the image config) */
  imageId: string;
  /** argv: entrypoint followed by cmd, after flags */
  command: string[];
  /** the entrypoint part of `command` (docker's Config.Entrypoint); absent in older records */
  entrypoint?: string[];
  /** the ports the instance exposes, "80/tcp" (the image's EXPOSE and the published ones); absent in older records */
  exposedPorts?: string[];
  env: string[];
  workdir: string;
  /** user[:group], as given to -u or taken from the image */
  user: string;
  hostname: string;
  tty: boolean;
  /** keep stdin open (-i) */
  stdin: boolean;
  mounts: MountSpec[];
  readOnly: boolean;
  resources: Resources;
  /** signal name, e.g. SIGTERM */
  stopSignal: string;
  /** seconds to wait after stopSignal before SIGKILL */
  stopTimeout: number;
  restart: RestartPolicy;
  /** remove when it exits (--rm) */
  autoRemove: boolean;
  labels: Record<string, string>;
  /**
   * 'none' (loopback only), 'host', 'bridge' (attached to the hull networks in `networks`), or 'container:<id>'
   * (another running instance's network namespace, its /etc/hosts, /etc/resolv.conf and hostname)
   */
  network: string;
  /** the hull networks the instance joins (network 'bridge'), first one first; absent in older records */
  networks?: NetworkRequest[];
  /** published ports (-p/-P); hostPort 0 means "pick a free one at start" */
  ports?: PortMapping[];
  /** --dns: upstream nameservers (the network's DNS server forwards to them) */
  dns?: string[];
  /** --dns-search */
  dnsSearch?: string[];
  /** --add-host entries, "name:ip" ("name:host-gateway" resolves at start to the default network's gateway) */
  extraHosts?: string[];
  /** --log-driver/--log-opt; absent: k8s-file, unlimited */
  log?: LogConfig;
  /** --init: a small init (tini) runs as pid 1 and runs the command (containers); a VM's agent is that init already */
  init?: boolean;
  /** -a: the streams run and start -a attach (docker's AttachStdin/Stdout/Stderr); absent: all of them */
  attach?: ('stdin' | 'stdout' | 'stderr')[];
  /** the healthcheck (--health-* or the image's HEALTHCHECK); absent: none */
  healthcheck?: HealthcheckConfig;
  /** container settings, for kind 'container' */
  container?: ContainerOptions;
  /** VM settings, for kind 'vm' */
  vm?: VmOptions;
}

/**
 * How an instance's output is logged (docker's --log-driver and --log-opt). 'json-file' (docker's default
 * driver) and 'k8s-file' (conmon's) are both files `hull logs` reads; 'none' keeps no log.
 */
export interface LogConfig {
  driver: 'json-file' | 'k8s-file' | 'none';
  /** max-size: bytes a file may reach before a new one starts */
  maxSize?: number;
  /** max-file: files kept, the current one included (default 1) */
  maxFile?: number;
  /** labels / env log-opts: the label and environment variable names whose values `logs --details` shows */
  labels?: string[];
  env?: string[];
}

/** The kind-specific section(s) of an InstanceConfig, as a driver's configure() returns them. */
export type KindConfig = Pick<InstanceConfig, 'container' | 'vm'>;

/**
 * The kind-specific part of a create request as the user gave it (flags or an API body). The driver of
 * the instance's kind resolves what applies to it (configure) and ignores the rest.
 */
export interface IsolationRequest {
  privileged?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  /** docker's --security-opt values: no-new-privileges[=true|false], seccomp=unconfined|PATH */
  securityOpt?: string[];
  /** 'auto' picks a free 65536-id range; an explicit mapping; undefined/null for none */
  userns?: UsernsConfig | 'auto' | null;
  /** OCI runtime (runc, crun); default: the driver's choice for this host */
  runtime?: string;
  ulimits?: Ulimit[];
  /** --group-add: extra supplementary groups (group names of the image or gids) */
  groupAdd?: string[];
  /** --shm-size in bytes (containers) */
  shmSize?: number;
  /** VM settings (kind 'vm') */
  vm?: VmOptions;
  /** a full OS disk image to boot (checked by the driver's checkDiskImage; engine/disk-image.ts) */
  disk?: { path: string; format: DiskFormat };
  /** a disk VM's --cloud-init, --network-config and --ssh-key files (the driver reads them into vm.cloudInit) */
  cloudInitFiles?: { userData?: string; networkConfig?: string; sshKey?: string };
  /** --device HOST[:CONTAINER[:PERMISSIONS]] values */
  devices?: string[];
  /** --device-cgroup-rule values */
  deviceCgroupRules?: string[];
  /** --pid, --ipc, --uts modes ('container:X' names or ids are resolved to ids by the engine) */
  pid?: string;
  ipc?: string;
  uts?: string;
  /** --sysctl KEY=VALUE */
  sysctls?: Record<string, string>;
  /** --display: a graphical display served over VNC, or none; absent: the kind's default */
  display?: DisplayType;
}

/** What configure() may ask of the engine. */
export interface ConfigureEnv {
  /** the configs of every other instance (e.g. to find a free user-namespace range) */
  otherConfigs(): InstanceConfig[];
}

/** One network an instance asks to join: --network NAME [--ip] [--network-alias]. */
export interface NetworkRequest {
  name: string;
  /** a static IPv4 address inside the network's subnet */
  ip?: string;
  /** extra DNS names of the instance on this network */
  aliases?: string[];
}

/** A published port: host address and port forwarded to the instance's port. */
export interface PortMapping {
  /** '' for every host address */
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

/** What joining one network gave an instance (from the CNI result). */
export interface NetworkAttachment {
  network: string;
  /** interface name inside the instance's network namespace (eth0, eth1, ...) */
  interface: string;
  /** address with prefix, e.g. 10.89.1.2/24 */
  address: string;
  gateway?: string;
  /** on a dual-stack network: the IPv6 address with prefix, e.g. fd00:abcd::2/64, and its gateway */
  address6?: string;
  gateway6?: string;
  mac?: string;
  /** the host's bridge the interface hangs off (a VM driver bridges its tap here too) */
  bridge: string;
  /** DNS names the instance has on this network (name, aliases, short id) */
  names: string[];
  /** ports published through this attachment, host ports resolved */
  ports: PortMapping[];
}

/**
 * The network namespace the engine made for an instance and what is in it. The driver joins the namespace
 * (a container runtime by path; a VM driver later by creating its tap inside it) and renders /etc/hosts and
 * /etc/resolv.conf from the rest.
 */
export interface InstanceNetwork {
  netnsPath: string;
  attachments: NetworkAttachment[];
  /** nameservers for the instance's resolv.conf (the network's DNS server, or --dns) */
  nameservers: string[];
  searches: string[];
  /** --add-host entries as [name, ip] */
  extraHosts: [string, string][];
}

/** Where an instance's files live and what it is. Built by the engine, handed to the driver. */
export interface InstanceContext {
  id: string;
  name: string;
  /** hull's root dir (e.g. /var/lib/hull) */
  root: string;
  /** the instance's private directory (bundle, upper dir, logs, exit files) */
  dir: string;
  config: InstanceConfig;
  /** unpacked image layer directories, lowest first */
  layers: string[];
  /** the command hull runs when the instance's process exits (conmon's --exit-command), argv */
  exitCommand: string[];
  /** set by the engine for create when the instance joins hull networks (config.network 'bridge') */
  network?: InstanceNetwork;
  /** set by the engine for create when the instance joins another instance's namespaces (container:X modes) */
  joined?: JoinedNamespaces;
}

/**
 * The namespaces of another running instance that an instance joins (--network/--pid/--ipc container:X), as
 * paths under /proc/<pid of X>/, and what comes with them (docker's): X's /etc/hosts, /etc/resolv.conf and
 * hostname with its network, X's /dev/shm with its IPC namespace.
 */
export interface JoinedNamespaces {
  network?: string;
  pid?: string;
  ipc?: string;
  /** X's /dev/shm as the host sees it (the host's own for --ipc host, else X's shareable tmpfs) */
  shm?: string;
  /** X's instance directory, whose generated /etc/hosts, /etc/resolv.conf and /etc/hostname are shared */
  etcFrom?: string;
}

export interface CreateResult {
  /** pid of the supervisor (conmon for containers, QEMU for VMs) */
  supervisorPid: number;
  /** pid of the instance's first process, once known */
  pid: number;
}

export interface ExitInfo {
  exitCode: number;
  /** when the process exited (ms since epoch) */
  finishedAt: number;
  /** a reason beyond the code, e.g. "OOM killed" or "killed by signal 9" */
  reason?: string;
  /**
   * the kernel's OOM killer killed a process of the instance while it ran (docker's State.OOMKilled): the
   * container's memory cgroup, or the VM's guest kernel
   */
  oomKilled?: boolean;
}

export interface InstanceStats {
  cpuUsageNs: number;
  /** cpu usage percentage of one CPU over the sampling interval, when computed */
  cpuPercent?: number;
  memoryUsage: number;
  memoryLimit: number;
  pids: number;
  blkioRead: number;
  blkioWrite: number;
  netRx: number;
  netTx: number;
}

export interface ExecOptions {
  command: string[];
  env: string[];
  workdir?: string;
  user?: string;
  tty: boolean;
  stdin: boolean;
  privileged: boolean;
  detach: boolean;
}

/** A running process's stdio, for attach and exec. */
export interface StdioStreams {
  stdin: NodeJS.ReadableStream | null;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** current terminal size, and a way to learn about changes */
  size?: () => { rows: number; cols: number };
  onResize?: (cb: () => void) => void;
}

export interface ProcessInfo {
  titles: string[];
  rows: string[][];
}

/** What a driver can do beyond the required methods; each `true` has its optional method implemented. */
export interface DriverCapabilities {
  /**
   * A network joined or left while the instance runs reaches it at once (a container sees the new interface
   * in its namespace; a VM's NICs are fixed when QEMU starts, so it changes at the next start).
   */
  readonly liveNetworkChanges: boolean;
  /** console(): a serial console besides the main process's stdio */
  readonly console: boolean;
  /** checkDiskImage(): boots a full OS disk image instead of an OCI image (hull vm create --disk) */
  readonly diskImages: boolean;
  /** other instances may join its namespaces (--network/--pid/--ipc container:X); a VM has its own kernel */
  readonly sharedNamespaces?: boolean;
}

export type DiskFormat = 'qcow2' | 'raw';

/** Where the root's instances live, for a driver's recovery (the instance of id `x` has `<instancesDir>/x`). */
export interface RecoveryScope {
  /** hull's root dir */
  root: string;
  /** the directory of the instance directories (<root>/containers) */
  instancesDir: string;
}

/** A driver's process found on the host for an instance (recovery). */
export interface FoundProcess {
  pid: number;
  /** what it is, for messages (conmon, vm-monitor, qemu, virtiofsd) */
  program: string;
  /** the process an instance record names as its supervisor (not a helper, not an exec's) */
  main: boolean;
}

/** What one driver finds on the host of one instance, whether or not the store knows it. */
export interface DriverRemains {
  id: string;
  /** the instance's directory holds this driver's own files: it is an instance of this kind */
  files: boolean;
  /** the driver's processes that serve it (its supervisor, helpers, exec sessions) */
  processes: FoundProcess[];
  /** state kept for it outside its directory, each named for messages (an OCI runtime's state: runc, crun) */
  state: string[];
}

/**
 * recovery (optional): what `hull system recover` and the checks before a command (engine/recover.ts) ask of
 * a driver when hull.db is lost or damaged. The engine composes the answers with what is its own (instance
 * directories, mounts, network namespaces and attachments) and never looks at a driver's processes or files.
 */
export interface DriverRecovery {
  /** Everything of this driver's on the host for the root's instances, one entry per instance id that has any. */
  findRemains(scope: RecoveryScope): DriverRemains[];
  /**
   * Tear down what this driver left of an instance that cannot be rebuilt (no usable record): its runtime
   * state, supervisor and helper processes (also those no pid file names), cgroups and files. `found` is what
   * findRemains said of it, when it said anything. Returns what could not be cleaned up (one phrase each).
   */
  tearDown(scope: RecoveryScope, id: string, found?: DriverRemains): Promise<string[]>;
}

/** A driver's part of `hull inspect` (InstanceDriver.describe). */
export interface DriverDescription {
  /** docker's GraphDriver: the storage of the root filesystem and its directories or files */
  graphDriver: { Name: string; Data: Record<string, string> | null };
  /** the kind's own facts, shown in inspect's Hull section */
  details: Record<string, unknown>;
  /** the files hull writes for the instance's /etc/resolv.conf, /etc/hostname and /etc/hosts, where it has them */
  etcFiles?: { resolvConf: string; hostname: string; hosts: string };
}

/** The interface every driver implements. All methods take the instance's context. */
export interface InstanceDriver {
  readonly kind: InstanceKind;
  /** what supervises an instance's process (conmon, hull's VM monitor), for messages */
  readonly supervisorName: string;
  readonly capabilities: DriverCapabilities;
  /**
   * Resolve the request's kind-specific settings into this kind's config section: validated, the kind's
   * defaults filled in (a container's OCI runtime for this host, its seccomp profile, …). Runs before
   * anything is recorded; settings only other kinds use are ignored.
   */
  configure(req: IsolationRequest, env: ConfigureEnv): KindConfig;
  /** Whether the instance's supervisor (pid recorded at create) still runs and is this instance's (not a recycled pid). */
  supervisorAlive(ctx: InstanceContext, pid: number): boolean;
  /** Prepare the root filesystem and runtime bundle, start the supervisor; leaves the instance created. */
  create(ctx: InstanceContext): Promise<CreateResult>;
  /** Start the instance's process. */
  start(ctx: InstanceContext): Promise<void>;
  /** Send a signal (name like SIGTERM or a number as text) to the instance's first process (or all). */
  kill(ctx: InstanceContext, signal: string, all?: boolean): Promise<void>;
  /** The runtime's view; 'stopped' once the process has exited. */
  status(ctx: InstanceContext): Promise<{ status: RuntimeStatus; pid: number }>;
  /** The exit status recorded by the supervisor, or null while the process is still alive. */
  exitInfo(ctx: InstanceContext): ExitInfo | null;
  /** Resolve when the process exits (or the signal aborts). */
  waitExit(ctx: InstanceContext, signal?: AbortSignal): Promise<ExitInfo>;
  pause(ctx: InstanceContext): Promise<void>;
  resume(ctx: InstanceContext): Promise<void>;
  update(ctx: InstanceContext, resources: Resources): Promise<void>;
  stats(ctx: InstanceContext): Promise<InstanceStats>;
  top(ctx: InstanceContext, psArgs: string[]): Promise<ProcessInfo>;
  /** Run a further process inside; resolves with its exit code. */
  exec(ctx: InstanceContext, opts: ExecOptions, stdio: StdioStreams): Promise<number>;
  /** Attach to the first process's stdio (for run -i / -t and attach). Resolves when it ends or detaches. */
  attach(ctx: InstanceContext, stdio: StdioStreams): Promise<void>;
  /** Path of the log file, in the driver's log format (readable by readLogs) */
  logPath(ctx: InstanceContext): string;
  /** Tear down everything the driver made (runtime state, mounts, cgroups, files). Idempotent. */
  delete(ctx: InstanceContext): Promise<void>;
  /** Release runtime resources after exit but keep the instance's files (so it can be started again). */
  cleanupAfterExit(ctx: InstanceContext): Promise<void>;
  /**
   * Drop what the driver caches per image (a VM's root disk) for images not in `keep` (the images that
   * still exist or that instances use), after image garbage collection. Returns the bytes freed.
   */
  pruneImageCaches?(root: string, keep: ReadonlySet<string>): Promise<number>;
  /** `hull system prune`: drop every cache of the driver's own that is made again on demand (VM templates); bytes freed. */
  pruneCaches?(root: string): Promise<number>;
  /** `hull system df`: those caches, by kind. */
  cacheUsage?(root: string): { kind: string; count: number; size: number }[];
  /**
   * capabilities.console: the serial console (hull console), output as it comes and input to the guest,
   * until the instance stops or the user types the detach key (Ctrl-] by default). Resolves with how it ended.
   */
  console?(ctx: InstanceContext, stdio: StdioStreams, detachKey?: number): Promise<'detached' | 'stopped'>;
  /**
   * capabilities.diskImages: check a disk image before an instance boots it (it exists, is readable, is in
   * the stated format); returns the format to open it with.
   */
  checkDiskImage?(path: string, stated?: DiskFormat): Promise<DiskFormat>;
  /**
   * The addresses the instance's own OS reports (a full OS VM's guest agent: guest-network-get-interfaces),
   * as "interface address/prefix"; absent or empty when it reports none (hull ps --format {{.Addresses}}, inspect).
   */
  guestAddresses?(ctx: InstanceContext): string[];
  /** Copy one regular file from the host into the instance, or out of it (hull cp), where the kind copies files itself. */
  copyFileIn?(ctx: InstanceContext, hostPath: string, path: string): Promise<void>;
  copyFileOut?(ctx: InstanceContext, path: string, hostPath: string): Promise<void>;
  /** Freeze the instance's file systems for a consistent snapshot, and thaw them (a VM's guest agent); the count. */
  freezeFilesystems?(ctx: InstanceContext): Promise<number>;
  thawFilesystems?(ctx: InstanceContext): Promise<number>;
  /**
   * What this kind adds to `hull inspect`: its root filesystem as docker's GraphDriver, and its own facts (a
   * container's OCI runtime, a VM's machine, CPUs, memory, kernel, disk and console), for the Hull section.
   * Reads only files; never fails (what cannot be read is left out).
   */
  describe?(ctx: InstanceContext): DriverDescription;
  /**
   * The instance's graphical display as configured (null: it has none): a VM's graphics card, a graphical
   * container's virtual X display. Its socket exists while the instance runs.
   */
  display?(ctx: InstanceContext): InstanceDisplay | null;
  /**
   * Finding and tearing down this driver's remains of instances the store does not know (hull.db lost or
   * damaged; DriverRecovery). A driver without it leaves recovery to the engine's host-level clean-up.
   */
  readonly recovery?: DriverRecovery;
}

/**
 * How a driver makes itself known: its module exports one of these, and the engine's registry
 * (src/engine/drivers.ts) lists them. The kind lives here, in the driver, not in the engine.
 */
export interface DriverFactory {
  readonly kind: InstanceKind;
  create(): InstanceDriver;
}
