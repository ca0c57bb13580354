import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import type { Resources, UsernsConfig } from '../../common/instance.js';
import { InvalidArgumentError } from '../../common/errors.js';
import {
  parseEnv,
  parseEnvFile,
  parseIdMap,
  parseLabels,
  parseLogConfig,
  parseNumber,
  parseRestart,
  parseSignal,
  parseGoDuration,
  parseSize,
  parseSizeOrUnlimited,
  parseMemoryLimit,
  parseTmpfs,
  parseUlimit,
  parseVolume,
  parseMount,
  parseSysctls,
} from '../../common/parse.js';
import type { CreateRequest } from '../../engine/config.js';
import type { HealthcheckRequest } from '../../engine/health.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** The flags shared by `run` and `create` (docker's names). */
export function addCreateFlags(cmd: Command): Command {
  return cmd
    .helpOption('--help', 'show help')
    .option('--name <name>', 'name of the instance')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect)
    .option('--env-file <file>', 'read environment variables from a file (repeatable)', collect)
    .option('-u, --user <user[:group]>', 'user to run the command as')
    .option('-w, --workdir <dir>', 'working directory inside the instance')
    .option('-h, --hostname <name>', 'hostname inside the instance')
    .option('-i, --interactive', 'keep stdin open')
    .option('-t, --tty', 'allocate a pseudo-terminal')
    .option(
      '-v, --volume <src:dst[:ro]>',
      'bind-mount a host path, or mount a named volume (NAME:DST) or an anonymous one (DST) (repeatable)',
      collect,
    )
    .option('--tmpfs <dst[:opts]>', 'mount a tmpfs (repeatable)', collect)
    .option('--mount <type=bind|tmpfs,...>', "a bind or tmpfs mount, docker's CSV syntax (repeatable)", collect)
    .option('--device <host[:ctr[:rwm]]>', 'give the container a host device (repeatable)', collect)
    .option('--device-cgroup-rule <rule>', "allow devices in the device cgroup, e.g. 'c 1:3 mr' (repeatable)", collect)
    .option('--pid <mode>', 'PID namespace: private (default), host or container:NAME')
    .option('--ipc <mode>', 'IPC namespace: private (default), shareable, none, host or container:NAME')
    .option('--uts <mode>', 'UTS namespace: private (default) or host')
    .option('--sysctl <key=value>', 'set a namespaced kernel parameter (repeatable)', collect)
    .option('--read-only', 'mount the root filesystem read-only')
    .option('--privileged', 'give extended privileges (all capabilities, no seccomp, all devices)')
    .option('--cap-add <cap>', 'add a Linux capability (repeatable)', collect)
    .option('--cap-drop <cap>', 'drop a Linux capability (repeatable)', collect)
    .option('--security-opt <opt>', 'no-new-privileges[=true|false], seccomp=unconfined|PATH (repeatable)', collect)
    .option(
      '--group-add <group>',
      "add a supplementary group: a name in the image's /etc/group or a gid (repeatable)",
      collect,
    )
    .option('--userns <mode>', 'user namespace: host (default) or auto (a private 65536-id range)')
    .option('--uidmap <c:h:n>', 'user namespace uid mapping (repeatable)', collect)
    .option('--gidmap <c:h:n>', 'user namespace gid mapping (repeatable)', collect)
    .option('-m, --memory <bytes>', 'memory limit (e.g. 64m)')
    .option('--memory-swap <bytes>', 'memory plus swap limit; -1 for unlimited swap')
    .option('--cpus <n>', 'number of CPUs (e.g. 0.5)')
    .option('-c, --cpu-shares <n>', 'CPU shares (relative weight)')
    .option('--cpuset-cpus <list>', 'CPUs to run on (e.g. 0-1)')
    .option('--pids-limit <n>', 'maximum number of processes')
    .option('--blkio-weight <n>', 'block IO weight (10-1000)')
    .option('--ulimit <name=soft[:hard]>', 'resource limit (repeatable)', collect)
    .option('--restart <policy>', 'no, on-failure[:N], always, unless-stopped')
    .option('--rm', 'remove the instance when it exits')
    .option('--stop-signal <sig>', 'signal to stop the instance')
    .option('--stop-timeout <s>', 'seconds to wait before killing on stop')
    .option('--entrypoint <cmd>', "override the image's entrypoint ('' resets it)")
    .option('-l, --label <k=v>', 'set a label (repeatable)', collect)
    .option(
      '--network <name>',
      'network: a hull network (default: hull), none (loopback only) or host; repeatable',
      collect,
    )
    .addOption(new Option('--net <name>', 'same as --network').hideHelp().argParser(collect))
    .option('--ip <address>', 'static IPv4 address on the (first) network')
    .option('--network-alias <name>', 'extra DNS name on the networks (repeatable)', collect)
    .option(
      '-p, --publish <[ip:][host:]ctr[/proto]>',
      'publish a port on the host (repeatable; no host port: a random one)',
      collect,
    )
    .option('-P, --publish-all', 'publish every port the image exposes on random host ports')
    .option('--dns <ip>', "DNS server (repeatable; the network's DNS server forwards to it)", collect)
    .option('--dns-search <domain>', 'DNS search domain (repeatable)', collect)
    .option('--log-driver <driver>', 'json-file, k8s-file or none (no log: `hull logs` cannot read it)')
    .option('--log-opt <key=value>', 'log option: max-size=10m, max-file=3, labels=a,b, env=A,B (repeatable)', collect)
    .option(
      '--add-host <name:ip>',
      "add a line to /etc/hosts (repeatable; ip host-gateway: the host's address on the default network)",
      collect,
    )
    .option('--init', 'run an init (tini) as pid 1 that reaps zombies and forwards signals')
    .option('--health-cmd <command>', 'healthcheck command (run with /bin/sh -c)')
    .option('--health-interval <duration>', 'time between healthchecks (e.g. 30s; default 30s)')
    .option('--health-timeout <duration>', 'time a healthcheck may take (default 30s)')
    .option('--health-retries <n>', 'consecutive failures that make it unhealthy (default 3)')
    .option('--health-start-period <duration>', 'time after the start in which failures do not count (default 0s)')
    .option('--no-healthcheck', "disable the image's HEALTHCHECK")
    .option(
      '-a, --attach <stream>',
      'attach to stdin, stdout or stderr (repeatable; default stdout and stderr)',
      collect,
    )
    .option('--cidfile <file>', "write the instance's id to this file (refused when it exists)")
    .option('--shm-size <bytes>', 'size of /dev/shm (default 64m; containers)')
    .option('--runtime <name>', 'OCI runtime: runc or crun (default: the best that works on this host)')
    .option(
      '--pull <policy>',
      'pull the image: missing (default), always, never, newer (when the registry has a different one)',
    )
    .option('--platform <os/arch[/variant]>', 'platform to pull from a multi-platform image')
    .option('--tls-verify [bool]', 'use HTTPS when pulling (false: plain HTTP)')
    .option('-q, --quiet', 'pull without progress output')
    .addOption(
      new Option('--isolation <kind>', 'container (default) or vm (a virtual machine with its own kernel)')
        .choices(['container', 'vm'])
        .default('container'),
    )
    .addOption(
      new Option(
        '--accel <accel>',
        'VM accelerator: auto (default: KVM where the host has hardware virtualization, else TCG), kvm or tcg',
      ).choices(['auto', 'kvm', 'tcg']),
    )
    .addOption(
      new Option(
        '--device-model <model>',
        'VM devices: virtio (para-virtualized, default) or emulated (IDE disk, UART)',
      ).choices(['virtio', 'emulated']),
    )
    .option('--kernel <path>', "VM: boot this kernel image (virtio drivers built in) instead of Debian's cloud kernel")
    .option('--initrd <path>', "VM: an initramfs unpacked before hull's (hull's agent stays /init)")
    .option(
      '--display [type]',
      'a graphical display served over VNC (see hull vnc): vnc (bare --display) or none; a container runs an X11 app on a virtual display of its own, a VM gets a graphics card (default: vnc for disk-image VMs, none otherwise)',
    )
    .option('--no-template', 'VM: boot the kernel instead of restoring a saved VM template (as HULL_VM_TEMPLATES=0)')
    .option('--pool <pool>', 'VM: the storage pool of its root disk (default: default)')
    .option('--disk-size <size>', "VM: the root disk's size (e.g. 10g; its filesystem is grown to it)")
    .argument('<image>', 'image to run')
    .argument('[command...]', 'command and arguments')
    .passThroughOptions();
}

