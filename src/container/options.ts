/**
 * A container's own settings: what the user asked (IsolationRequest) resolved into the config's `container`
 * section, with the container defaults (hull's seccomp profile, no-new-privileges off as in docker, the OCI
 * runtime this host runs best). The container driver's configure() calls this; nothing outside src/container reads the section.
 */
import { InvalidArgumentError } from '../common/errors.js';
import type {
  ConfigureEnv,
  ContainerOptions,
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
    ...(req.shmSize !== undefined ? { shmSize: req.shmSize } : {}),
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
