import type { InstanceConfig, MountSpec, Resources, RestartPolicy, UsernsConfig, InstanceKind } from '../common/instance.js';
import { InvalidArgumentError } from '../common/errors.js';
import { mergeEnv, parseSignal } from '../common/parse.js';
import type { ImageRecord } from '../image/store.js';

/** What a user asks for when creating an instance (already parsed from flags or an API body). */
export interface CreateRequest {
  kind: InstanceKind;
  image: string;
  name?: string;
  /** replaces the image's Cmd when non-empty */
  command?: string[];
  /** replaces the image's Entrypoint when set; [] resets it (docker's --entrypoint "") */
  entrypoint?: string[];
  env?: string[];
  user?: string;
  workdir?: string;
  hostname?: string;
  tty?: boolean;
  stdin?: boolean;
  mounts?: MountSpec[];
  readOnly?: boolean;
  privileged?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  /** docker's --security-opt values: no-new-privileges[=true|false], seccomp=unconfined|PATH */
  securityOpt?: string[];
  /** 'auto' picks a free 65536-id range; an explicit mapping; undefined/null for none */
  userns?: UsernsConfig | 'auto' | null;
  resources?: Resources;
  stopSignal?: string;
  stopTimeout?: number;
  restart?: RestartPolicy;
  autoRemove?: boolean;
  labels?: Record<string, string>;
  network?: string;
  runtime?: string;
  ulimits?: { type: string; soft: number; hard: number }[];
}

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';


/** Image config + the user's request → the instance's resolved config (docker's precedence rules). */
export function buildInstanceConfig(image: ImageRecord, req: CreateRequest, id: string, runtime: string): InstanceConfig {
  const ic = image.config.config ?? {};
  const entrypoint = req.entrypoint ?? ic.Entrypoint ?? [];
  // docker: --entrypoint resets the image's Cmd too
  const cmd = req.command && req.command.length > 0 ? req.command : req.entrypoint !== undefined ? [] : ic.Cmd ?? [];
  const command = [...entrypoint, ...cmd];
  if (command.length === 0) {
    throw new InvalidArgumentError(`no command specified: image ${req.image} has no Cmd or Entrypoint; give one after the image name`);
  }
  const imageEnv = ic.Env ?? [DEFAULT_PATH];
  let noNewPrivileges = true;
  let seccomp = 'default';
  for (const opt of req.securityOpt ?? []) {
    const [k, v] = splitOpt(opt);
    if (k === 'no-new-privileges') {
      if (v !== undefined && v !== 'true' && v !== 'false') throw new InvalidArgumentError(`invalid --security-opt "${opt}": no-new-privileges takes true or false`);
      noNewPrivileges = v !== 'false';
    } else if (k === 'seccomp') {
      if (!v) throw new InvalidArgumentError(`invalid --security-opt "${opt}": use seccomp=unconfined or seccomp=/path/to/profile.json`);
      seccomp = v;
    } else if (k === 'label' || k === 'apparmor') {
      // no LSM support on this host class: accepted and ignored only when it asks for none
      if (v !== 'disable' && v !== 'unconfined') throw new InvalidArgumentError(`unsupported --security-opt "${opt}": hull has no SELinux/AppArmor support yet`);
    } else {
      throw new InvalidArgumentError(`unknown --security-opt "${opt}": expected no-new-privileges or seccomp=...`);
    }
  }
  const restart = req.restart ?? { name: 'no', maxRetries: 0 };
  if (req.autoRemove && restart.name !== 'no') {
    throw new InvalidArgumentError('--rm and --restart cannot be combined: a removed instance cannot be restarted');
  }
  const network = req.network ?? 'none';
  if (!['none', 'host', 'default', 'bridge'].includes(network)) {
    throw new InvalidArgumentError(`unknown network "${network}": only none and host exist until virtual networks land`);
  }
  const hostname = req.hostname ?? (network === 'host' ? '' : id.slice(0, 12));
  const userns = req.userns === 'auto' ? null : req.userns ?? null;
  return {
    image: req.image,
    imageId: image.id,
    command,
    env: mergeEnv(imageEnv, req.env ?? []),
    workdir: req.workdir ?? (ic.WorkingDir || '/'),
    user: req.user ?? ic.User ?? '',
    hostname,
    tty: req.tty ?? false,
    stdin: req.stdin ?? false,
    mounts: req.mounts ?? [],
    readOnly: req.readOnly ?? false,
    privileged: req.privileged ?? false,
    capAdd: req.capAdd ?? [],
    capDrop: req.capDrop ?? [],
    noNewPrivileges,
    seccomp,
    userns,
    resources: req.resources ?? {},
    stopSignal: req.stopSignal ?? (ic.StopSignal ? parseSignal(ic.StopSignal) : 'SIGTERM'),
    stopTimeout: req.stopTimeout ?? 10,
    restart,
    autoRemove: req.autoRemove ?? false,
    labels: { ...(ic.Labels ?? {}), ...(req.labels ?? {}) },
    network: network === 'default' || network === 'bridge' ? 'none' : network,
    runtime,
    ulimits: req.ulimits ?? [],
  };
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