export interface CreateFlags {
  name?: string;
  env?: string[];
  envFile?: string[];
  user?: string;
  workdir?: string;
  hostname?: string;
  interactive?: boolean;
  tty?: boolean;
  volume?: string[];
  tmpfs?: string[];
  mount?: string[];
  device?: string[];
  deviceCgroupRule?: string[];
  pid?: string;
  ipc?: string;
  uts?: string;
  sysctl?: string[];
  readOnly?: boolean;
  privileged?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  securityOpt?: string[];
  groupAdd?: string[];
  userns?: string;
  uidmap?: string[];
  gidmap?: string[];
  memory?: string;
  memorySwap?: string;
  cpus?: string;
  cpuShares?: string;
  cpusetCpus?: string;
  pidsLimit?: string;
  blkioWeight?: string;
  ulimit?: string[];
  restart?: string;
  rm?: boolean;
  stopSignal?: string;
  stopTimeout?: string;
  entrypoint?: string;
  label?: string[];
  network?: string[];
  net?: string[];
  runtime?: string;
  isolation?: string;
  accel?: string;
  deviceModel?: 'virtio' | 'emulated';
  kernel?: string;
  initrd?: string;
  /** false with --no-template */
  template?: boolean;
  pool?: string;
  diskSize?: string;
  ip?: string;
  networkAlias?: string[];
  publish?: string[];
  publishAll?: boolean;
  dns?: string[];
  dnsSearch?: string[];
  addHost?: string[];
  init?: boolean;
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthRetries?: string;
  healthStartPeriod?: string;
  /** false with --no-healthcheck */
  healthcheck?: boolean;
  attach?: string[];
  cidfile?: string;
  shmSize?: string;
  pull?: string;
  platform?: string;
  tlsVerify?: string | boolean;
  quiet?: boolean;
  logDriver?: string;
  logOpt?: string[];
  /** --display [vnc|none]; true when bare */
  display?: string | boolean;
}

