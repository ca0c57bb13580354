/**
 * A container's own settings: what the user asked (IsolationRequest) resolved into the config's `container`
 * section, with the container defaults (hull's seccomp profile, no-new-privileges off as in docker, the OCI
 * runtime this host runs best). The container driver's configure() calls this; nothing outside src/container reads the section.
 */
import { InvalidArgumentError } from '../common/errors.js';
import type {
  ConfigureEnv,
  ContainerOptions,
  DeviceMapping,
  IsolationRequest,
  InstanceConfig,
  UsernsConfig,
} from '../common/instance.js';
import { checkRuntime, defaultRuntime } from './runtime-choice.js';

/** The settings of a container created without any isolation flags (runtime aside). */
export function defaultContainerOptions(runtime: string): ContainerOptions {
  return {
    runtime,
    privileged: false,
    capAdd: [],
    capDrop: [],
    noNewPrivileges: false,
    seccomp: 'default',
    userns: null,
    ulimits: [],
    groupAdd: [],
  };
}

/** The container section of a config (records are migrated on read, so it is there; defaults otherwise). */
export function containerOptions(config: InstanceConfig): ContainerOptions {
  return config.container ?? defaultContainerOptions('runc');
}

/** Request → the container section; every bad value is an InvalidArgumentError before anything is made. */
export function configureContainer(req: IsolationRequest, env: ConfigureEnv): ContainerOptions {
  // docker's default: off, so that setuid binaries of the image (ping, sudo, su) work for non-root users
  let noNewPrivileges = false;
  let seccomp = 'default';
  for (const opt of req.securityOpt ?? []) {
    const [k, v] = splitOpt(opt);
    if (k === 'no-new-privileges') {
      if (v !== undefined && v !== 'true' && v !== 'false')
        throw new InvalidArgumentError(`invalid --security-opt "${opt}": no-new-privileges takes true or false`);
      noNewPrivileges = v !== 'false';
    } else if (k === 'seccomp') {
      if (!v)
        throw new InvalidArgumentError(
          `invalid --security-opt "${opt}": use seccomp=unconfined or seccomp=/path/to/profile.json`,
        );
      seccomp = v;
    } else if (k === 'label' || k === 'apparmor') {
      // no LSM support on this host class: accepted and ignored only when it asks for none
      if (v !== 'disable' && v !== 'unconfined')
        throw new InvalidArgumentError(`unsupported --security-opt "${opt}": hull has no SELinux/AppArmor support yet`);
    } else {
      throw new InvalidArgumentError(`unknown --security-opt "${opt}": expected no-new-privileges or seccomp=...`);
    }
  }
  const userns =
    req.userns === 'auto'
      ? allocateUserns(
          env
            .otherConfigs()
            .map((c) => c.container?.userns ?? null)
            .filter((u) => u !== null),
        )
      : (req.userns ?? null);
  const runtime = req.runtime !== undefined ? checkRuntime(req.runtime) : defaultRuntime();
  return {
    runtime,
    privileged: req.privileged ?? false,
    capAdd: req.capAdd ?? [],
    capDrop: req.capDrop ?? [],
    noNewPrivileges,
    seccomp,
    userns,
    ulimits: req.ulimits ?? [],
    groupAdd: checkGroupAdd(req.groupAdd ?? []),
    ...namespaceOptions(req),
    ...(req.shmSize !== undefined ? { shmSize: req.shmSize } : {}),
    ...(req.display === 'vnc' ? { display: 'vnc' as const } : {}),
  };
}

/** --device, --device-cgroup-rule, --pid, --ipc, --uts and --sysctl, checked; only what was given is set. */
function namespaceOptions(req: IsolationRequest): Partial<ContainerOptions> {
  const out: Partial<ContainerOptions> = {};
  if (req.devices?.length) out.devices = req.devices.map(parseDevice);
  if (req.deviceCgroupRules?.length) {
    for (const r of req.deviceCgroupRules) parseDeviceCgroupRule(r);
    out.deviceCgroupRules = [...req.deviceCgroupRules];
  }
  const pid = mode('--pid', req.pid, ['host'], 'host or container:NAME');
  if (pid) out.pidMode = pid;
  const ipc = mode('--ipc', req.ipc, ['host', 'shareable', 'none'], 'private, shareable, none, host or container:NAME');
  if (ipc) out.ipcMode = ipc;
  if (req.uts !== undefined && req.uts !== '' && req.uts !== 'private') {
    if (req.uts !== 'host') throw new InvalidArgumentError(`invalid --uts "${req.uts}": use host (or leave it out)`);
    out.utsMode = 'host';
  }
  if (req.sysctls && Object.keys(req.sysctls).length > 0) {
    for (const key of Object.keys(req.sysctls)) {
      checkSysctl(key);
      if (ipcSysctl(key) && out.ipcMode === 'host')
        throw new InvalidArgumentError(`sysctl "${key}" not allowed in host IPC namespace: leave out --ipc host`);
    }
    out.sysctls = { ...req.sysctls };
  }
  return out;
}