/**
 * `--display` takes an optional value, so commander reads `run --display IMAGE CMD` as `--display=IMAGE`: a value
 * that is not a display type is the image, and what commander took as the image is the command's first word.
 */
export function displayPositionals(image: string, command: string[], f: CreateFlags): [string, string[]] {
  if (typeof f.display === 'string' && f.display !== 'vnc' && f.display !== 'none') {
    const shifted: [string, string[]] = [f.display, [image, ...command]];
    f.display = true;
    return shifted;
  }
  return [image, command];
}

/** --display as a request value: bare --display is vnc. */
export function parseDisplay(v: string | boolean | undefined, flag = '--display'): 'vnc' | 'none' | undefined {
  if (v === undefined || v === false) return undefined;
  if (v === true || v === 'vnc') return 'vnc';
  if (v === 'none') return 'none';
  throw new InvalidArgumentError(`invalid ${flag} "${v}": use vnc or none`);
}

/** The resource flags, shared with `update`. */
export function parseResources(
  f: Pick<CreateFlags, 'memory' | 'memorySwap' | 'cpus' | 'cpuShares' | 'cpusetCpus' | 'pidsLimit' | 'blkioWeight'>,
): Resources {
  const r: Resources = {};
  if (f.memory !== undefined) r.memory = parseMemoryLimit(f.memory, '--memory');
  if (f.memorySwap !== undefined) r.memorySwap = parseSizeOrUnlimited(f.memorySwap, '--memory-swap');
  if (f.cpus !== undefined) r.cpus = parseNumber(f.cpus, '--cpus', { min: 0.01 });
  if (f.cpuShares !== undefined)
    r.cpuShares = parseNumber(f.cpuShares, '--cpu-shares', { integer: true, min: 2, max: 262144 });
  if (f.cpusetCpus !== undefined) {
    if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(f.cpusetCpus))
      throw new InvalidArgumentError(`invalid --cpuset-cpus "${f.cpusetCpus}": expected a list like 0-1,3`);
    r.cpusetCpus = f.cpusetCpus;
  }
  if (f.pidsLimit !== undefined) r.pidsLimit = parseNumber(f.pidsLimit, '--pids-limit', { integer: true, min: -1 });
  if (f.blkioWeight !== undefined)
    r.blkioWeight = parseNumber(f.blkioWeight, '--blkio-weight', { integer: true, min: 10, max: 1000 });
  // 0: a limit too large to count (parseMemoryLimit), i.e. none
  if (r.memory !== undefined && r.memory !== 0 && r.memory < 6 * 1024 * 1024)
    throw new InvalidArgumentError('invalid --memory: the minimum is 6m');
  if (r.memorySwap !== undefined && r.memorySwap !== -1) {
    if (r.memory === undefined) throw new InvalidArgumentError('--memory-swap needs --memory as well');
    if (r.memory === 0)
      throw new InvalidArgumentError(
        'invalid --memory-swap: it must be at least --memory (it counts memory plus swap), and --memory is unlimited',
      );
    if (r.memorySwap < r.memory)
      throw new InvalidArgumentError(
        'invalid --memory-swap: it must be at least --memory (it counts memory plus swap)',
      );
  }
  return r;
}

function logRequest(f: CreateFlags): Pick<CreateRequest, 'log'> {
  const log = parseLogConfig(f.logDriver, f.logOpt ?? []);
  return log ? { log } : {};
}

export function toCreateRequest(image: string, command: string[], f: CreateFlags): CreateRequest {
  const env = [...(f.envFile ?? []).flatMap((p) => parseEnvFile(p)), ...parseEnv(f.env ?? [])];
  const mounts = [
    ...(f.volume ?? []).map(parseVolume),
    ...(f.tmpfs ?? []).map(parseTmpfs),
    ...(f.mount ?? []).map(parseMount),
  ];
  let userns: CreateRequest['userns'] = null;
  if (f.uidmap?.length || f.gidmap?.length) {
    if (f.userns && f.userns !== 'private')
      throw new InvalidArgumentError('--uidmap/--gidmap cannot be combined with --userns ' + f.userns);
    const uids = (f.uidmap ?? []).map((s) => parseIdMap(s, '--uidmap'));
    const gids = (f.gidmap ?? f.uidmap ?? []).map((s) => parseIdMap(s, '--gidmap'));
    userns = { uidMappings: uids.length ? uids : gids, gidMappings: gids } satisfies UsernsConfig;
  } else if (f.userns !== undefined) {
    if (f.userns === 'auto') userns = 'auto';
    else if (f.userns !== 'host' && f.userns !== '')
      throw new InvalidArgumentError(`invalid --userns "${f.userns}": use host or auto (or --uidmap/--gidmap)`);
  }
  let entrypoint: string[] | undefined;
  if (f.entrypoint !== undefined) entrypoint = f.entrypoint === '' ? [] : [f.entrypoint];
  const kind = f.isolation === 'vm' ? 'vm' : 'container';
  const health = healthRequest(f);
  const vmFlags = [
    f.accel && '--accel',
    f.deviceModel && '--device-model',
    f.kernel && '--kernel',
    f.initrd && '--initrd',
    f.template === false && '--no-template',
    f.pool !== undefined && '--pool',
    f.diskSize !== undefined && '--disk-size',
  ].filter(Boolean);
  if (kind !== 'vm' && vmFlags.length > 0)
    throw new InvalidArgumentError(`${vmFlags.join(', ')} apply to VMs only: add --isolation vm`);
  const vm: CreateRequest['vm'] =
    kind === 'vm'
      ? {
          ...(f.accel !== undefined ? { accel: f.accel } : {}),
          ...(f.deviceModel !== undefined ? { deviceModel: f.deviceModel } : {}),
          ...(f.kernel !== undefined ? { kernel: resolve(f.kernel) } : {}),
          ...(f.initrd !== undefined ? { initrd: resolve(f.initrd) } : {}),
          ...(f.template === false ? { template: false } : {}),
          ...(f.pool !== undefined ? { pool: f.pool } : {}),
          ...(f.diskSize !== undefined ? { diskSize: parseSize(f.diskSize, '--disk-size') } : {}),
        }
      : undefined;
  return {
    kind,
    ...(vm ? { vm } : {}),
    image,
    ...(f.name !== undefined ? { name: f.name } : {}),
    command,
    ...(entrypoint ? { entrypoint } : {}),
    env,
    ...(f.user !== undefined ? { user: f.user } : {}),
    ...(f.workdir !== undefined ? { workdir: f.workdir } : {}),
    ...(f.hostname !== undefined ? { hostname: f.hostname } : {}),
    tty: !!f.tty,
    stdin: !!f.interactive,
    mounts,
    readOnly: !!f.readOnly,
    privileged: !!f.privileged,
    capAdd: f.capAdd ?? [],
    capDrop: f.capDrop ?? [],
    securityOpt: f.securityOpt ?? [],
    ...(f.groupAdd ? { groupAdd: f.groupAdd } : {}),
    userns,
    resources: parseResources(f),
    ...(f.stopSignal !== undefined ? { stopSignal: parseSignal(f.stopSignal) } : {}),
    ...(f.stopTimeout !== undefined
      ? { stopTimeout: parseNumber(f.stopTimeout, '--stop-timeout', { integer: true, min: 0 }) }
      : {}),
    ...(f.restart !== undefined ? { restart: parseRestart(f.restart) } : {}),
    autoRemove: !!f.rm,
    labels: parseLabels(f.label ?? []),
    ...((f.network ?? f.net) !== undefined ? { networks: [...(f.network ?? []), ...(f.net ?? [])] } : {}),
    ...(f.ip !== undefined ? { ip: f.ip } : {}),
    ...(f.networkAlias ? { aliases: f.networkAlias } : {}),
    ...(f.publish ? { publish: f.publish } : {}),
    ...(f.publishAll ? { publishAll: true } : {}),
    ...(f.dns ? { dns: f.dns } : {}),
    ...(f.dnsSearch ? { dnsSearch: f.dnsSearch } : {}),
    ...(f.addHost ? { addHost: f.addHost } : {}),
    ...(f.runtime !== undefined ? { runtime: f.runtime } : {}),
    ulimits: (f.ulimit ?? []).map(parseUlimit),
    ...logRequest(f),
    ...(f.device ? { devices: f.device } : {}),
    ...(f.deviceCgroupRule ? { deviceCgroupRules: f.deviceCgroupRule } : {}),
    ...(f.pid !== undefined ? { pid: f.pid } : {}),
    ...(f.ipc !== undefined ? { ipc: f.ipc } : {}),
    ...(f.uts !== undefined ? { uts: f.uts } : {}),
    ...(f.sysctl ? { sysctls: parseSysctls(f.sysctl) } : {}),
    ...(f.init ? { init: true } : {}),
    ...(f.attach?.length ? { attach: [...attachStreams(f)] } : {}),
    ...(health ? { health } : {}),
    ...(f.shmSize !== undefined ? { shmSize: parseShmSize(f.shmSize) } : {}),
    ...(parseDisplay(f.display) ? { display: parseDisplay(f.display)! } : {}),
  };
}