/** A namespace mode: undefined for the default (private), one of `plain`, or container:X. */
function mode(flag: string, v: string | undefined, plain: string[], expected: string): string | undefined {
  if (v === undefined || v === '' || v === 'private') return undefined;
  if (plain.includes(v)) return v;
  if (v.startsWith('container:') && v.length > 'container:'.length) return v;
  throw new InvalidArgumentError(`invalid ${flag} "${v}": use ${expected}`);
}

/** The kernel parameters a container may set (docker's list): those of its own IPC and network namespaces. */
const IPC_SYSCTLS = new Set([
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);

function ipcSysctl(key: string): boolean {
  return IPC_SYSCTLS.has(key) || key.startsWith('fs.mqueue.');
}

/** Docker's rule: only namespaced sysctls (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*). */
export function checkSysctl(key: string): void {
  if (ipcSysctl(key) || key.startsWith('net.')) return;
  throw new InvalidArgumentError(
    `sysctl '${key}' is not allowed: a container may set only namespaced sysctls (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*)`,
  );
}

/** Docker's device modes: some of r, w, m, each once. */
function validDeviceMode(m: string): boolean {
  return m.length > 0 && m.length <= 3 && [...m].every((c) => 'rwm'.includes(c)) && new Set(m).size === m.length;
}

/** --device HOST[:CONTAINER][:PERMISSIONS] (docker's parseDevice). */
export function parseDevice(spec: string): DeviceMapping {
  const parts = spec.split(':');
  let permissions = 'rwm';
  let dst = '';
  if (parts.length > 3 || parts[0] === '')
    throw new InvalidArgumentError(`invalid device specification: ${spec} (expected HOST[:CONTAINER[:rwm]])`);
  if (parts.length === 3) permissions = parts[2]!;
  if (parts.length >= 2) {
    if (parts.length === 2 && validDeviceMode(parts[1]!)) permissions = parts[1]!;
    else dst = parts[1]!;
  }
  const src = parts[0]!;
  if (!validDeviceMode(permissions))
    throw new InvalidArgumentError(`invalid device mode: ${permissions} in --device ${spec} (some of r, w, m)`);
  if (dst === '') dst = src;
  for (const p of [src, dst])
    if (!p.startsWith('/')) throw new InvalidArgumentError(`invalid --device ${spec}: ${p} is not an absolute path`);
  return { pathOnHost: src, pathInContainer: dst, permissions };
}

/** A --device-cgroup-rule in docker's syntax: 'TYPE MAJOR:MINOR ACCESS' (type a, b or c; * for any number). */
export function parseDeviceCgroupRule(rule: string): {
  type: 'a' | 'b' | 'c';
  major?: number;
  minor?: number;
  access: string;
} {
  const m = /^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$/.exec(rule.trim());
  if (!m) throw new InvalidArgumentError(`invalid device cgroup format '${rule}' (expected e.g. 'c 1:3 mr')`);
  return {
    type: m[1] as 'a' | 'b' | 'c',
    ...(m[2] !== '*' ? { major: Number(m[2]) } : {}),
    ...(m[3] !== '*' ? { minor: Number(m[3]) } : {}),
    access: m[4]!,
  };
}

/** --group-add values: a group name (resolved in the image's /etc/group at start) or a numeric gid. */
function checkGroupAdd(groups: readonly string[]): string[] {
  return groups.map((g) => {
    const v = g.trim();
    if (!/^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$/.test(v))
      throw new InvalidArgumentError(
        `invalid --group-add ${JSON.stringify(g)}: expected a group name or a numeric gid`,
      );
    if (/^\d+$/.test(v) && Number(v) > 2 ** 31 - 1)
      throw new InvalidArgumentError(`invalid --group-add ${g}: gids must be in range 0-${2 ** 31 - 1}`);
    return v;
  });
}

function splitOpt(opt: string): [string, string | undefined] {
  const m = /^([a-z-]+)(?:[=:](.*))?$/.exec(opt);
  if (!m) throw new InvalidArgumentError(`invalid --security-opt "${opt}"`);
  return [m[1]!, m[2]];
}

/** Pick a 65536-id host range for --userns auto that no other instance uses (ids from 100000 up). */
export function allocateUserns(used: UsernsConfig[]): UsernsConfig {
  const SIZE = 65536;
  const taken = new Set(used.flatMap((u) => u.uidMappings.map((m) => m.hostID)));
  let base = 100000;
  while (taken.has(base)) base += SIZE;
  return {
    uidMappings: [{ containerID: 0, hostID: base, size: SIZE }],
    gidMappings: [{ containerID: 0, hostID: base, size: SIZE }],
  };
}