/** --health-* and --no-healthcheck (durations in ms); undefined when none is given. */
function healthRequest(f: CreateFlags): HealthcheckRequest | undefined {
  const h: HealthcheckRequest = {
    ...(f.healthCmd !== undefined ? { test: ['CMD-SHELL', f.healthCmd] } : {}),
    ...(f.healthInterval !== undefined ? { intervalMs: parseGoDuration(f.healthInterval, '--health-interval') } : {}),
    ...(f.healthTimeout !== undefined ? { timeoutMs: parseGoDuration(f.healthTimeout, '--health-timeout') } : {}),
    ...(f.healthStartPeriod !== undefined
      ? { startPeriodMs: parseGoDuration(f.healthStartPeriod, '--health-start-period') }
      : {}),
    ...(f.healthRetries !== undefined
      ? { retries: parseNumber(f.healthRetries, '--health-retries', { integer: true, min: 0 }) }
      : {}),
    ...(f.healthcheck === false ? { disable: true } : {}),
  };
  return Object.keys(h).length > 0 ? h : undefined;
}

function parseShmSize(v: string): number {
  const n = parseSize(v, '--shm-size');
  if (n <= 0) throw new InvalidArgumentError(`invalid --shm-size "${v}": give a size above 0, e.g. 64m`);
  return n;
}

/** -a/--attach: which of stdin, stdout, stderr to attach (docker's default: stdout and stderr; stdin with -i). */
export function attachStreams(f: Pick<CreateFlags, 'attach' | 'interactive'>): Set<'stdin' | 'stdout' | 'stderr'> {
  if (!f.attach || f.attach.length === 0)
    return new Set(f.interactive ? ['stdin', 'stdout', 'stderr'] : ['stdout', 'stderr']);
  const out = new Set<'stdin' | 'stdout' | 'stderr'>();
  for (const a of f.attach) {
    const s = a.toLowerCase();
    if (s !== 'stdin' && s !== 'stdout' && s !== 'stderr')
      throw new InvalidArgumentError(`invalid --attach "${a}": use stdin, stdout or stderr`);
    out.add(s);
  }
  return out;
}
